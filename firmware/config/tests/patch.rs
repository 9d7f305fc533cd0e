//! Strategic merge and RFC 6902 JSON Patch over the machine config.

use serde_json::json;
use skerry_config::patch::{json_patch, json_patch_tree, strategic_merge, PatchError};
use skerry_config::{decode, Config};

const EXAMPLE: &str = include_str!("data/example.yaml");

fn example() -> Config {
    decode(EXAMPLE).unwrap()
}

#[test]
fn merge_changes_a_scalar_and_keeps_the_rest() {
    let base = example();
    let out = strategic_merge(&base, "kind: MachineConfig\nhostname: edge-02\n").unwrap();
    assert_eq!(out.machine.as_ref().unwrap().hostname, "edge-02");
    assert_eq!(
        out.machine.as_ref().unwrap().identity,
        base.machine.as_ref().unwrap().identity
    );
    assert_eq!(out.network, base.network);
}

#[test]
fn named_lists_merge_by_name() {
    let base = example();
    let patch = "kind: NetworkConfig\nlinks:\n  - name: eth0\n    mtu: 9000\n  - name: eth1\n    dhcp: true\n";
    let out = strategic_merge(&base, patch).unwrap();
    let links = &out.network.as_ref().unwrap().links;
    let names: Vec<_> = links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["eth0", "wlan0", "eth1"]);
    assert_eq!(links[0].mtu, Some(9000));
    assert_eq!(
        links[0].addresses,
        base.network.as_ref().unwrap().links[0].addresses,
        "unpatched keys of a merged item stay"
    );
}

#[test]
fn patch_delete_removes_named_items_documents_and_null_removes_keys() {
    let base = example();
    let patch = "\
kind: NetworkConfig
links:
  - name: wlan0
    $patch: delete
---
kind: ServiceConfig
name: mqtt
$patch: delete
---
kind: ServiceConfig
name: conveyor-api
dependsOn: null
---
kind: WatchdogConfig
$patch: delete
";
    let out = strategic_merge(&base, patch).unwrap();
    assert_eq!(out.network.as_ref().unwrap().links.len(), 1);
    assert_eq!(out.services.len(), 1);
    assert!(out.services[0].depends_on.is_empty());
    assert!(out.watchdog.is_none());
}

