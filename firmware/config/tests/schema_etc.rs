//! The schema's shape, the dry-run diff, apply modes and the versioned persistence format.

use serde_json::{json, Value};
use skerry_config::kinds::{HumanDuration, WatchdogDevice};
use skerry_config::persist::{
    ConfigHistory, HistoryEntry, PersistError, StoredConfig, FORMAT_VERSION, HISTORY_LEN,
};
use skerry_config::{decode, document_schema, required_mode, ApplyMode, Effect, ModeError};

const EXAMPLE: &str = include_str!("data/example.yaml");

/// Checks `value` against the subset of JSON Schema the generated schema uses
/// (`$ref`, `oneOf`, `const`, `type`, `properties`, `required`, `additionalProperties`, `items`).
fn conforms(schema: &Value, value: &Value, root: &Value) -> bool {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return conforms(&root["$defs"][name], value, root);
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            return false;
        }
    }
    if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
        if branches.iter().filter(|b| conforms(b, value, root)).count() != 1 {
            return false;
        }
    }
    let ty_ok = match schema.get("type") {
        None => true,
        Some(Value::String(t)) => type_is(t, value),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| type_is(t, value)),
        Some(_) => false,
    };
    if !ty_ok {
        return false;
    }
    if let (Some(obj), Some(props)) = (
        value.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for (k, v) in obj {
            match props.get(k) {
                Some(p) if !conforms(p, v, root) => return false,
                Some(_) => {}
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return false
                }
                None => {}
            }
        }
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !required
            .iter()
            .filter_map(Value::as_str)
            .all(|r| obj.contains_key(r))
        {
            return false;
        }
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        return items.iter().all(|i| conforms(item_schema, i, root));
    }
    true
}

fn type_is(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

#[test]
fn schema_accepts_every_example_document_and_refuses_what_the_decoder_refuses() {
    let schema = document_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["oneOf"].as_array().unwrap().len(), 7);
    let config = decode(EXAMPLE).unwrap();
    for doc in config.documents() {
        assert!(conforms(&schema, &doc, &schema), "schema refuses {doc}");
    }
    let bad = [
        json!({"apiVersion": "skerry.dev/v1alpha1", "kind": "MachineConfig", "hostname": "a", "hostnme": "b"}),
        json!({"apiVersion": "skerry.dev/v1alpha1", "kind": "MachineConfig"}),
        json!({"apiVersion": "skerry.dev/v2", "kind": "MachineConfig", "hostname": "a"}),
        json!({"apiVersion": "skerry.dev/v1alpha1", "kind": "WatchdogConfig", "device": {"usb": {}}, "timeout": "1s"}),
        json!({"apiVersion": "skerry.dev/v1alpha1", "kind": "NetworkConfig", "links": [{"name": "e", "dhcp": "yes"}]}),
    ];
    for doc in bad {
        assert!(!conforms(&schema, &doc, &schema), "schema accepts {doc}");
    }
}

#[test]
fn diff_shows_changed_lines_only() {
    let a = decode(EXAMPLE).unwrap();
    let mut b = a.clone();
    b.machine.as_mut().unwrap().hostname = "edge-02".into();
    let diff = skerry_config::diff::unified_diff(&a, &b);
    assert!(diff.starts_with("--- current\n+++ proposed\n"), "{diff}");
    assert!(
        diff.contains("-hostname: edge-01\n+hostname: edge-02\n"),
        "{diff}"
    );
    assert_eq!(
        diff.lines().filter(|l| l.starts_with(['+', '-'])).count(),
        4,
        "{diff}"
    );
    assert!(skerry_config::diff::unified_diff(&a, &a).is_empty());
}

