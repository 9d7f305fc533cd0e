//! The config as a whole: documents by kind, strict decoding, canonical rendering.
//!
//! Each YAML document carries `apiVersion` and `kind`; the rest of its keys are the kind's
//! fields. `ServiceConfig` is a named kind (one document per service, matched by `name`);
//! every other kind appears at most once.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{DecodeError, DocumentRef};
use crate::kinds::{
    FleetConfig, MachineConfig, NetworkConfig, ServiceConfig, TimeConfig, UpdateConfig,
    WatchdogConfig,
};
use crate::source::SourceMap;
use crate::yaml::de::{from_node, render_path, Segment};
use crate::yaml::{emit, parse_stream, Node, NodeKind};
use crate::Limits;

/// The API version every document declares.
pub const API_VERSION: &str = "skerry.dev/v1alpha1";

/// The document kinds, in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Machine,
    Network,
    Time,
    Service,
    Watchdog,
    Update,
    Fleet,
}

impl Kind {
    /// Every kind, in canonical order.
    pub const ALL: [Kind; 7] = [
        Kind::Machine,
        Kind::Network,
        Kind::Time,
        Kind::Service,
        Kind::Watchdog,
        Kind::Update,
        Kind::Fleet,
    ];

    /// The `kind:` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Machine => "MachineConfig",
            Kind::Network => "NetworkConfig",
            Kind::Time => "TimeConfig",
            Kind::Service => "ServiceConfig",
            Kind::Watchdog => "WatchdogConfig",
            Kind::Update => "UpdateConfig",
            Kind::Fleet => "FleetConfig",
        }
    }

    /// Parses a `kind:` value.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// True for kinds matched by `name` as well as kind.
    pub fn is_named(self) -> bool {
        self == Kind::Service
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole machine config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub machine: Option<MachineConfig>,
    pub network: Option<NetworkConfig>,
    pub time: Option<TimeConfig>,
    /// Services in document order.
    pub services: Vec<ServiceConfig>,
    pub watchdog: Option<WatchdogConfig>,
    pub update: Option<UpdateConfig>,
    pub fleet: Option<FleetConfig>,
}

/// Keys that were accepted once and are refused now, with what to write instead.
const DEPRECATED: &[(Kind, &[&str], &str)] = &[
    (Kind::Network, &["nameservers"], "use `dns.servers`"),
    (
        Kind::Machine,
        &["identity", "uuid"],
        "use `identity.machineId`",
    ),
    (
        Kind::Update,
        &["server"],
        "use `repository` (a signed TUF repository URL)",
    ),
    (Kind::Time, &["ntp"], "use `sntp`"),
];

fn find_key<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    let mut here = node;
    for (i, step) in path.iter().enumerate() {
        let NodeKind::Map(entries) = &here.kind else {
            return None;
        };
        let (k, v) = entries.iter().find(|(k, _)| k.as_scalar() == Some(step))?;
        if i + 1 == path.len() {
            return Some(k);
        }
        here = v;
    }
    None
}

/// Decodes a config stream under the default limits.
pub fn decode(text: &str) -> Result<Config, DecodeError> {
    decode_with(text, &Limits::DEFAULT).map(|(c, _)| c)
}

/// Decodes a config stream, returning where each key was (for validation reports).
pub fn decode_with(text: &str, limits: &Limits) -> Result<(Config, SourceMap), DecodeError> {
    let nodes = parse_stream(text, limits)?;
    let mut config = Config::default();
    let mut sources = SourceMap::default();
    let mut seen: Vec<(Kind, usize)> = Vec::new();
    for (index, node) in nodes.iter().enumerate() {
        if node.is_null() {
            continue;
        }
        let (kind, body) = header(index, node)?;
        let doc = DocumentRef {
            index,
            kind: kind.as_str().to_string(),
        };
        if !kind.is_named() {
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == kind) {
                return Err(DecodeError::DuplicateDocument {
                    document: doc,
                    line: node.mark.line,
                    first: *first,
                });
            }
        }
        seen.push((kind, index));
        for (dk, path, hint) in DEPRECATED {
            if *dk == kind {
                if let Some(key) = find_key(&body, path) {
                    return Err(DecodeError::Deprecated {
                        document: doc,
                        path: path.join("."),
                        line: key.mark.line,
                        column: key.mark.column,
                        hint,
                    });
                }
            }
        }
        match kind {
            Kind::Machine => config.machine = Some(body_as(&doc, &body)?),
            Kind::Network => config.network = Some(body_as(&doc, &body)?),
            Kind::Time => config.time = Some(body_as(&doc, &body)?),
            Kind::Service => config.services.push(body_as(&doc, &body)?),
            Kind::Watchdog => config.watchdog = Some(body_as(&doc, &body)?),
            Kind::Update => config.update = Some(body_as(&doc, &body)?),
            Kind::Fleet => config.fleet = Some(body_as(&doc, &body)?),
        }
        let name = if kind.is_named() {
            config.services.last().map(|s| s.name.clone())
        } else {
            None
        };
        sources.record_document(index, kind, name, &body);
    }
    Ok((config, sources))
}

