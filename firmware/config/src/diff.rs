//! The dry-run diff: a unified, line-based diff of the two configs' canonical YAML.

use crate::document::Config;

/// A unified diff from `current` to `proposed`; empty when they render the same.
pub fn unified_diff(current: &Config, proposed: &Config) -> String {
    let (a, b) = (current.to_yaml(), proposed.to_yaml());
    if a == b {
        return String::new();
    }
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("current", "proposed")
        .to_string()
}
