//! YAML events to a tree of positioned nodes, under the stream limits.
//!
//! Aliases are expanded here (a config has no use for shared nodes), and every expanded node
//! counts against `max_nodes` before it is copied, so a billion-laughs stream stops at the
//! limit instead of after exhausting memory.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::Limits;

/// A position in the source: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mark {
    /// Line, counted from 1.
    pub line: usize,
    /// Column, counted from 1.
    pub column: usize,
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

impl Mark {
    fn of(span: &Span) -> Mark {
        Mark {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar { value: String, plain: bool },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order, keys unique.
    Map(Vec<(Node, Node)>),
}

/// One node of a document and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The node's content.
    pub kind: NodeKind,
    /// Where the node starts.
    pub mark: Mark,
    /// Nodes in this subtree, itself included (what copying it for an alias costs).
    pub size: usize,
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// True for a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { value, plain: true } if matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

/// Why a YAML stream was refused before any document was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("the config is {bytes} bytes, more than the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("the config has more than {limit} documents")]
    TooManyDocuments { limit: usize },
    #[error("at {at}: nesting deeper than the limit of {limit}")]
    TooDeep { at: Mark, limit: usize },
    #[error("at {at}: more than {limit} nodes (aliases count every node they expand to)")]
    TooManyNodes { at: Mark, limit: usize },
    #[error("at {at}: YAML syntax: {message}")]
    Syntax { at: Mark, message: String },
    #[error("at {at}: alias to an anchor that is not defined before it")]
    UnknownAlias { at: Mark },
    #[error("at {at}: key `{key}` appears twice in the same mapping (first at line {first_line})")]
    DuplicateKey {
        at: Mark,
        key: String,
        first_line: usize,
    },
    #[error("at {at}: a mapping key must be a scalar")]
    ComplexKey { at: Mark },
    #[error("at {at}: YAML tags (`!{tag}`) are not used in the machine config")]
    Tag { at: Mark, tag: String },
}

enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
        anchor: usize,
        size: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Each key so far and its line, so duplicate checks stay linear in the map's size.
        lines: HashMap<String, usize>,
        mark: Mark,
        anchor: usize,
        size: usize,
    },
}

struct Builder {
    limits: Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    documents: Vec<Node>,
}

/// Parses a whole stream into its documents (an empty document becomes a null scalar).
pub fn parse_stream(text: &str, limits: &Limits) -> Result<Vec<Node>, TreeError> {
    if text.len() > limits.max_bytes {
        return Err(TreeError::TooLarge {
            bytes: text.len(),
            limit: limits.max_bytes,
        });
    }
    let mut builder = Builder {
        limits: *limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        documents: Vec::new(),
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| TreeError::Syntax {
            at: Mark {
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
        builder.event(event, Mark::of(&span))?;
    }
    Ok(builder.documents)
}

impl Builder {
    fn event(&mut self, event: Event<'_>, at: Mark) -> Result<(), TreeError> {
        match event {
            Event::DocumentStart(_) => {
                if self.documents.len() >= self.limits.max_documents {
                    return Err(TreeError::TooManyDocuments {
                        limit: self.limits.max_documents,
                    });
                }
                self.anchors.clear();
            }
            Event::Scalar(value, style, anchor, tag) => {
                if let Some(tag) = tag {
                    return Err(TreeError::Tag {
                        at,
                        tag: format!("{}{}", tag.handle.trim_start_matches('!'), tag.suffix),
                    });
                }
                self.count(1, at)?;
                let plain = matches!(style, ScalarStyle::Plain);
                let node = Node {
                    kind: NodeKind::Scalar {
                        value: value.into_owned(),
                        plain,
                    },
                    mark: at,
                    size: 1,
                };
                self.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if tag.is_some() =>
            {
                let tag = tag
                    .map(|t| format!("{}{}", t.handle.trim_start_matches('!'), t.suffix))
                    .unwrap_or_default();
                let _ = anchor;
                return Err(TreeError::Tag { at, tag });
            }
            Event::SequenceStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Seq {
                    items: Vec::new(),
                    mark: at,
                    anchor,
                    size: 1,
                });
            }
            Event::MappingStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    lines: HashMap::new(),
                    mark: at,
                    anchor,
                    size: 1,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        items,
                        mark,
                        anchor,
                        size,
                    }) => (
                        Node {
                            kind: NodeKind::Seq(items),
                            mark,
                            size,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        entries,
                        mark,
                        anchor,
                        size,
                        ..
                    }) => (
                        Node {
                            kind: NodeKind::Map(entries),
                            mark,
                            size,
                        },
                        anchor,
                    ),
                    None => {
                        return Err(TreeError::Syntax {
                            at,
                            message: "collection end without a start".into(),
                        })
                    }
                };
                self.finish(node, anchor)?;
            }
            Event::Alias(id) => {
                let size = self
                    .anchors
                    .get(&id)
                    .ok_or(TreeError::UnknownAlias { at })?
                    .size;
                self.count(size, at)?;
                let node = self
                    .anchors
                    .get(&id)
                    .ok_or(TreeError::UnknownAlias { at })?
                    .clone();
                self.finish(node, 0)?;
            }
            Event::DocumentEnd | Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn open(&mut self, at: Mark) -> Result<(), TreeError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(TreeError::TooDeep {
                at,
                limit: self.limits.max_depth,
            });
        }
        self.count(1, at)
    }

    fn count(&mut self, n: usize, at: Mark) -> Result<(), TreeError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(TreeError::TooManyNodes {
                at,
                limit: self.limits.max_nodes,
            });
        }
        Ok(())
    }

    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), TreeError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, size, .. }) => {
                *size += node.size;
                items.push(node);
            }
            Some(Frame::Map {
                entries,
                key,
                lines,
                size,
                ..
            }) => {
                *size += node.size;
                match key.take() {
                    None => {
                        let Some(text) = node.as_scalar() else {
                            return Err(TreeError::ComplexKey { at: node.mark });
                        };
                        if let Some(first_line) = lines.get(text) {
                            return Err(TreeError::DuplicateKey {
                                at: node.mark,
                                key: text.to_string(),
                                first_line: *first_line,
                            });
                        }
                        lines.insert(text.to_string(), node.mark.line);
                        *key = Some(node);
                    }
                    Some(k) => entries.push((k, node)),
                }
            }
        }
        Ok(())
    }
}