/// Splits `apiVersion` and `kind` off a document and returns the rest.
fn header(index: usize, node: &Node) -> Result<(Kind, Node), DecodeError> {
    let NodeKind::Map(entries) = &node.kind else {
        return Err(DecodeError::NotAMapping {
            index,
            line: node.mark.line,
        });
    };
    let field = |name: &str| entries.iter().find(|(k, _)| k.as_scalar() == Some(name));
    let Some((_, kind_node)) = field("kind") else {
        return Err(DecodeError::MissingHeader {
            index,
            key: "kind",
            line: node.mark.line,
        });
    };
    let kind_text = kind_node.as_scalar().unwrap_or_default();
    let kind = Kind::from_name(kind_text).ok_or_else(|| DecodeError::UnknownKind {
        index,
        kind: kind_text.to_string(),
        line: kind_node.mark.line,
        column: kind_node.mark.column,
    })?;
    let Some((_, version)) = field("apiVersion") else {
        return Err(DecodeError::MissingHeader {
            index,
            key: "apiVersion",
            line: node.mark.line,
        });
    };
    if version.as_scalar() != Some(API_VERSION) {
        return Err(DecodeError::ApiVersion {
            document: DocumentRef {
                index,
                kind: kind.as_str().to_string(),
            },
            found: version.as_scalar().unwrap_or_default().to_string(),
            line: version.mark.line,
        });
    }
    let rest = entries
        .iter()
        .filter(|(k, _)| !matches!(k.as_scalar(), Some("kind" | "apiVersion")))
        .cloned()
        .collect();
    Ok((
        kind,
        Node {
            kind: NodeKind::Map(rest),
            mark: node.mark,
            size: node.size,
        },
    ))
}

fn body_as<T: DeserializeOwned>(doc: &DocumentRef, body: &Node) -> Result<T, DecodeError> {
    from_node(body).map_err(|e| {
        let mut path = e.path.clone();
        if let crate::yaml::de::Problem::UnknownKey { key, .. } = &e.problem {
            if path.last() != Some(&Segment::Key(key.clone())) {
                path.push(Segment::Key(key.clone()));
            }
        }
        let mark = e.mark.unwrap_or(body.mark);
        DecodeError::Field {
            document: doc.clone(),
            path: render_path(&path),
            line: mark.line,
            column: mark.column,
            problem: e.to_string(),
        }
    })
}

/// One document as a JSON value: `apiVersion`, `kind`, then its fields.
pub(crate) fn document_value<T: Serialize>(kind: Kind, body: &T) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), Value::String(API_VERSION.into()));
    out.insert("kind".into(), Value::String(kind.as_str().into()));
    // Every kind is a struct of strings, numbers, lists and string-keyed maps: it always
    // serializes to an object.
    if let Ok(Value::Object(fields)) = serde_json::to_value(body) {
        out.extend(fields);
    }
    Value::Object(out)
}

impl Config {
    /// The documents in canonical order (kind order; services sorted by name).
    pub fn documents(&self) -> Vec<Value> {
        let mut docs = Vec::new();
        if let Some(m) = &self.machine {
            docs.push(document_value(Kind::Machine, m));
        }
        if let Some(n) = &self.network {
            docs.push(document_value(Kind::Network, n));
        }
        if let Some(t) = &self.time {
            docs.push(document_value(Kind::Time, t));
        }
        let mut services: Vec<&ServiceConfig> = self.services.iter().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        docs.extend(
            services
                .into_iter()
                .map(|s| document_value(Kind::Service, s)),
        );
        if let Some(w) = &self.watchdog {
            docs.push(document_value(Kind::Watchdog, w));
        }
        if let Some(u) = &self.update {
            docs.push(document_value(Kind::Update, u));
        }
        if let Some(f) = &self.fleet {
            docs.push(document_value(Kind::Fleet, f));
        }
        docs
    }

    /// The canonical YAML rendering: one document per kind, `---` between them.
    pub fn to_yaml(&self) -> String {
        let docs: Vec<String> = self.documents().iter().map(emit::render).collect();
        docs.join("---\n")
    }
}
