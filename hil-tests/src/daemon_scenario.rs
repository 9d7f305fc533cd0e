//! The update loop as an operator drives it: every step a call to skerryd's machine API
//! on a [`DaemonBoard`], over mutual TLS. The machine config these stories apply, the
//! calls (apply, upgrade with its progress, health), and what the upgrade subsystem
//! publishes (its status and its persisted history), decoded from the resources' YAML.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::Value;
use skerry_api::pb;

use crate::daemon::DaemonBoard;
use crate::updates::BOARD;

/// The role the stories act with.
pub const ADMIN: Option<&str> = Some("os:admin");
/// The role the stories watch with.
pub const READER: Option<&str> = Some("os:reader");

/// The upgrade subsystem's namespace and resource types.
pub const UPGRADE_NAMESPACE: &str = "upgrade";
/// Where the upgrade stands (a singleton, id [`STATUS_ID`]).
pub const UPGRADE_STATUS_TYPE: &str = "UpgradeStatuses.upgrade.skerry.dev";
/// The id of the upgrade status.
pub const STATUS_ID: &str = "status";
/// One step of the persisted upgrade history per resource.
pub const UPGRADE_HISTORY_TYPE: &str = "UpgradeHistory.upgrade.skerry.dev";

/// Where a machine config's updates come from: a signed repository on disk and the
/// root metadata file the device pins.
#[derive(Debug, Clone, Copy)]
pub struct UpdateSourceConfig<'a> {
    /// The repository's directory (given as `file://`).
    pub repository: &'a Path,
    /// The pinned root metadata (`1.root.json`), as a file.
    pub trusted_root: &'a Path,
    /// How long a new slot's critical checks must hold before it is committed.
    pub probation: Duration,
}

/// The machine config of the stories: a hostname; a service `app` whose critical
/// health check passes only on a healthy image (checked every second, failing after
/// two misses); and, when given, the update source.
pub fn machine_config(
    board: &DaemonBoard,
    hostname: &str,
    updates: Option<UpdateSourceConfig<'_>>,
) -> String {
    let probe: Vec<String> = board
        .image_health_probe()
        .iter()
        .map(|arg| Value::String(arg.clone()).to_string())
        .collect();
    let mut text = format!(
        "apiVersion: skerry.dev/v1alpha1
kind: MachineConfig
hostname: {hostname}
---
apiVersion: skerry.dev/v1alpha1
kind: ServiceConfig
name: app
command: [sleep, \"3600\"]
healthChecks:
  - name: image
    probe:
      exec:
        command: [{probe}]
    interval: 1s
    timeout: 900ms
    failureThreshold: 2
    critical: true
",
        probe = probe.join(", ")
    );
    if let Some(u) = updates {
        text.push_str(&format!(
            "---
apiVersion: skerry.dev/v1alpha1
kind: UpdateConfig
repository: file://{repo}
trustedRoot: {root}
board: {BOARD}
channel: stable
probation: {probation}s
",
            repo = u.repository.display(),
            root = u.trusted_root.display(),
            probation = u.probation.as_secs().max(1),
        ));
    }
    text
}

/// Applies `config` with `mode` (a dry run when `dry_run`); `try_timeout` only for
/// [`pb::ApplyMode::Try`]. The outer error is the connection's, the inner the API's answer.
pub async fn apply(
    board: &DaemonBoard,
    config: &str,
    mode: pb::ApplyMode,
    dry_run: bool,
    try_timeout: Option<Duration>,
) -> anyhow::Result<Result<pb::ApplyConfigurationResponse, tonic::Status>> {
    let mut client = board.client(ADMIN).await?;
    let answer = client
        .apply_configuration(pb::ApplyConfigurationRequest {
            configuration: config.as_bytes().to_vec(),
            mode: mode.into(),
            dry_run,
            try_timeout: try_timeout.map(|t| prost_types::Duration {
                seconds: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(t.subsec_nanos()).unwrap_or(0),
            }),
        })
        .await
        .map(tonic::Response::into_inner);
    Ok(answer)
}

/// Asks for `version` (empty: the newest) and streams its progress to `on_progress`
/// until the daemon ends the stream; returns every message, or the status it ended with.
pub async fn upgrade(
    board: &DaemonBoard,
    version: &str,
    force: bool,
    mut on_progress: impl FnMut(&pb::UpgradeProgress),
) -> anyhow::Result<Result<Vec<pb::UpgradeProgress>, tonic::Status>> {
    let mut client = board.client(ADMIN).await?;
    let request = pb::UpgradeRequest {
        release_version: version.to_owned(),
        force,
    };
    let mut stream = match client.upgrade(request).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return Ok(Err(status)),
    };
    let mut seen = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(progress)) => {
                on_progress(&progress);
                seen.push(progress);
            }
            Ok(None) => return Ok(Ok(seen)),
            Err(status) => return Ok(Err(status)),
        }
    }
}

/// The machine's health as the API reports it.
pub async fn health(board: &DaemonBoard) -> anyhow::Result<pb::HealthResponse> {
    let mut client = board.client(READER).await?;
    Ok(client.health(pb::HealthRequest {}).await?.into_inner())
}

