//! `skerryctl gen schema`: the machine config's JSON Schema, generated from the config types,
//! for editors and CI to check a config before it reaches a device.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Arguments of `gen schema`.
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write the schema to FILE instead of standard output (replaces FILE).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The schema as printed: pretty JSON ending in a newline (the same with any `--output`,
/// since the schema is itself one JSON document).
pub fn schema_text() -> anyhow::Result<String> {
    let schema = skerry_config::document_schema();
    Ok(format!(
        "{}\n",
        serde_json::to_string_pretty(&schema).context("rendering the JSON Schema")?
    ))
}

/// Prints or writes the schema.
pub fn run(args: &SchemaArgs) -> anyhow::Result<()> {
    let text = schema_text()?;
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("writing the schema to {}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .context("writing the schema to standard output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_every_kind_and_is_strict() {
        let schema: serde_json::Value = serde_json::from_str(&schema_text().unwrap()).unwrap();
        let kinds: Vec<_> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["properties"]["kind"]["const"].clone())
            .collect();
        assert_eq!(
            kinds,
            [
                "MachineConfig",
                "NetworkConfig",
                "TimeConfig",
                "ServiceConfig",
                "WatchdogConfig",
                "UpdateConfig",
                "FleetConfig"
            ]
        );
        for branch in schema["oneOf"].as_array().unwrap() {
            assert_eq!(branch["additionalProperties"], false, "{branch}");
        }
    }

    #[test]
    fn out_writes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.json");
        run(&SchemaArgs {
            out: Some(path.clone()),
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            schema_text().unwrap()
        );
        let err = run(&SchemaArgs {
            out: Some(dir.path().join("missing/dir/schema.json")),
        })
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("writing the schema to"),
            "{err:#}"
        );
    }
}
