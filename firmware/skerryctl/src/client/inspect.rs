//! The commands that read: `version`, `health`, `get`, `logs`, `events`,
//! `dependencies`, and `services` (which also starts, stops and restarts one).
//!
//! Streams (`get --watch`, `logs -f`, `events --watch`) print each item as it arrives:
//! a line for people, one JSON object per line, or one YAML document per item.

use std::io::Write as _;

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use skerry_api::pb;
use skerry_api::pb::machine_service_client::MachineServiceClient;
use tonic::transport::Channel;

use super::exit::{refused, usage};
use super::render;
use super::target::Target;
use crate::output::{self, table, Output};

/// The help after `get`.
pub const GET_HELP: &str = "\
Examples:
  skerryctl get MachineConfigs.config.skerry.dev active --namespace config
  skerryctl get config/ServiceConfigs.config.skerry.dev web --output yaml
  skerryctl get health/HealthChecks.health.skerry.dev --watch --output json

TYPE may carry its namespace as NAMESPACE/TYPE; `skerryctl dependencies` lists every type.
A short name (the first part of the type's name, singular or plural, any case: machineconfig,
upgradehistory, servicestatuses) stands for the one type it names.
Sensitive types (the services in the config) are refused below os:admin.";

/// `version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[command(flatten)]
    target: Target,
}

/// `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    #[command(flatten)]
    target: Target,
}

/// `get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The resource type, optionally as NAMESPACE/TYPE.
    #[arg(value_name = "TYPE")]
    kind: String,
    /// One resource's id (default: every resource of the type).
    id: Option<String>,
    /// The type's namespace.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// Keep printing changes (starting with the current resources).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    target: Target,
}

/// `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The service whose output to print.
    service: String,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    follow: bool,
    /// At most this many buffered lines from the end (default: all the buffer holds).
    #[arg(long, value_name = "N")]
    tail: Option<u32>,
    #[command(flatten)]
    target: Target,
}

/// `events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Start after this event id (as printed in the first column).
    #[arg(long, value_name = "ID")]
    after: Option<String>,
    /// Keep printing new events.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    target: Target,
}

/// `services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(subcommand)]
    action: Option<ServiceAction>,
    #[command(flatten)]
    target: Target,
}

/// What to do to one service.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Start a service (os:operator).
    #[command(after_help = "Example:\n  skerryctl services start web")]
    Start(ServiceId),
    /// Stop a service (os:operator).
    #[command(after_help = "Example:\n  skerryctl services stop web")]
    Stop(ServiceId),
    /// Restart a service (os:operator).
    #[command(after_help = "Example:\n  skerryctl services restart web")]
    Restart(ServiceId),
}

/// One service, by id.
#[derive(Debug, Args)]
pub struct ServiceId {
    /// The service's id (its name in the config).
    id: String,
    #[command(flatten)]
    target: Target,
}

/// `dependencies`.
#[derive(Debug, Args)]
pub struct DependenciesArgs {
    #[command(flatten)]
    target: Target,
}

/// Runs `version`.
pub async fn version(args: &VersionArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let v = client
        .version(pb::VersionRequest {})
        .await
        .map_err(|s| refused("Version", s))?
        .into_inner();
    output::value(output, &render::version(&v), || {
        let dash = |s: &str| {
            if s.is_empty() {
                "-".to_owned()
            } else {
                s.to_owned()
            }
        };
        format!(
            "client:   skerryctl {}\ndaemon:   skerryd {}\napi:      {}\nrelease:  {}\nboard:    {}\nslot:     {}\n",
            env!("CARGO_PKG_VERSION"),
            v.daemon_version,
            v.api_version,
            dash(&v.release_version),
            dash(&v.board),
            dash(&v.booted_slot)
        )
    })
}

/// Runs `health`.
pub async fn health(args: &HealthArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let h = client
        .health(pb::HealthRequest {})
        .await
        .map_err(|s| refused("Health", s))?
        .into_inner();
    output::value(output, &render::health_response(&h), || {
        let rows: Vec<Vec<String>> = h
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    if c.critical { "yes" } else { "no" }.into(),
                    render::health(c.status),
                    c.consecutive_failures.to_string(),
                    render::time(c.last_run.as_ref()),
                    c.message.clone(),
                ]
            })
            .collect();
        format!(
            "overall: {}\n{}",
            render::health(h.overall),
            table(
                &["CHECK", "CRITICAL", "STATUS", "FAILURES", "LAST RUN", "MESSAGE"],
                &rows
            )
        )
    })
}

/// `NAMESPACE/TYPE` or `TYPE` with `--namespace`.
fn split_type(args: &GetArgs) -> anyhow::Result<(String, String)> {
    match (args.kind.split_once('/'), &args.namespace) {
        (Some((ns, ty)), None) if !ns.is_empty() && !ty.is_empty() => {
            Ok((ns.to_owned(), ty.to_owned()))
        }
        (Some(_), Some(_)) => Err(usage(format!(
            "give the namespace once: {:?} already names one, and --namespace another",
            args.kind
        ))),
        (Some(_), None) => Err(usage(format!(
            "{:?} is not TYPE or NAMESPACE/TYPE",
            args.kind
        ))),
        (None, ns) => Ok((ns.clone().unwrap_or_default(), args.kind.clone())),
    }
}

