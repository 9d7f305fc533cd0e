//! Hostile input is refused by our limits, fast, with an error naming the limit.

use skerry_config::yaml::TreeError;
use skerry_config::{decode, decode_with, DecodeError, Limits};

fn tree_error(text: &str) -> TreeError {
    match decode(text) {
        Err(DecodeError::Yaml(t)) => t,
        other => panic!("expected a YAML limit error, got {other:?}"),
    }
}

#[test]
fn alias_bomb_is_refused() {
    // Nine levels of ten aliases each: 10^9 nodes if expanded.
    let mut text = String::from("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nidentity:\n  labels:\n    a0: &a0 x\n");
    for level in 1..10 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", level - 1)).collect();
        text.push_str(&format!("    a{level}: &a{level} [{}]\n", refs.join(", ")));
    }
    let err = tree_error(&text);
    assert!(
        matches!(err, TreeError::TooManyNodes { limit, .. } if limit == Limits::DEFAULT.max_nodes),
        "{err:?}"
    );
    assert!(err.to_string().contains("aliases count"), "{err}");
}

#[test]
fn small_aliases_still_work_and_count() {
    let text = "apiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: a\ncommand: &cmd [/bin/a, --x]\nhealthChecks:\n  - name: run\n    probe:\n      exec:\n        command: *cmd\n";
    let config = decode(text).unwrap();
    assert_eq!(config.services[0].command, ["/bin/a", "--x"]);
    let skerry_config::kinds::Probe::Exec { command } = &config.services[0].health_checks[0].probe
    else {
        panic!("exec probe")
    };
    assert_eq!(command, &config.services[0].command);
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {}{}\n",
        "[".repeat(30),
        "]".repeat(30)
    );
    assert!(matches!(
        tree_error(&text),
        TreeError::TooDeep { limit: 24, .. }
    ));
    // Far deeper: the parser's own recursion guard may speak first; either way it is refused.
    let text = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = decode_with(
        &text,
        &Limits {
            max_bytes: usize::MAX,
            ..Limits::DEFAULT
        },
    )
    .unwrap_err();
    assert!(
        matches!(&err, DecodeError::Yaml(TreeError::TooDeep { .. }))
            || err.to_string().contains("recursion limit"),
        "{err:?}"
    );
    let block: String = (0..40)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i * 2)))
        .collect();
    let err = tree_error(&format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nidentity:\n{block}"
    ));
    assert!(matches!(err, TreeError::TooDeep { .. }), "{err:?}");
}

#[test]
fn huge_input_is_refused_before_parsing() {
    let text = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {}\n",
        "a".repeat(300 * 1024)
    );
    assert!(matches!(
        tree_error(&text),
        TreeError::TooLarge { limit: 262_144, .. }
    ));
}

#[test]
fn too_many_documents_are_refused() {
    let text = "---\n{}\n".repeat(100);
    assert!(matches!(
        tree_error(&text),
        TreeError::TooManyDocuments { limit: 64 }
    ));
}

#[test]
fn many_nodes_without_aliases_are_refused() {
    let items = vec!["1"; 60_000].join(",");
    let text = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: a\ncommand: [{items}]\n"
    );
    assert!(matches!(tree_error(&text), TreeError::TooManyNodes { .. }));
}

#[test]
fn every_expanded_alias_node_counts() {
    // Five levels of ten aliases: 111,111 nodes expanded from a 300-byte stream. Counting each
    // alias as one node would accept it under a 1,000-node limit.
    let mut text = String::from("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nidentity:\n  labels:\n    a0: &a0 x\n");
    for level in 1..6 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", level - 1)).collect();
        text.push_str(&format!("    a{level}: &a{level} [{}]\n", refs.join(", ")));
    }
    let limits = Limits {
        max_nodes: 1_000,
        ..Limits::DEFAULT
    };
    let err = decode_with(&text, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::Yaml(TreeError::TooManyNodes { limit: 1_000, .. })
        ),
        "{err:?}"
    );
}
