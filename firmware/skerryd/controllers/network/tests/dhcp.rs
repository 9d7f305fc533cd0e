//! The DHCP client against dnsmasq: two network namespaces joined by a veth pair,
//! dnsmasq serving in one, skerryd's controllers (netlink kernel, DHCP client) running
//! in the other. dnsmasq comes from `scripts/install-deps` (dnsmasq-base).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::netns::Netns;
use common::{context, from_json, put, start, stop, wait_for};
use skerryd_core::resources::{ActiveMachine, ActiveNetwork, SINGLETON};
use skerryd_network::clock::RecordingClock;
use skerryd_network::dhcp_client::DhcpTuning;
use skerryd_network::resources::DhcpLease;
use skerryd_network::{Backends, KernelBackend};

/// dnsmasq in a namespace; stopped by its PID when dropped.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dnsmasq(ns: &Netns, dir: &Path) -> Dnsmasq {
    let binary = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("dnsmasq is not installed: run scripts/install-deps (Debian package dnsmasq-base)");
    let log = std::fs::File::create(dir.join("dnsmasq.log")).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, binary])
        .args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            "--interface=vs",
            "--bind-interfaces",
            "--dhcp-authoritative",
            "--dhcp-range=10.55.0.50,10.55.0.60,255.255.255.0,2m",
            "--dhcp-option=option:router,10.55.0.1",
            "--dhcp-option=option:dns-server,10.55.0.53",
            "--dhcp-option=option:T1,4",
            "--dhcp-option=option:T2,6",
            "--log-dhcp",
        ])
        .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting dnsmasq");
    Dnsmasq(child)
}

#[test]
fn the_client_leases_renews_and_releases_through_dnsmasq() {
    let server_ns = Netns::new("dhs");
    let client_ns = Netns::new("dhc");
    server_ns.ip(&[
        "link",
        "add",
        "vs",
        "type",
        "veth",
        "peer",
        "name",
        "vc",
        "netns",
        &client_ns.name,
    ]);
    server_ns.ip(&["addr", "add", "10.55.0.1/24", "dev", "vs"]);
    server_ns.ip(&["link", "set", "vs", "up"]);
    let work = tempfile::tempdir().unwrap();
    let _server = dnsmasq(&server_ns, work.path());
    let root = work.path().join("machine");
    std::fs::create_dir_all(&root).unwrap();

    let lease = client_ns.run_in({
        let root = root.clone();
        let client = client_ns.name.clone();
        move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(run_client(&root, &client))
        }
    });
    assert_eq!(
        lease.routers,
        ["10.55.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let leases = std::fs::read_to_string(work.path().join("leases")).unwrap();
    assert!(leases.contains("edge-1"), "dnsmasq's leases: {leases}");
}

async fn run_client(root: &Path, client: &str) -> DhcpLease {
    let ip = |args: &[&str]| {
        let mut all = vec!["-n", client];
        all.extend_from_slice(args);
        let out = Command::new("ip").args(&all).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let context = context(root);
    put(
        &context.state,
        SINGLETON,
        ActiveMachine(from_json(serde_json::json!({"hostname": "edge-1"}))),
    );
    put(
        &context.state,
        SINGLETON,
        ActiveNetwork(from_json(
            serde_json::json!({"links": [{"name": "vc", "dhcp": true}]}),
        )),
    );
    let backends = Backends {
        kernel: KernelBackend::Netlink,
        dhcp: DhcpTuning {
            timeout: Duration::from_secs(1),
            attempts: 3,
        },
        ..Backends::recording(Arc::new(RecordingClock::host()))
    };
    let handle = start(&context, backends);
    let lease = wait_for("a lease", || {
        context.state.get::<DhcpLease>("vc").ok().map(|r| r.spec)
    })
    .await;
    let address = lease.address.to_string();
    assert!(
        address.starts_with("10.55.0.5") || address == "10.55.0.60/24",
        "{lease:?}"
    );
    assert!(address.ends_with("/24"), "{lease:?}");
    assert_eq!(
        lease.dns,
        ["10.55.0.53".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        lease.server,
        "10.55.0.1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(lease.lease, Duration::from_secs(120));
    assert_eq!(lease.renew, Duration::from_secs(4));
    assert_eq!(lease.rebind, Duration::from_secs(6));
    // The address and the default route are on the link.
    assert!(ip(&["-o", "addr", "show", "dev", "vc"]).contains(&address));
    let routes = ip(&["route", "show"]);
    assert!(
        routes.contains("default via 10.55.0.1 dev vc") && routes.contains("metric 1024"),
        "{routes}"
    );
    // resolv.conf takes the lease's name server.
    let resolv = context.layout.etc().join("resolv.conf");
    wait_for("the lease's name server in resolv.conf", || {
        std::fs::read_to_string(&resolv)
            .ok()?
            .contains("nameserver 10.55.0.53")
            .then_some(())
    })
    .await;
    // At T1 (4 s) the lease is renewed by unicast to the server.
    wait_for("a renewal", || {
        context
            .events
            .everything()
            .0
            .iter()
            .any(|e| e.kind == "network.dhcp.renewed")
            .then_some(())
    })
    .await;
    let renewed = context.state.get::<DhcpLease>("vc").unwrap().spec;
    assert_eq!(renewed.address, lease.address);
    assert!(renewed.acquired > lease.acquired);

    // The link stops asking for DHCP: the lease, its address and route go.
    put(
        &context.state,
        SINGLETON,
        ActiveNetwork(from_json(serde_json::json!({"links": [{"name": "vc"}]}))),
    );
    wait_for("the lease dropped", || {
        context.state.get::<DhcpLease>("vc").is_err().then_some(())
    })
    .await;
    assert!(!ip(&["-o", "addr", "show", "dev", "vc"]).contains(&address));
    assert!(!ip(&["route", "show"]).contains("default via 10.55.0.1"));
    stop(&context, handle).await;
    lease
}
