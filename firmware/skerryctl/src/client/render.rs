//! The machine API's answers as JSON values (which `--output json` and `--output yaml`
//! print) and as table rows (which people read). Enum values are shown by their short
//! lower-case names (`running`, not `SERVICE_STATE_RUNNING`), times as RFC 3339.

use serde_json::{json, Map, Value};
use skerry_api::pb;

/// An enum value's short name: `SERVICE_STATE_RUNNING` → `running`; an unknown number
/// stays visible as `unknown(N)`.
fn short(full: Option<&str>, prefix: &str, raw: i32) -> String {
    match full {
        Some(name) => name
            .strip_prefix(prefix)
            .unwrap_or(name)
            .to_ascii_lowercase()
            .replace('_', "-"),
        None => format!("unknown({raw})"),
    }
}

/// A health status's short name.
pub fn health(raw: i32) -> String {
    let name = pb::HealthStatus::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "HEALTH_STATUS_", raw)
}

/// A service state's short name.
pub fn service_state(raw: i32) -> String {
    let name = pb::ServiceState::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "SERVICE_STATE_", raw)
}

/// An upgrade phase's short name.
pub fn phase(raw: i32) -> String {
    let name = pb::UpgradePhase::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "UPGRADE_PHASE_", raw)
}

fn log_stream(raw: i32) -> String {
    let name = pb::LogStream::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "LOG_STREAM_", raw)
}

fn resource_phase(raw: i32) -> String {
    let name = pb::ResourcePhase::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "RESOURCE_PHASE_", raw)
}

/// A resource event kind's short name.
pub fn watch_kind(raw: i32) -> String {
    let name = pb::ResourceEventKind::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "RESOURCE_EVENT_KIND_", raw)
}

/// A dependency kind's short name.
pub fn dependency_kind(raw: i32) -> String {
    let name = pb::DependencyKind::try_from(raw).ok();
    short(name.map(|n| n.as_str_name()), "DEPENDENCY_KIND_", raw)
}

/// A timestamp as RFC 3339 (UTC, seconds); empty when unset or out of range.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| std::time::SystemTime::try_from(*t).ok())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

fn time_value(t: Option<&prost_types::Timestamp>) -> Value {
    match time(t) {
        s if s.is_empty() => Value::Null,
        s => Value::String(s),
    }
}

/// Version.
pub fn version(v: &pb::VersionResponse) -> Value {
    json!({
        "client_version": env!("CARGO_PKG_VERSION"),
        "daemon_version": v.daemon_version,
        "api_version": v.api_version,
        "release_version": v.release_version,
        "board": v.board,
        "booted_slot": v.booted_slot,
    })
}

/// Health.
pub fn health_response(h: &pb::HealthResponse) -> Value {
    let checks: Vec<Value> = h
        .checks
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "critical": c.critical,
                "status": health(c.status),
                "message": c.message,
                "last_run": time_value(c.last_run.as_ref()),
                "consecutive_failures": c.consecutive_failures,
            })
        })
        .collect();
    json!({ "overall": health(h.overall), "checks": checks })
}

/// One configuration problem.
pub fn problem(p: &pb::ConfigurationProblem) -> Value {
    json!({ "document": p.document, "path": p.path, "line": p.line, "message": p.message })
}

/// One configuration problem as people read it: `document path (line N): message`.
pub fn problem_line(p: &pb::ConfigurationProblem) -> String {
    let mut out = if p.document.is_empty() {
        "(config)".to_owned()
    } else {
        p.document.clone()
    };
    if !p.path.is_empty() {
        out.push_str(&format!(" {}", p.path));
    }
    if p.line > 0 {
        out.push_str(&format!(" (line {})", p.line));
    }
    out.push_str(&format!(": {}", p.message));
    out
}

/// ApplyConfiguration's answer.
pub fn apply(a: &pb::ApplyConfigurationResponse) -> Value {
    json!({
        "diff": a.diff,
        "problems": a.problems.iter().map(problem).collect::<Vec<_>>(),
        "unchanged": a.unchanged,
        "generation": a.generation,
        "revert_at": time_value(a.revert_at.as_ref()),
        "reboot_pending": a.reboot_pending,
    })
}

