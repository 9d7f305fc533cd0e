//! The dependency graph of controllers and resource types, as data and as DOT.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{InputStrength, OutputOwnership};

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Type → controller, strong input.
    StrongInput,
    /// Type → controller, weak input.
    WeakInput,
    /// Controller → type, exclusive output.
    ExclusiveOutput,
    /// Controller → type, shared output.
    SharedOutput,
}

/// One edge; `from`/`to` name a type (inputs) or a controller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// Source node.
    pub from: String,
    /// Target node.
    pub to: String,
    /// Meaning.
    pub kind: EdgeKind,
}

/// Controllers, types and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DependencyGraph {
    /// Controller names.
    pub controllers: BTreeSet<String>,
    /// Type names.
    pub types: BTreeSet<String>,
    /// Edges, sorted.
    pub edges: BTreeSet<Edge>,
}

impl DependencyGraph {
    pub(crate) fn add_input(&mut self, controller: &str, type_name: &str, strength: InputStrength) {
        self.controllers.insert(controller.to_owned());
        self.types.insert(type_name.to_owned());
        self.edges.insert(Edge {
            from: type_name.to_owned(),
            to: controller.to_owned(),
            kind: match strength {
                InputStrength::Strong => EdgeKind::StrongInput,
                InputStrength::Weak => EdgeKind::WeakInput,
            },
        });
    }

    pub(crate) fn add_output(
        &mut self,
        controller: &str,
        type_name: &str,
        ownership: OutputOwnership,
    ) {
        self.controllers.insert(controller.to_owned());
        self.types.insert(type_name.to_owned());
        self.edges.insert(Edge {
            from: controller.to_owned(),
            to: type_name.to_owned(),
            kind: match ownership {
                OutputOwnership::Exclusive => EdgeKind::ExclusiveOutput,
                OutputOwnership::Shared => EdgeKind::SharedOutput,
            },
        });
    }

    /// Graphviz DOT: controllers are boxes, types ellipses; weak inputs dashed,
    /// shared outputs dotted.
    pub fn to_dot(&self) -> String {
        let mut dot = String::from("digraph runtime {\n  rankdir=LR;\n");
        for controller in &self.controllers {
            let _ = writeln!(
                dot,
                "  \"c:{}\" [label={:?}, shape=box];",
                escape(controller),
                controller
            );
        }
        for type_name in &self.types {
            let _ = writeln!(
                dot,
                "  \"t:{}\" [label={:?}, shape=ellipse];",
                escape(type_name),
                type_name
            );
        }
        for edge in &self.edges {
            let (from, to, style) = match edge.kind {
                EdgeKind::StrongInput => (
                    format!("t:{}", escape(&edge.from)),
                    format!("c:{}", escape(&edge.to)),
                    "solid",
                ),
                EdgeKind::WeakInput => (
                    format!("t:{}", escape(&edge.from)),
                    format!("c:{}", escape(&edge.to)),
                    "dashed",
                ),
                EdgeKind::ExclusiveOutput => (
                    format!("c:{}", escape(&edge.from)),
                    format!("t:{}", escape(&edge.to)),
                    "bold",
                ),
                EdgeKind::SharedOutput => (
                    format!("c:{}", escape(&edge.from)),
                    format!("t:{}", escape(&edge.to)),
                    "dotted",
                ),
            };
            let _ = writeln!(dot, "  \"{from}\" -> \"{to}\" [style={style}];");
        }
        dot.push_str("}\n");
        dot
    }
}

fn escape(name: &str) -> String {
    name.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_quotes_names() {
        let mut graph = DependencyGraph::default();
        graph.add_input("odd \"name\"", "T", InputStrength::Weak);
        let dot = graph.to_dot();
        assert!(
            dot.contains(r#""t:T" -> "c:odd \"name\"" [style=dashed];"#),
            "{dot}"
        );
        assert!(dot.ends_with("}\n"));
    }
}
