//! Where each key of a decoded config was, so validation can name lines as well as paths.

use std::collections::BTreeMap;

use crate::document::Kind;
use crate::yaml::de::{render_path, Segment};
use crate::yaml::{Mark, Node, NodeKind};

/// A document by kind and, for named kinds, name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocKey {
    pub kind: Kind,
    pub name: Option<String>,
}

/// Key paths of each document to the document's index and the node's position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    entries: BTreeMap<(DocKey, String), (usize, Mark)>,
}

impl SourceMap {
    pub(crate) fn record_document(
        &mut self,
        index: usize,
        kind: Kind,
        name: Option<String>,
        body: &Node,
    ) {
        let key = DocKey { kind, name };
        let mut path = Vec::new();
        self.walk(index, &key, body, &mut path);
    }

    fn walk(&mut self, index: usize, key: &DocKey, node: &Node, path: &mut Vec<Segment>) {
        self.entries
            .insert((key.clone(), render_path(path)), (index, node.mark));
        match &node.kind {
            NodeKind::Scalar { .. } => {}
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    self.walk(index, key, item, path);
                    path.pop();
                }
            }
            NodeKind::Map(entries) => {
                for (k, v) in entries {
                    path.push(Segment::Key(k.as_scalar().unwrap_or_default().to_string()));
                    self.walk(index, key, v, path);
                    path.pop();
                }
            }
        }
    }

    /// The document index and position of `path` in a document, or of its nearest recorded
    /// ancestor (a defaulted key has no position of its own).
    pub fn locate(&self, doc: &DocKey, path: &str) -> Option<(usize, Mark)> {
        let mut p = path.to_string();
        loop {
            if let Some(found) = self.entries.get(&(doc.clone(), p.clone())) {
                return Some(*found);
            }
            if p.is_empty() {
                return None;
            }
            let cut = p.rfind(['.', '[']).unwrap_or(0);
            p.truncate(cut);
        }
    }
}
