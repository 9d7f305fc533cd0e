//! How a command reports what it did: a table or lines for people (`--output table`, the
//! default), one JSON document for scripts (`--output json`), or YAML (`--output yaml`).
//! Streams print one JSON object per line, or one YAML document per item. Every command
//! that reports goes through [`emit`] or [`item`], so the forms never drift apart.

use clap::ValueEnum;
use serde::Serialize;
use serde_json::Value;

use crate::client::exit::usage;

/// The form of a command's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Tables and lines for people.
    #[default]
    #[value(name = "table", alias = "text")]
    Text,
    /// One JSON document (streams: one JSON object per line), for scripts.
    Json,
    /// YAML (streams: one document per item, each after `---`).
    Yaml,
    /// A Graphviz digraph (only `skerryctl dependencies`).
    Dot,
}

impl Output {
    /// True for the forms scripts read (JSON, YAML).
    pub fn structured(self) -> bool {
        matches!(self, Output::Json | Output::Yaml)
    }
}

/// A command's result, with its words for people.
pub trait Report: Serialize {
    /// The report as people read it, ending in a newline.
    fn text(&self) -> String;
}

/// Renders a JSON value as a YAML document (block style; strings quoted where a plain
/// scalar would read back as something else).
pub fn yaml(value: &Value) -> String {
    skerry_config::yaml::emit::render(value)
}

/// The error for `--output dot` on a command that has no graph.
pub fn no_dot() -> anyhow::Error {
    usage("--output dot is only for `skerryctl dependencies`; use table, json or yaml")
}

/// Prints `report` in the form `output` asks for.
pub fn emit(output: Output, report: &impl Report) -> anyhow::Result<()> {
    match output {
        Output::Text => print!("{}", report.text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
        Output::Yaml => print!("{}", yaml(&serde_json::to_value(report)?)),
        Output::Dot => return Err(no_dot()),
    }
    Ok(())
}

/// Prints one item of a stream: a JSON line, a YAML document, or `text()` for people.
pub fn item(output: Output, value: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    match output {
        Output::Text => println!("{}", text()),
        Output::Json => println!("{}", serde_json::to_string(value)?),
        Output::Yaml => print!("---\n{}", yaml(value)),
        Output::Dot => return Err(no_dot()),
    }
    Ok(())
}

/// Prints a whole answer that is a value: pretty JSON, YAML, or `text()` for people.
pub fn value(output: Output, value: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    match output {
        Output::Text => print!("{}", text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", yaml(value)),
        Output::Dot => return Err(no_dot()),
    }
    Ok(())
}

/// A report that is one sentence for people and a set of fields for scripts.
#[derive(Debug, Serialize)]
pub struct Done<T: Serialize> {
    #[serde(skip)]
    pub words: String,
    #[serde(flatten)]
    pub fields: T,
}

impl<T: Serialize> Report for Done<T> {
    fn text(&self) -> String {
        format!("{}\n", self.words)
    }
}

/// Columns aligned under a header, for people. Cells are cut at [`MAX_CELL`] characters
/// and never contain a line break, so one row stays one line.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let clean = |cell: &str| -> String {
        let one_line: String = cell
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.chars().count() > MAX_CELL {
            let cut: String = one_line.chars().take(MAX_CELL - 1).collect();
            format!("{cut}…")
        } else {
            one_line
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// The most characters of one table cell.
pub const MAX_CELL: usize = 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_and_keeps_rows_on_one_line() {
        let text = table(
            &["ID", "STATE"],
            &[
                vec!["web".into(), "running".into()],
                vec!["db\nx".into(), "failed".into()],
            ],
        );
        assert_eq!(text, "ID    STATE\nweb   running\ndb x  failed\n");
    }

    #[test]
    fn yaml_renders_nested_values() {
        let v = serde_json::json!({"a": {"b": [1, "x y"]}});
        assert_eq!(yaml(&v), "a:\n  b:\n  - 1\n  - \"x y\"\n");
    }
}
