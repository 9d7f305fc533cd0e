//! Prints a table of decode, validate, render and refusal times (`cargo bench -p skerry-config`).

use std::hint::black_box;
use std::time::Instant;

fn row<T>(label: &str, runs: u32, f: impl Fn() -> T) {
    let start = Instant::now();
    for _ in 0..runs {
        black_box(f());
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / f64::from(runs);
    println!("| {label:<44} | {micros:>12.1} |");
}

fn alias_bomb() -> String {
    let mut text = String::from("apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: a\nidentity:\n  labels:\n    a0: &a0 x\n");
    for level in 1..10 {
        let refs: Vec<String> = (0..10).map(|_| format!("*a{}", level - 1)).collect();
        text.push_str(&format!("    a{level}: &a{level} [{}]\n", refs.join(", ")));
    }
    text
}

fn main() {
    let example = include_str!("../tests/data/example.yaml");
    let config = skerry_config::decode(example).expect("the example decodes");
    let list = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: a\ncommand: [{}]\n",
        vec!["1"; 40_000].join(",")
    );
    let keys: String = (0..20_000).map(|i| format!("  k{i}: v\n")).collect();
    let map = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: ServiceConfig\nname: a\ncommand: [x]\nenv:\n{keys}"
    );
    let brackets = format!(
        "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let bomb = alias_bomb();
    println!("| what | µs per run |\n| --- | ---: |");
    row("decode the example (7 documents)", 2000, || {
        skerry_config::decode(example)
    });
    row("validate the example", 2000, || {
        skerry_config::validate(&config, None)
    });
    row("render the example as canonical YAML", 2000, || {
        config.to_yaml()
    });
    row(
        "generate the JSON Schema",
        200,
        skerry_config::document_schema,
    );
    row("refuse an alias bomb (10^9 nodes expanded)", 200, || {
        skerry_config::decode(&bomb)
    });
    row(
        &format!("decode a 40,000-item list ({} KiB)", list.len() / 1024),
        20,
        || skerry_config::decode(&list),
    );
    row(
        &format!("decode a 20,000-key map ({} KiB)", map.len() / 1024),
        10,
        || skerry_config::decode(&map),
    );
    row("refuse 200,000 nested brackets", 20, || {
        skerry_config::decode_with(
            &brackets,
            &skerry_config::Limits {
                max_bytes: usize::MAX,
                ..skerry_config::Limits::DEFAULT
            },
        )
    });
}
