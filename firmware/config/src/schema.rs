//! The published JSON Schema of one config document, generated from the types.
//!
//! The schema is a `oneOf` over the kinds; each branch is the kind's own schema with the
//! `apiVersion` and `kind` constants added, so an editor checks a document against exactly
//! the fields the decoder accepts (`additionalProperties: false` mirrors strict decoding).

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::document::{Kind, API_VERSION};
use crate::kinds::{
    FleetConfig, MachineConfig, NetworkConfig, ServiceConfig, TimeConfig, UpdateConfig,
    WatchdogConfig,
};

fn branch<T: JsonSchema>(
    gen: &mut schemars::SchemaGenerator,
    kind: Kind,
    defs: &mut Map<String, Value>,
) -> Value {
    let mut schema = gen.root_schema_for::<T>().to_value();
    if let Some(Value::Object(d)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) {
        defs.extend(d);
    }
    if let Value::Object(o) = &mut schema {
        o.remove("$schema");
        let props = o.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            p.insert("apiVersion".into(), json!({ "const": API_VERSION }));
            p.insert("kind".into(), json!({ "const": kind.as_str() }));
        }
        let required = o.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(r) = required {
            r.insert(0, json!("kind"));
            r.insert(0, json!("apiVersion"));
        }
    }
    schema
}

/// The JSON Schema (draft 2020-12) of one document of the machine config.
pub fn document_schema() -> Value {
    let mut gen = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut defs = Map::new();
    let branches = vec![
        branch::<MachineConfig>(&mut gen, Kind::Machine, &mut defs),
        branch::<NetworkConfig>(&mut gen, Kind::Network, &mut defs),
        branch::<TimeConfig>(&mut gen, Kind::Time, &mut defs),
        branch::<ServiceConfig>(&mut gen, Kind::Service, &mut defs),
        branch::<WatchdogConfig>(&mut gen, Kind::Watchdog, &mut defs),
        branch::<UpdateConfig>(&mut gen, Kind::Update, &mut defs),
        branch::<FleetConfig>(&mut gen, Kind::Fleet, &mut defs),
    ];
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://skerry.dev/schemas/v1alpha1/machine-config.json",
        "title": "Skerry machine config document",
        "description": "One document of a multi-document YAML machine config; `kind` selects its fields.",
        "oneOf": branches,
        "$defs": defs,
    })
}
