//! `register` as the daemon calls it: in `--root` mode (any root but `/`) it runs the
//! rendered files, the specs, the apply controller over a recording kernel and the time
//! keeper over a recording clock, and no DHCP client (the host's links are not ours).

mod common;

use common::{context, from_json, put, wait_for};
use skerry_runtime::{Runtime, RuntimeOptions};
use skerryd_core::resources::{ActiveMachine, SINGLETON};

#[tokio::test]
async fn root_mode_registers_everything_but_dhcp_and_never_touches_the_host() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    assert!(!skerryd_network::on_device(&context));
    let mut runtime = Runtime::new(context.state.clone(), RuntimeOptions::default());
    skerryd_network::register(&mut runtime, &context).unwrap();
    let graph = runtime.graph();
    let names: Vec<&str> = graph.controllers.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "network.apply",
            "network.rendered",
            "network.specs",
            "time.keeper"
        ]
    );
    put(
        &context.state,
        SINGLETON,
        ActiveMachine(from_json(serde_json::json!({"hostname": "smoke"}))),
    );
    let handle = runtime.start();
    let hostname = context.layout.etc().join("hostname");
    wait_for("etc/hostname", || {
        (std::fs::read_to_string(&hostname).ok()? == "smoke\n").then_some(())
    })
    .await;
    handle.shutdown().await;
    context
        .stop_hooks
        .run(std::time::Duration::from_secs(5))
        .await;
    // The floor was saved under var/skerry/time (the default config persists it).
    assert!(context.layout.time().join("floor.json").exists());
}