#[test]
fn apply_mode_follows_what_changed() {
    let a = decode(EXAMPLE).unwrap();
    let mut b = a.clone();
    b.machine.as_mut().unwrap().hostname = "edge-02".into();
    let d = required_mode(&a, &b);
    assert_eq!(d.effect(), Effect::Live);
    assert!(d.check(ApplyMode::NoReboot).is_ok());
    assert!(d
        .check(ApplyMode::Try {
            timeout: HumanDuration::secs(60)
        })
        .is_ok());

    let w = b.watchdog.as_mut().unwrap();
    w.device = WatchdogDevice::Gpio {
        chip: "/dev/gpiochip0".into(),
        line: 17,
    };
    let d = required_mode(&a, &b);
    assert_eq!(d.effect(), Effect::Reboot);
    let reasons: Vec<_> = d.reboot_reasons().map(|c| c.what.as_str()).collect();
    assert_eq!(reasons, ["device"]);
    let e = d.check(ApplyMode::NoReboot).unwrap_err();
    let ModeError::NeedsReboot { reasons, .. } = &e;
    assert!(reasons[0].contains("WatchdogConfig `device`"), "{e}");
    assert!(e.to_string().contains("use `reboot` or `staged`"), "{e}");
    assert!(d
        .check(ApplyMode::Try {
            timeout: HumanDuration::secs(60)
        })
        .is_err());
    assert!(d.check(ApplyMode::Reboot).is_ok() && d.check(ApplyMode::Staged).is_ok());

    let mut c = a.clone();
    c.machine.as_mut().unwrap().identity.site = Some("elsewhere".into());
    assert_eq!(required_mode(&a, &c).effect(), Effect::Reboot);
    assert!(required_mode(&a, &a).changes.is_empty());
}

#[test]
fn apply_mode_serializes_with_its_timeout() {
    let m = ApplyMode::Try {
        timeout: HumanDuration::secs(90),
    };
    let text = serde_json::to_string(&m).unwrap();
    assert_eq!(text, r#"{"mode":"try","timeout":"1m 30s"}"#);
    assert_eq!(serde_json::from_str::<ApplyMode>(&text).unwrap(), m);
    assert_eq!(m.to_string(), "try(1m 30s)");
    assert_eq!(
        serde_json::to_string(&ApplyMode::NoReboot).unwrap(),
        r#"{"mode":"no-reboot"}"#
    );
}

#[test]
fn stored_config_round_trips_and_refuses_a_newer_format() {
    let config = decode(EXAMPLE).unwrap();
    let bytes = StoredConfig::new(&config, 7).to_bytes().unwrap();
    let (stored, back) = StoredConfig::from_bytes(&bytes).unwrap();
    assert_eq!(
        (stored.format_version, stored.generation),
        (FORMAT_VERSION, 7)
    );
    assert_eq!(back.to_yaml(), config.to_yaml());

    let mut newer: Value = serde_json::from_slice(&bytes).unwrap();
    newer["formatVersion"] = json!(FORMAT_VERSION + 1);
    newer["addedByV2"] = json!({"x": 1});
    let e = StoredConfig::from_bytes(&serde_json::to_vec(&newer).unwrap()).unwrap_err();
    assert!(
        matches!(
            e,
            PersistError::NewerFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("written by a newer release"), "{e}");
    assert!(matches!(
        StoredConfig::from_bytes(b"{nope"),
        Err(PersistError::Corrupt { .. })
    ));
    let huge = vec![b' '; skerry_config::persist::MAX_RECORD_BYTES + 1];
    assert!(matches!(
        StoredConfig::from_bytes(&huge),
        Err(PersistError::TooLarge { .. })
    ));
}

#[test]
fn history_is_bounded_and_round_trips() {
    let config = decode(EXAMPLE).unwrap();
    let mut h = ConfigHistory::default();
    for g in 0..(HISTORY_LEN as u64 + 5) {
        h.push(HistoryEntry {
            generation: g,
            mode: ApplyMode::NoReboot,
            accepted_at: 1_700_000_000 + g,
            yaml: config.to_yaml(),
        });
    }
    assert_eq!(h.entries().count(), HISTORY_LEN);
    assert_eq!(
        h.entries().next().unwrap().generation,
        5,
        "the oldest are dropped"
    );
    let back = ConfigHistory::from_bytes(&h.to_bytes().unwrap()).unwrap();
    assert_eq!(back, h);
    let mut newer: Value = serde_json::from_slice(&h.to_bytes().unwrap()).unwrap();
    newer["formatVersion"] = json!(9);
    assert!(matches!(
        ConfigHistory::from_bytes(&serde_json::to_vec(&newer).unwrap()),
        Err(PersistError::NewerFormat { found: 9, .. })
    ));
}
