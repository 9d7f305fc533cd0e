//! The device API calls the runner makes, on any board's [`ApiEndpoint`]: version,
//! health, upgrade (streamed to its end) and the upgrade subsystem's status and history
//! (decoded from the resources' YAML, as `crate::daemon_scenario` does for the daemon
//! board).

use anyhow::Context as _;
use serde_json::Value;
use skerry_api::pb;
use skerry_api::pb::machine_service_client::MachineServiceClient;
use tonic::transport::Channel;

use crate::daemon_scenario::{decode_spec, UPGRADE_HISTORY_TYPE, UPGRADE_NAMESPACE};
use crate::rig::ApiEndpoint;

/// A client of the device's API with the endpoint's client certificate.
pub async fn client(endpoint: &ApiEndpoint) -> anyhow::Result<MachineServiceClient<Channel>> {
    let tls = skerry_api::ClientTls::from_pem(
        &endpoint.ca_pem,
        &endpoint.client_cert_pem,
        &endpoint.client_key_pem,
        endpoint.server_name.clone(),
    );
    skerry_api::connect(&format!("https://{}", endpoint.address), &tls)
        .await
        .with_context(|| format!("connecting to the device API at {}", endpoint.address))
}

/// The booted slot and release.
pub async fn version(endpoint: &ApiEndpoint) -> anyhow::Result<pb::VersionResponse> {
    Ok(client(endpoint)
        .await?
        .version(pb::VersionRequest {})
        .await?
        .into_inner())
}

/// Whether every critical check passes.
pub async fn healthy(endpoint: &ApiEndpoint) -> anyhow::Result<bool> {
    let answer = client(endpoint)
        .await?
        .health(pb::HealthRequest {})
        .await?
        .into_inner();
    Ok(answer.overall == pb::HealthStatus::Healthy as i32)
}

/// How an upgrade call ended.
#[derive(Debug, Clone)]
pub enum UpgradeEnd {
    /// The stream ended; its last progress message.
    Finished(Option<pb::UpgradeProgress>),
    /// The daemon answered with an error status (or the stream broke with one).
    Refused(tonic::Status),
}

impl UpgradeEnd {
    /// For reports.
    pub fn describe(&self) -> String {
        match self {
            UpgradeEnd::Finished(Some(p)) => format!(
                "ended in phase {:?} for {} on slot {}: {}",
                p.phase(),
                p.release_version,
                p.target_slot,
                p.message
            ),
            UpgradeEnd::Finished(None) => "ended without any progress".into(),
            UpgradeEnd::Refused(status) => {
                format!("refused ({:?}): {}", status.code(), status.message())
            }
        }
    }

    /// Whether the trial began.
    pub fn trial_ready(&self) -> bool {
        matches!(self, UpgradeEnd::Finished(Some(p)) if p.phase() == pb::UpgradePhase::TrialReady)
    }
}

/// Asks for `version` and follows the stream to its end.
pub async fn upgrade(endpoint: ApiEndpoint, version: String) -> anyhow::Result<UpgradeEnd> {
    let mut client = client(&endpoint).await?;
    let request = pb::UpgradeRequest {
        release_version: version,
        force: false,
    };
    let mut stream = match client.upgrade(request).await {
        Ok(answer) => answer.into_inner(),
        Err(status) => return Ok(UpgradeEnd::Refused(status)),
    };
    let mut last = None;
    loop {
        match stream.message().await {
            Ok(Some(progress)) => last = Some(progress),
            Ok(None) => return Ok(UpgradeEnd::Finished(last)),
            Err(status) => return Ok(UpgradeEnd::Refused(status)),
        }
    }
}

/// The upgrade subsystem's status (`phase`, `release`, `target_slot`, `message`…).
pub async fn upgrade_status(endpoint: &ApiEndpoint) -> anyhow::Result<Value> {
    crate::daemon_scenario::read_upgrade_status(&mut client(endpoint).await?).await
}

/// The persisted upgrade history, oldest first.
pub async fn upgrade_history(endpoint: &ApiEndpoint) -> anyhow::Result<Vec<Value>> {
    let mut resources = client(endpoint)
        .await?
        .resource_list(pb::ResourceListRequest {
            namespace: UPGRADE_NAMESPACE.into(),
            r#type: UPGRADE_HISTORY_TYPE.into(),
        })
        .await?
        .into_inner()
        .resources;
    let id = |r: &pb::Resource| r.r#ref.as_ref().map(|x| x.id.clone()).unwrap_or_default();
    resources.sort_by_key(id);
    resources
        .iter()
        .map(|r| decode_spec(&r.spec_yaml))
        .collect()
}