/// Polls the API's health until every critical check passes, for at most `limit`.
pub async fn wait_healthy(
    board: &DaemonBoard,
    limit: Duration,
) -> anyhow::Result<pb::HealthResponse> {
    let deadline = Instant::now() + limit;
    loop {
        let answer = health(board).await?;
        if answer.overall == pb::HealthStatus::Healthy as i32 {
            return Ok(answer);
        }
        if Instant::now() > deadline {
            bail!(
                "the machine was not healthy within {limit:?}: {answer:?}\n{}",
                board.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A resource's spec YAML as a value, decoded under the config decoder's limits.
pub fn decode_spec(yaml: &str) -> anyhow::Result<Value> {
    let limits = skerry_config::Limits::DEFAULT;
    let nodes = skerry_config::yaml::parse_stream(yaml, &limits)
        .map_err(|e| anyhow::anyhow!("a resource's spec is not YAML ({e}): {yaml}"))?;
    match nodes.as_slice() {
        [] => Ok(Value::Null),
        [one] => skerry_config::yaml::de::from_node::<Value>(one)
            .map_err(|e| anyhow::anyhow!("a resource's spec does not decode ({e}): {yaml}")),
        _ => bail!("a resource's spec holds {} documents: {yaml}", nodes.len()),
    }
}

/// The upgrade subsystem's status (`phase`, `release`, `target_slot`, `message`…).
pub async fn upgrade_status(board: &DaemonBoard) -> anyhow::Result<Value> {
    read_upgrade_status(&mut board.client(READER).await?).await
}

/// The upgrade status through `client`, whichever board it talks to.
pub async fn read_upgrade_status(
    client: &mut pb::machine_service_client::MachineServiceClient<tonic::transport::Channel>,
) -> anyhow::Result<Value> {
    let answer = client
        .resource_get(pb::ResourceGetRequest {
            r#ref: Some(pb::ResourceRef {
                namespace: UPGRADE_NAMESPACE.into(),
                r#type: UPGRADE_STATUS_TYPE.into(),
                id: STATUS_ID.into(),
            }),
        })
        .await?
        .into_inner();
    let resource = answer
        .resource
        .context("the API answered the upgrade status without a resource")?;
    decode_spec(&resource.spec_yaml)
}

/// The field `key` of a decoded spec as text ("" when absent).
pub fn field<'a>(spec: &'a Value, key: &str) -> &'a str {
    spec.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Polls the upgrade status until its phase is `phase`, for at most `limit`, telling
/// `on_change` every phase it sees on the way (the first one included).
pub async fn wait_upgrade_phase(
    board: &DaemonBoard,
    phase: &str,
    limit: Duration,
    mut on_change: impl FnMut(&Value),
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let status = upgrade_status(board).await?;
        let now = field(&status, "phase").to_owned();
        if now != last {
            on_change(&status);
            last = now;
        }
        if last == phase {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!(
                "the upgrade never reached phase {phase} within {limit:?} (last: {status})\n{}",
                board.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The persisted upgrade history, oldest first (`seq`, `step`, `release`, `slot`,
/// `reason`, `by`…).
pub async fn upgrade_history(board: &DaemonBoard) -> anyhow::Result<Vec<Value>> {
    let mut client = board.client(READER).await?;
    let mut resources = client
        .resource_list(pb::ResourceListRequest {
            namespace: UPGRADE_NAMESPACE.into(),
            r#type: UPGRADE_HISTORY_TYPE.into(),
        })
        .await?
        .into_inner()
        .resources;
    resources.sort_by(|a, b| {
        let id = |r: &pb::Resource| r.r#ref.as_ref().map(|x| x.id.clone()).unwrap_or_default();
        id(a).cmp(&id(b))
    });
    resources
        .iter()
        .map(|r| decode_spec(&r.spec_yaml))
        .collect()
}

/// The newest history entry of `step` for `release`, if any.
pub fn last_step<'a>(history: &'a [Value], step: &str, release: &str) -> Option<&'a Value> {
    history
        .iter()
        .rev()
        .find(|e| field(e, "step") == step && field(e, "release") == release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_decodes_and_its_fields_read_as_text() {
        let spec = decode_spec("phase: committed\nrelease: 1.1.0\nreason: \"app/image: failed\"\n")
            .unwrap();
        assert_eq!(field(&spec, "phase"), "committed");
        assert_eq!(field(&spec, "reason"), "app/image: failed");
        assert_eq!(field(&spec, "missing"), "");
    }

    #[test]
    fn a_spec_that_is_not_one_document_is_an_error_naming_it() {
        let err = decode_spec("a: 1\n---\nb: 2\n").unwrap_err().to_string();
        assert!(err.contains("2 documents"), "{err}");
    }

    #[test]
    fn the_last_step_of_a_release_is_the_newest() {
        let history = vec![
            serde_json::json!({"step": "rolled_back", "release": "1.2.0", "reason": "first"}),
            serde_json::json!({"step": "committed", "release": "1.2.0"}),
            serde_json::json!({"step": "rolled_back", "release": "1.2.0", "reason": "second"}),
            serde_json::json!({"step": "rolled_back", "release": "1.1.0", "reason": "other"}),
        ];
        let found = last_step(&history, "rolled_back", "1.2.0").unwrap();
        assert_eq!(field(found, "reason"), "second");
        assert!(last_step(&history, "committed", "1.1.0").is_none());
    }
}
