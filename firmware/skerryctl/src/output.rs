//! How a command reports what it did: words for people, or one JSON document on standard
//! output for scripts (`--output json`). Every command that reports goes through
//! [`emit`], so the two never drift apart.

use clap::ValueEnum;
use serde::Serialize;

/// The form of a command's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// A command's result, with its words for people.
pub trait Report: Serialize {
    /// The report as people read it, ending in a newline.
    fn text(&self) -> String;
}

/// Prints `report` in the form `output` asks for.
pub fn emit(output: Output, report: &impl Report) -> anyhow::Result<()> {
    match output {
        Output::Text => print!("{}", report.text()),
        Output::Json => println!("{}", serde_json::to_string_pretty(report)?),
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
