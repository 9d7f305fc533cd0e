//! Strategic merge: patch documents are matched to config documents by `kind` (and `name` for
//! named kinds); maps merge key by key (`null` removes a key), lists of named items merge by
//! `name`, other lists are replaced; `$patch: delete` removes a document or a named item and
//! `$patch: replace` replaces a map whole.

use serde_json::{Map, Value};

use super::{reassemble, PatchError};
use crate::document::{Config, Kind, API_VERSION};
use crate::yaml::de::from_node;
use crate::yaml::parse_stream;
use crate::Limits;

const DIRECTIVE: &str = "$patch";

fn directive(v: &Value) -> Option<&str> {
    v.get(DIRECTIVE).and_then(Value::as_str)
}

fn doc_key(v: &Value) -> (Option<&str>, Option<&str>) {
    (
        v.get("kind").and_then(Value::as_str),
        v.get("name").and_then(Value::as_str),
    )
}

/// Strips `$patch` directives from a value that is added whole.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| *k != DIRECTIVE)
                .map(|(k, v)| (k.clone(), clean(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        other => other.clone(),
    }
}

fn named_list(items: &[Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("name").and_then(Value::as_str).is_some())
}

fn merge(base: &mut Value, patch: &Value, at: &str) -> Result<(), String> {
    if directive(patch) == Some("replace") {
        *base = clean(patch);
        return Ok(());
    }
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => merge_map(b, p, at),
        (Value::Array(b), Value::Array(p)) if !p.is_empty() && named_list(p) && named_list(b) => {
            merge_named(b, p, at)
        }
        (base, patch) => {
            *base = clean(patch);
            Ok(())
        }
    }
}

fn merge_map(
    base: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    for (k, pv) in patch {
        if k == DIRECTIVE {
            continue;
        }
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        match (pv, base.get_mut(k)) {
            (Value::Null, _) => {
                base.remove(k);
            }
            (pv, Some(bv)) => merge(bv, pv, &path)?,
            (pv, None) => {
                if directive(pv) == Some("delete") {
                    return Err(format!(
                        "`{path}`: `$patch: delete` of a key the config does not have"
                    ));
                }
                base.insert(k.clone(), clean(pv));
            }
        }
    }
    Ok(())
}

fn merge_named(base: &mut Vec<Value>, patch: &[Value], at: &str) -> Result<(), String> {
    for item in patch {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        let found = base
            .iter()
            .position(|b| b.get("name").and_then(Value::as_str) == Some(name));
        match (directive(item), found) {
            (Some("delete"), Some(i)) => {
                base.remove(i);
            }
            (Some("delete"), None) => {
                return Err(format!(
                    "`{at}`: `$patch: delete` of item `{name}`, which is not in the list"
                ))
            }
            (_, Some(i)) => merge(&mut base[i], item, &format!("{at}[{name}]"))?,
            (_, None) => base.push(clean(item)),
        }
    }
    Ok(())
}

/// Applies a multi-document YAML strategic-merge patch to `base`.
pub fn strategic_merge(base: &Config, patch_yaml: &str) -> Result<Config, PatchError> {
    let nodes =
        parse_stream(patch_yaml, &Limits::DEFAULT).map_err(|e| PatchError::Read(e.into()))?;
    let mut docs = base.documents();
    for (index, node) in nodes.iter().enumerate() {
        if node.is_null() {
            continue;
        }
        let patch: Value = from_node(node).map_err(|e| PatchError::Document {
            index,
            message: e.to_string(),
        })?;
        let bad = |message: String| PatchError::Document { index, message };
        let (kind, name) = doc_key(&patch);
        let kind = kind
            .and_then(Kind::from_name)
            .ok_or_else(|| bad("has no known `kind`".into()))?;
        if let Some(v) = patch.get("apiVersion") {
            if v.as_str() != Some(API_VERSION) {
                return Err(bad(format!("apiVersion {v} is not `{API_VERSION}`")));
            }
        }
        if kind.is_named() && name.is_none() {
            return Err(bad(format!("a {kind} patch needs `name`")));
        }
        let target = docs.iter().position(|d| {
            let (k, n) = doc_key(d);
            k == Some(kind.as_str()) && (!kind.is_named() || n == name)
        });
        let what = match name {
            Some(n) if kind.is_named() => format!("{kind} `{n}`"),
            _ => kind.to_string(),
        };
        match (directive(&patch), target) {
            (Some("delete"), Some(i)) => {
                docs.remove(i);
            }
            (Some("delete"), None) => return Err(PatchError::NothingToDelete { index, what }),
            (_, Some(i)) => merge(&mut docs[i], &patch, "").map_err(bad)?,
            (_, None) => {
                let mut doc = clean(&patch);
                if let Value::Object(m) = &mut doc {
                    m.insert("apiVersion".into(), Value::String(API_VERSION.into()));
                }
                docs.push(doc);
            }
        }
    }
    reassemble(&docs)
}
