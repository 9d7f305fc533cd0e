//! The rendered files follow the config, are written only when their content changes,
//! and are published as resources and events.

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use common::{context, from_json, put, start, stop, wait_for};
use skerry_runtime::{Resource, Selector};
use skerryd_core::resources::{ActiveMachine, ActiveNetwork, SINGLETON};
use skerryd_network::clock::RecordingClock;
use skerryd_network::resources::{DhcpLease, RenderedFile};
use skerryd_network::Backends;

fn backends() -> Backends {
    Backends::recording(std::sync::Arc::new(RecordingClock::host()))
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn machine(hostname: &str) -> ActiveMachine {
    ActiveMachine(from_json(serde_json::json!({ "hostname": hostname })))
}

fn network(servers: &[&str]) -> ActiveNetwork {
    ActiveNetwork(from_json(serde_json::json!({
        "links": [{"name": "eth0", "addresses": ["192.168.7.2/24"]}],
        "dns": {"servers": servers, "search": ["lan"]}
    })))
}

/// A context on `root` with edge-1's machine and network config in its state, and its
/// etc directory.
fn configured(root: &Path) -> (skerryd_core::Context, PathBuf) {
    let context = context(root);
    let etc = context.layout.etc();
    put(&context.state, SINGLETON, machine("edge-1"));
    put(&context.state, SINGLETON, network(&["192.168.7.1"]));
    (context, etc)
}

/// Waits until the file at `path` contains `text`.
async fn wait_until_contains(what: &str, path: &Path, text: &str) {
    wait_for(what, || read(path)?.contains(text).then_some(())).await;
}

fn rendered_events(context: &skerryd_core::Context, path: &Path) -> usize {
    let path = path.display().to_string();
    context
        .events
        .everything()
        .0
        .iter()
        .filter(|e| e.kind == "network.rendered" && e.attributes.get("path") == Some(&path))
        .count()
}

#[tokio::test]
async fn rendered_files_follow_the_config() {
    let root = tempfile::tempdir().unwrap();
    let (context, etc) = configured(root.path());
    let handle = start(&context, backends());

    wait_for("hostname", || {
        (read(&etc.join("hostname"))? == "edge-1\n").then_some(())
    })
    .await;
    let hosts = read(&etc.join("hosts")).unwrap();
    assert!(hosts.contains("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("192.168.7.2\tedge-1\n"), "{hosts}");
    let resolv = read(&etc.join("resolv.conf")).unwrap();
    assert!(
        resolv.contains("nameserver 192.168.7.1\nsearch lan\n"),
        "{resolv}"
    );

    // Each file is a resource carrying its content's hash.
    let files = context
        .state
        .list::<RenderedFile>(&Selector::all())
        .unwrap();
    let ids: Vec<&str> = files.iter().map(|r| &*r.metadata.id).collect();
    assert_eq!(ids, ["hostname", "hosts", "resolv.conf"]);
    for file in &files {
        let bytes = std::fs::read(&file.spec.path).unwrap();
        assert_eq!(file.spec.blake3, blake3::hash(&bytes).to_hex().to_string());
        assert_eq!(file.spec.bytes, bytes.len() as u64);
    }

    // A new hostname reaches both files.
    put(&context.state, SINGLETON, machine("edge-2"));
    wait_for("the new hostname", || {
        (read(&etc.join("hostname"))? == "edge-2\n"
            && read(&etc.join("hosts"))?.contains("192.168.7.2\tedge-2\n"))
        .then_some(())
    })
    .await;
    assert!(!read(&etc.join("hosts")).unwrap().contains("edge-1"));
    stop(&context, handle).await;
}

#[tokio::test]
async fn files_are_written_only_when_their_content_changes() {
    let root = tempfile::tempdir().unwrap();
    let (context, etc) = configured(root.path());
    let handle = start(&context, backends());
    wait_until_contains("resolv.conf", &etc.join("resolv.conf"), "192.168.7.1").await;
    let inode = |name: &str| std::fs::metadata(etc.join(name)).unwrap().ino();
    let (hostname_before, hosts_before) = (inode("hostname"), inode("hosts"));
    assert_eq!(rendered_events(&context, &etc.join("hostname")), 1);

    // Only the DNS servers change: resolv.conf is replaced, the others are left alone.
    put(
        &context.state,
        SINGLETON,
        network(&["192.168.7.1", "9.9.9.9"]),
    );
    wait_until_contains(
        "the second name server",
        &etc.join("resolv.conf"),
        "nameserver 9.9.9.9",
    )
    .await;
    assert_eq!(rendered_events(&context, &etc.join("resolv.conf")), 2);
    assert_eq!(inode("hostname"), hostname_before, "hostname was rewritten");
    assert_eq!(inode("hosts"), hosts_before, "hosts was rewritten");
    assert_eq!(rendered_events(&context, &etc.join("hostname")), 1);
    assert_eq!(rendered_events(&context, &etc.join("hosts")), 1);
    stop(&context, handle).await;
}

#[tokio::test]
async fn a_link_on_dhcp_takes_its_name_servers_from_the_lease() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    let etc = context.layout.etc();
    put(&context.state, SINGLETON, machine("edge-1"));
    put(
        &context.state,
        SINGLETON,
        ActiveNetwork(from_json(
            serde_json::json!({"links": [{"name": "eth0", "dhcp": true}]}),
        )),
    );
    let handle = start(&context, backends());
    wait_for("resolv.conf", || read(&etc.join("resolv.conf"))).await;
    // The DHCP client's lease, as it would publish it.
    let lease = DhcpLease {
        link: "eth0".into(),
        address: "10.9.0.50/24".parse().unwrap(),
        routers: vec!["10.9.0.1".parse().unwrap()],
        dns: vec!["10.9.0.1".parse().unwrap()],
        server: "10.9.0.1".parse().unwrap(),
        acquired: std::time::SystemTime::now(),
        lease: std::time::Duration::from_secs(600),
        renew: std::time::Duration::from_secs(300),
        rebind: std::time::Duration::from_secs(525),
    };
    context.state.create(Resource::new("eth0", lease)).unwrap();
    wait_until_contains(
        "the lease's name server",
        &etc.join("resolv.conf"),
        "nameserver 10.9.0.1\n",
    )
    .await;
    stop(&context, handle).await;
}

#[tokio::test]
async fn a_bad_hostname_is_reported_and_the_old_file_kept() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    let etc = context.layout.etc();
    put(&context.state, SINGLETON, machine("edge-1"));
    let handle = start(&context, backends());
    wait_for("hostname", || read(&etc.join("hostname"))).await;
    // The config subsystem validates hostnames; this one slipped past it.
    put(&context.state, SINGLETON, machine("edge 1"));
    let status = wait_for("the controller's error", || {
        let status = handle.status(skerryd_network::rendered::NAME)?;
        status.last_error.clone().filter(|e| e.contains("edge 1"))
    })
    .await;
    assert!(status.contains("hostname"), "{status}");
    assert_eq!(read(&etc.join("hostname")).unwrap(), "edge-1\n");
    stop(&context, handle).await;
}
