//! RFC 6902 JSON Patch over the config tree: an object keyed by kind, whose named kinds are
//! objects keyed by name, e.g. `/NetworkConfig/links/0/mtu` or `/ServiceConfig/web/command`.
//! Documents are the kinds' fields without `apiVersion` and `kind`.

use serde_json::{Map, Value};

use super::{reassemble, PatchError};
use crate::document::{Config, Kind, API_VERSION};
use crate::Limits;

/// The config as the tree JSON Patch paths address.
pub fn json_patch_tree(config: &Config) -> Value {
    let mut tree = Map::new();
    for doc in config.documents() {
        let Value::Object(mut fields) = doc else {
            continue;
        };
        let kind = fields
            .remove("kind")
            .and_then(|k| k.as_str().map(str::to_string))
            .unwrap_or_default();
        fields.remove("apiVersion");
        if Kind::from_name(&kind).is_some_and(Kind::is_named) {
            let name = fields
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let named = tree
                .entry(kind)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(n) = named {
                n.insert(name, Value::Object(fields));
            }
        } else {
            tree.insert(kind, Value::Object(fields));
        }
    }
    Value::Object(tree)
}

fn with_header(kind: Kind, body: Value) -> Result<Value, PatchError> {
    let Value::Object(fields) = body else {
        return Err(PatchError::Apply(format!("/{kind} must be an object")));
    };
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    doc.insert("kind".into(), Value::String(kind.as_str().into()));
    doc.extend(fields);
    Ok(Value::Object(doc))
}

/// Applies an RFC 6902 patch (a JSON array of operations) to `base`. The operations apply
/// all or nothing, as the RFC requires.
pub fn json_patch(base: &Config, patch_json: &str) -> Result<Config, PatchError> {
    let limit = Limits::DEFAULT.max_bytes;
    if patch_json.len() > limit {
        return Err(PatchError::TooLarge {
            bytes: patch_json.len(),
            limit,
        });
    }
    let patch: json_patch::Patch =
        serde_json::from_str(patch_json).map_err(|e| PatchError::NotJsonPatch(e.to_string()))?;
    let mut tree = json_patch_tree(base);
    json_patch::patch(&mut tree, &patch).map_err(|e| PatchError::Apply(e.to_string()))?;
    let Value::Object(kinds) = tree else {
        return Err(PatchError::Apply(
            "the patched config tree is not an object keyed by kind".into(),
        ));
    };
    let mut docs = Vec::new();
    for (name, body) in kinds {
        let kind = Kind::from_name(&name)
            .ok_or_else(|| PatchError::Apply(format!("`/{name}` is not a document kind")))?;
        if kind.is_named() {
            let Value::Object(items) = body else {
                return Err(PatchError::Apply(format!(
                    "/{kind} must be an object keyed by name"
                )));
            };
            for (key, mut item) in items {
                if let Value::Object(m) = &mut item {
                    match m.get("name").and_then(Value::as_str) {
                        None => {
                            m.insert("name".into(), Value::String(key.clone()));
                        }
                        Some(n) if n != key => {
                            return Err(PatchError::Apply(format!(
                                "/{kind}/{key} has name `{n}`; the key and the name must agree"
                            )));
                        }
                        Some(_) => {}
                    }
                }
                docs.push(with_header(kind, item)?);
            }
        } else {
            docs.push(with_header(kind, body)?);
        }
    }
    reassemble(&docs)
}