/// One upgrade progress message.
pub fn progress(p: &pb::UpgradeProgress) -> Value {
    json!({
        "phase": phase(p.phase),
        "done_bytes": p.done_bytes,
        "total_bytes": p.total_bytes,
        "release_version": p.release_version,
        "target_slot": p.target_slot,
        "message": p.message,
    })
}

/// A service.
pub fn service(s: &pb::Service) -> Value {
    json!({
        "id": s.id,
        "state": service_state(s.state),
        "health": health(s.health),
        "pid": s.pid,
        "restarts": s.restarts,
        "state_since": time_value(s.state_since.as_ref()),
        "message": s.message,
    })
}

/// A service as a table row (see [`SERVICE_COLUMNS`]).
pub fn service_row(s: &pb::Service) -> Vec<String> {
    vec![
        s.id.clone(),
        service_state(s.state),
        health(s.health),
        if s.pid == 0 {
            "-".into()
        } else {
            s.pid.to_string()
        },
        s.restarts.to_string(),
        time(s.state_since.as_ref()),
        s.message.clone(),
    ]
}

/// The columns of [`service_row`].
pub const SERVICE_COLUMNS: &[&str] = &[
    "ID", "STATE", "HEALTH", "PID", "RESTARTS", "SINCE", "MESSAGE",
];

/// A log line.
pub fn log(l: &pb::LogEntry) -> Value {
    json!({
        "time": time_value(l.time.as_ref()),
        "stream": log_stream(l.stream),
        "line": String::from_utf8_lossy(&l.line),
        "dropped_before": l.dropped_before,
    })
}