/// Whether `short` names the type `full` (`MachineConfigs.config.skerry.dev`): its first
/// label, in any case, singular or plural (`machineconfig`, `MachineConfigs`).
fn short_name_matches(short: &str, full: &str) -> bool {
    let label = full.split('.').next().unwrap_or(full).to_ascii_lowercase();
    let short = short.to_ascii_lowercase();
    label == short || label == format!("{short}s") || label == format!("{short}es")
}

/// The full `(namespace, type)` a short type name stands for, from the controller graph
/// the machine reports; a full name (with a dot), or one the graph does not know, is
/// asked as it is.
async fn resolve_type(
    client: &mut MachineServiceClient<Channel>,
    namespace: String,
    kind: String,
) -> anyhow::Result<(String, String)> {
    if kind.contains('.') && !namespace.is_empty() {
        return Ok((namespace, kind));
    }
    let graph = client
        .dependencies(pb::DependenciesRequest {})
        .await
        .map_err(|s| refused("Dependencies", s))?
        .into_inner();
    let mut found: Vec<(String, String)> = graph
        .controllers
        .iter()
        .flat_map(|c| c.dependencies.iter())
        .filter(|d| namespace.is_empty() || d.namespace == namespace)
        .filter(|d| d.r#type == kind || short_name_matches(&kind, &d.r#type))
        .map(|d| (d.namespace.clone(), d.r#type.clone()))
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        1 => Ok(found.remove(0)),
        // Asked as given: the machine names what it does not know.
        0 if !namespace.is_empty() => Ok((namespace, kind)),
        0 => Err(usage(format!(
            "no resource type is called {kind:?} on this machine; `skerryctl dependencies` lists every type (give NAMESPACE/TYPE for one no controller declares)"
        ))),
        _ => Err(usage(format!(
            "{kind:?} could be any of {}; give NAMESPACE/TYPE",
            found
                .iter()
                .map(|(ns, ty)| format!("{ns}/{ty}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Runs `get`.
pub async fn get(args: &GetArgs, output: Output) -> anyhow::Result<()> {
    let (namespace, kind) = split_type(args)?;
    if kind.is_empty() {
        return Err(usage("TYPE is empty"));
    }
    let mut client = args.target.connect().await?;
    let (namespace, kind) = resolve_type(&mut client, namespace, kind).await?;
    if args.watch {
        let mut stream = client
            .resource_watch(pb::ResourceWatchRequest {
                namespace,
                r#type: kind,
                id: args.id.clone().unwrap_or_default(),
                bootstrap: true,
            })
            .await
            .map_err(|s| refused("ResourceWatch", s))?
            .into_inner();
        while let Some(event) = stream
            .message()
            .await
            .map_err(|s| refused("ResourceWatch", s))?
        {
            output::item(output, &render::watch_event(&event), || {
                let what = render::watch_kind(event.kind);
                match &event.resource {
                    Some(r) => format!(
                        "{what:<13} {}  version {}",
                        render::reference_text(r.r#ref.as_ref()),
                        r.version
                    ),
                    None => what,
                }
            })?;
        }
        return Ok(());
    }
    match &args.id {
        Some(id) => {
            let answer = client
                .resource_get(pb::ResourceGetRequest {
                    r#ref: Some(pb::ResourceRef {
                        namespace,
                        r#type: kind,
                        id: id.clone(),
                    }),
                })
                .await
                .map_err(|s| refused("ResourceGet", s))?
                .into_inner();
            let resource = answer.resource.ok_or_else(|| {
                anyhow::anyhow!("the machine answered ResourceGet without a resource")
            })?;
            output::value(output, &render::resource(&resource), || {
                let mut text = table(render::RESOURCE_COLUMNS, &[render::resource_row(&resource)]);
                if !resource.spec_yaml.is_empty() {
                    text.push_str("spec:\n");
                    for line in resource.spec_yaml.lines() {
                        text.push_str(&format!("  {line}\n"));
                    }
                }
                text
            })
        }
        None => {
            let answer = client
                .resource_list(pb::ResourceListRequest {
                    namespace,
                    r#type: kind,
                })
                .await
                .map_err(|s| refused("ResourceList", s))?
                .into_inner();
            let list: Vec<Value> = answer.resources.iter().map(render::resource).collect();
            output::value(output, &json!({ "resources": list }), || {
                let rows: Vec<Vec<String>> =
                    answer.resources.iter().map(render::resource_row).collect();
                table(render::RESOURCE_COLUMNS, &rows)
            })
        }
    }
}

/// Runs `logs`.
pub async fn logs(args: &LogsArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let mut stream = client
        .logs(pb::LogsRequest {
            service_id: args.service.clone(),
            follow: args.follow,
            tail_lines: args.tail.unwrap_or(0),
        })
        .await
        .map_err(|s| refused("Logs", s))?
        .into_inner();
    while let Some(entry) = stream.message().await.map_err(|s| refused("Logs", s))? {
        if output == Output::Text {
            // The line as the service printed it, byte for byte.
            let mut out = std::io::stdout().lock();
            if entry.dropped_before > 0 {
                eprintln!(
                    "skerryctl: the machine's buffer dropped {} line(s) here",
                    entry.dropped_before
                );
            }
            out.write_all(&entry.line)?;
            out.write_all(b"\n")?;
            out.flush()?;
        } else {
            output::item(output, &render::log(&entry), String::new)?;
        }
    }
    Ok(())
}

/// Runs `events`.
pub async fn events(args: &EventsArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let mut stream = client
        .events(pb::EventsRequest {
            after_id: args.after.clone().unwrap_or_default(),
            watch: args.watch,
        })
        .await
        .map_err(|s| refused("Events", s))?
        .into_inner();
    while let Some(event) = stream.message().await.map_err(|s| refused("Events", s))? {
        output::item(output, &render::event(&event), || {
            render::event_line(&event)
        })?;
    }
    Ok(())
}

/// Runs `services` and its actions.
pub async fn services(args: &ServicesArgs, output: Output) -> anyhow::Result<()> {
    let Some(action) = &args.action else {
        let mut client = args.target.connect().await?;
        let answer = client
            .service_list(pb::ServiceListRequest {})
            .await
            .map_err(|s| refused("ServiceList", s))?
            .into_inner();
        let list: Vec<Value> = answer.services.iter().map(render::service).collect();
        return output::value(output, &json!({ "services": list }), || {
            let rows: Vec<Vec<String>> = answer.services.iter().map(render::service_row).collect();
            table(render::SERVICE_COLUMNS, &rows)
        });
    };
    let (verb, one) = match action {
        ServiceAction::Start(one) => ("started", one),
        ServiceAction::Stop(one) => ("stopped", one),
        ServiceAction::Restart(one) => ("restarted", one),
    };
    let target = one.target.or(&args.target);
    let mut client = target.connect().await?;
    let id = one.id.clone();
    let answer = match action {
        ServiceAction::Start(_) => client
            .service_start(pb::ServiceStartRequest { id })
            .await
            .map_err(|s| refused("ServiceStart", s))?,
        ServiceAction::Stop(_) => client
            .service_stop(pb::ServiceStopRequest { id })
            .await
            .map_err(|s| refused("ServiceStop", s))?,
        ServiceAction::Restart(_) => client
            .service_restart(pb::ServiceRestartRequest { id })
            .await
            .map_err(|s| refused("ServiceRestart", s))?,
    }
    .into_inner();
    let service = answer.service.unwrap_or_default();
    output::value(output, &render::service(&service), || {
        format!(
            "{verb} {}: now {}\n",
            one.id,
            render::service_state(service.state)
        )
    })
}

/// Runs `dependencies`.
pub async fn dependencies(args: &DependenciesArgs, output: Output) -> anyhow::Result<()> {
    let mut client = args.target.connect().await?;
    let graph = client
        .dependencies(pb::DependenciesRequest {})
        .await
        .map_err(|s| refused("Dependencies", s))?
        .into_inner();
    if output == Output::Dot {
        print!("{}", render::dependencies_dot(&graph));
        return Ok(());
    }
    output::value(output, &render::dependencies(&graph), || {
        let rows: Vec<Vec<String>> = graph
            .controllers
            .iter()
            .flat_map(|c| {
                // A controller that reads and writes no resource (a heartbeat) still
                // shows, so the list of controllers is whole.
                if c.dependencies.is_empty() {
                    return vec![vec![
                        c.name.clone(),
                        "(none)".to_owned(),
                        String::new(),
                        String::new(),
                    ]];
                }
                c.dependencies
                    .iter()
                    .map(|d| {
                        vec![
                            c.name.clone(),
                            render::dependency_kind(d.kind),
                            d.namespace.clone(),
                            d.r#type.clone(),
                        ]
                    })
                    .collect()
            })
            .collect();
        table(&["CONTROLLER", "KIND", "NAMESPACE", "TYPE"], &rows)
    })
}

#[cfg(test)]
mod tests {
    use super::short_name_matches;

    #[test]
    fn a_short_name_is_the_first_label_singular_or_plural_in_any_case() {
        let full = "MachineConfigs.config.skerry.dev";
        for short in [
            "MachineConfigs",
            "machineconfigs",
            "machineconfig",
            "MachineConfig",
        ] {
            assert!(short_name_matches(short, full), "{short}");
        }
        assert!(short_name_matches(
            "upgradehistory",
            "UpgradeHistory.upgrade.skerry.dev"
        ));
        assert!(!short_name_matches("machine", full));
        assert!(!short_name_matches("configs", full));
    }
}