#[test]
fn unnamed_lists_are_replaced_and_new_documents_added() {
    let base = example();
    let patch = "kind: NetworkConfig\ndns:\n  servers: [1.1.1.1]\n---\nkind: ServiceConfig\nname: logger\ncommand: [/bin/logger]\n";
    let out = strategic_merge(&base, patch).unwrap();
    assert_eq!(
        out.network.as_ref().unwrap().dns.servers,
        ["1.1.1.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(out.network.as_ref().unwrap().dns.search, ["site.example"]);
    assert!(out.services.iter().any(|s| s.name == "logger"));
}

#[test]
fn merge_replace_directive_replaces_a_map_whole() {
    let base = example();
    let patch = "kind: MachineConfig\nidentity:\n  $patch: replace\n  site: elsewhere\n";
    let out = strategic_merge(&base, patch).unwrap();
    let id = &out.machine.as_ref().unwrap().identity;
    assert_eq!(id.site.as_deref(), Some("elsewhere"));
    assert!(id.machine_id.is_none() && id.labels.is_empty());
}

#[test]
fn merge_errors_are_clear() {
    let base = example();
    let e =
        strategic_merge(&base, "kind: ServiceConfig\nname: nope\n$patch: delete\n").unwrap_err();
    assert!(
        matches!(&e, PatchError::NothingToDelete { index: 0, what } if what == "ServiceConfig `nope`"),
        "{e:?}"
    );
    let e = strategic_merge(&base, "kind: ServiceConfig\ncommand: [x]\n").unwrap_err();
    assert!(e.to_string().contains("needs `name`"), "{e}");
    // The result is decoded strictly: a patch cannot smuggle in an unknown key.
    let e = strategic_merge(&base, "kind: MachineConfig\nhostnme: x\n").unwrap_err();
    assert!(
        matches!(&e, PatchError::Result(_)) && e.to_string().contains("unknown key `hostnme`"),
        "{e}"
    );
    let e = strategic_merge(
        &base,
        "kind: NetworkConfig\nlinks:\n  - name: ghost\n    $patch: delete\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("`ghost`"), "{e}");
}

#[test]
fn json_patch_tree_is_keyed_by_kind_and_name() {
    let tree = json_patch_tree(&example());
    assert_eq!(tree["MachineConfig"]["hostname"], "edge-01");
    assert_eq!(
        tree["ServiceConfig"]["mqtt"]["command"][0],
        "/usr/sbin/mosquitto"
    );
    assert!(tree["MachineConfig"].get("kind").is_none());
}

fn apply(ops: serde_json::Value) -> Result<Config, PatchError> {
    json_patch(&example(), &ops.to_string())
}

#[test]
fn json_patch_add_replace_remove() {
    let out = apply(json!([
        { "op": "replace", "path": "/MachineConfig/hostname", "value": "edge-09" },
        { "op": "add", "path": "/NetworkConfig/dns/servers/0", "value": "1.1.1.1" },
        { "op": "add", "path": "/NetworkConfig/dns/search/-", "value": "corp.example" },
        { "op": "remove", "path": "/ServiceConfig/mqtt" },
        { "op": "remove", "path": "/ServiceConfig/conveyor-api/dependsOn" },
    ]))
    .unwrap();
    assert_eq!(out.machine.unwrap().hostname, "edge-09");
    let dns = out.network.unwrap().dns;
    assert_eq!(dns.servers[0].to_string(), "1.1.1.1");
    assert_eq!(
        dns.servers.len(),
        3,
        "add at an index inserts (RFC 6902 4.1)"
    );
    assert_eq!(dns.search, ["site.example", "corp.example"], "`-` appends");
    assert_eq!(out.services.len(), 1);
}

#[test]
fn json_patch_move_copy_and_new_named_document() {
    let out = apply(json!([
        { "op": "copy", "from": "/ServiceConfig/mqtt", "path": "/ServiceConfig/mqtt2" },
        { "op": "replace", "path": "/ServiceConfig/mqtt2/name", "value": "mqtt2" },
        { "op": "move", "from": "/NetworkConfig/dns/search", "path": "/NetworkConfig/dns/servers" },
        { "op": "replace", "path": "/NetworkConfig/dns/servers", "value": ["9.9.9.9"] },
    ]))
    .unwrap();
    let mut names: Vec<_> = out.services.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["conveyor-api", "mqtt", "mqtt2"]);
    assert!(
        out.network.unwrap().dns.search.is_empty(),
        "move removes the source (RFC 6902 4.4)"
    );
    // A document added under its name gets the name filled in.
    let out = apply(json!([{ "op": "add", "path": "/ServiceConfig/log", "value": { "command": ["/bin/log"] } }])).unwrap();
    assert!(out.services.iter().any(|s| s.name == "log"));
}

#[test]
fn json_patch_is_all_or_nothing_and_test_ops_check() {
    // A failing `test` (RFC 6902 A.9) rejects the whole patch.
    let e = apply(json!([
        { "op": "replace", "path": "/MachineConfig/hostname", "value": "x" },
        { "op": "test", "path": "/TimeConfig/floor/source", "value": "off" },
    ]))
    .unwrap_err();
    assert!(matches!(e, PatchError::Apply(_)), "{e:?}");
    assert!(apply(
        json!([{ "op": "test", "path": "/TimeConfig/floor/source", "value": "persisted" }])
    )
    .is_ok());
    // Adding to a nonexistent target (A.12) and removing what is not there fail.
    assert!(matches!(
        apply(json!([{ "op": "add", "path": "/NetworkConfig/nope/x", "value": 1 }])),
        Err(PatchError::Apply(_))
    ));
    assert!(matches!(
        apply(json!([{ "op": "remove", "path": "/UpdateConfig/missing" }])),
        Err(PatchError::Apply(_))
    ));
    // An unknown op (A.11 style) is not a patch.
    assert!(matches!(
        apply(json!([{ "op": "frob", "path": "/x" }])),
        Err(PatchError::NotJsonPatch(_))
    ));
    // The result is still decoded strictly.
    let e = apply(json!([{ "op": "add", "path": "/MachineConfig/colour", "value": "red" }]))
        .unwrap_err();
    assert!(e.to_string().contains("unknown key `colour`"), "{e}");
    let e = apply(json!([{ "op": "add", "path": "/Banana", "value": {} }])).unwrap_err();
    assert!(e.to_string().contains("not a document kind"), "{e}");
}

#[test]
fn json_patch_escapes_in_pointers() {
    // RFC 6901 escapes (RFC 6902 A.14): `~1` is `/`, `~0` is `~`.
    let out = apply(
        json!([{ "op": "add", "path": "/ServiceConfig/conveyor-api/env/a~1b~0c", "value": "1" }]),
    )
    .unwrap();
    let mqtt = out
        .services
        .iter()
        .find(|s| s.name == "conveyor-api")
        .unwrap();
    assert_eq!(mqtt.env.get("a/b~c").map(String::as_str), Some("1"));
}