fn reference(r: Option<&pb::ResourceRef>) -> Value {
    match r {
        Some(r) => json!({ "namespace": r.namespace, "type": r.r#type, "id": r.id }),
        None => Value::Null,
    }
}

/// `namespace/type/id`, or empty.
pub fn reference_text(r: Option<&pb::ResourceRef>) -> String {
    r.map(|r| format!("{}/{}/{}", r.namespace, r.r#type, r.id))
        .unwrap_or_default()
}

/// An event.
pub fn event(e: &pb::Event) -> Value {
    let attributes: Map<String, Value> = {
        let mut sorted: Vec<_> = e.attributes.iter().collect();
        sorted.sort();
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    };
    json!({
        "id": e.id,
        "time": time_value(e.time.as_ref()),
        "kind": e.kind,
        "resource": reference(e.resource.as_ref()),
        "message": e.message,
        "attributes": attributes,
    })
}

/// An event as one line for people.
pub fn event_line(e: &pb::Event) -> String {
    let mut line = format!("{}  {}  {}", e.id, time(e.time.as_ref()), e.kind);
    let resource = reference_text(e.resource.as_ref());
    if !resource.is_empty() {
        line.push_str(&format!("  {resource}"));
    }
    if !e.message.is_empty() {
        line.push_str(&format!("  {}", e.message));
    }
    line
}

/// A resource; its spec decoded from YAML when it decodes (else kept as text).
pub fn resource(r: &pb::Resource) -> Value {
    json!({
        "namespace": r.r#ref.as_ref().map(|x| x.namespace.clone()).unwrap_or_default(),
        "type": r.r#ref.as_ref().map(|x| x.r#type.clone()).unwrap_or_default(),
        "id": r.r#ref.as_ref().map(|x| x.id.clone()).unwrap_or_default(),
        "version": r.version,
        "owner": r.owner,
        "phase": resource_phase(r.phase),
        "finalizers": r.finalizers,
        "created": time_value(r.created.as_ref()),
        "updated": time_value(r.updated.as_ref()),
        "spec": spec(&r.spec_yaml),
    })
}

/// A resource's spec YAML as a value: decoded under the config decoder's limits, or the
/// text itself when it does not decode.
pub fn spec(text: &str) -> Value {
    let limits = skerry_config::Limits::DEFAULT;
    skerry_config::yaml::parse_stream(text, &limits)
        .ok()
        .and_then(|nodes| match nodes.as_slice() {
            [] => Some(Value::Null),
            [one] => skerry_config::yaml::de::from_node::<Value>(one).ok(),
            _ => None,
        })
        .unwrap_or_else(|| Value::String(text.to_owned()))
}

/// A resource as a table row (see [`RESOURCE_COLUMNS`]).
pub fn resource_row(r: &pb::Resource) -> Vec<String> {
    let (ns, ty, id) = r
        .r#ref
        .as_ref()
        .map(|x| (x.namespace.clone(), x.r#type.clone(), x.id.clone()))
        .unwrap_or_default();
    vec![
        ns,
        ty,
        id,
        r.version.to_string(),
        r.owner.clone(),
        resource_phase(r.phase),
        time(r.updated.as_ref()),
    ]
}

/// The columns of [`resource_row`].
pub const RESOURCE_COLUMNS: &[&str] = &[
    "NAMESPACE",
    "TYPE",
    "ID",
    "VERSION",
    "OWNER",
    "PHASE",
    "UPDATED",
];

/// A resource watch event.
pub fn watch_event(e: &pb::ResourceWatchEvent) -> Value {
    json!({
        "event": watch_kind(e.kind),
        "resource": e.resource.as_ref().map(resource).unwrap_or(Value::Null),
    })
}

/// The controller graph.
pub fn dependencies(d: &pb::DependenciesResponse) -> Value {
    let controllers: Vec<Value> = d
        .controllers
        .iter()
        .map(|c| {
            let deps: Vec<Value> = c
                .dependencies
                .iter()
                .map(|x| {
                    json!({
                        "namespace": x.namespace,
                        "type": x.r#type,
                        "kind": dependency_kind(x.kind),
                    })
                })
                .collect();
            json!({ "name": c.name, "dependencies": deps })
        })
        .collect();
    json!({ "controllers": controllers })
}

/// The controller graph in Graphviz: controllers are boxes, resource types ellipses;
/// inputs point from the type to the controller, outputs from the controller to the type.
pub fn dependencies_dot(d: &pb::DependenciesResponse) -> String {
    let quote = |s: &str| Value::String(s.to_owned()).to_string();
    let mut out = String::from("digraph controllers {\n  rankdir=LR;\n");
    let mut types = std::collections::BTreeSet::new();
    for c in &d.controllers {
        out.push_str(&format!("  {} [shape=box];\n", quote(&c.name)));
        for x in &c.dependencies {
            let ty = format!("{}/{}", x.namespace, x.r#type);
            types.insert(ty.clone());
            let kind = dependency_kind(x.kind);
            let (from, to) = if kind.ends_with("input") {
                (quote(&ty), quote(&c.name))
            } else {
                (quote(&c.name), quote(&ty))
            };
            let style = match kind.as_str() {
                "weak-input" => "dashed",
                "shared-output" => "dotted",
                _ => "solid",
            };
            out.push_str(&format!(
                "  {from} -> {to} [style={style}, label={}];\n",
                quote(&kind)
            ));
        }
    }
    for ty in types {
        out.push_str(&format!("  {} [shape=ellipse];\n", quote(&ty)));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_show_short_names_and_unknown_numbers_stay_visible() {
        assert_eq!(service_state(pb::ServiceState::Running as i32), "running");
        assert_eq!(phase(pb::UpgradePhase::TrialReady as i32), "trial-ready");
        assert_eq!(health(99), "unknown(99)");
    }

    #[test]
    fn spec_yaml_becomes_a_value_and_bad_yaml_stays_text() {
        assert_eq!(spec("a: 1\nb: [x]\n"), json!({"a": 1, "b": ["x"]}));
        assert_eq!(spec("a: [\n"), json!("a: [\n"));
    }

    #[test]
    fn dot_points_inputs_at_the_controller() {
        let graph = pb::DependenciesResponse {
            controllers: vec![pb::Controller {
                name: "network".into(),
                dependencies: vec![
                    pb::ControllerDependency {
                        namespace: "config".into(),
                        r#type: "ActiveNetwork".into(),
                        kind: pb::DependencyKind::WeakInput as i32,
                    },
                    pb::ControllerDependency {
                        namespace: "network".into(),
                        r#type: "Link".into(),
                        kind: pb::DependencyKind::ExclusiveOutput as i32,
                    },
                ],
            }],
        };
        let dot = dependencies_dot(&graph);
        assert!(
            dot.contains("\"config/ActiveNetwork\" -> \"network\""),
            "{dot}"
        );
        assert!(dot.contains("\"network\" -> \"network/Link\""), "{dot}");
    }
}
