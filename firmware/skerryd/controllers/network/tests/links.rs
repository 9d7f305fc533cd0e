//! Links, addresses and routes: the config becomes specs, the specs are applied to a
//! recording kernel, and what the config drops is removed again.

mod common;

use std::sync::Arc;

use common::{context, from_json, put, start, stop, wait_for};
use skerry_runtime::Selector;
use skerryd_core::resources::{ActiveNetwork, SINGLETON};
use skerryd_network::clock::RecordingClock;
use skerryd_network::kernel::RecordingKernel;
use skerryd_network::resources::{AddressStatus, Applied, LinkStatus, RouteSpec, RouteStatus};
use skerryd_network::{Backends, KernelBackend};

fn network(value: serde_json::Value) -> ActiveNetwork {
    ActiveNetwork(from_json(value))
}

/// Recording backends whose kernel the test reads back.
fn recording_kernel() -> (RecordingKernel, Backends) {
    let kernel = RecordingKernel::new();
    let backends = Backends {
        kernel: KernelBackend::Recording(kernel.clone()),
        ..Backends::recording(Arc::new(RecordingClock::host()))
    };
    (kernel, backends)
}

#[tokio::test]
async fn the_config_is_applied_and_what_it_drops_is_removed() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    let (kernel, backends) = recording_kernel();
    put(
        &context.state,
        SINGLETON,
        network(serde_json::json!({
            "links": [
                {"name": "eth0", "mtu": 1400, "addresses": ["192.168.7.2/24", "fd00::2/64"]},
                {"name": "eth1", "dhcp": true}
            ],
            "routes": [
                {"destination": "0.0.0.0/0", "gateway": "192.168.7.1"},
                {"destination": "10.0.0.0/8", "gateway": "192.168.7.254", "metric": 50}
            ]
        })),
    );
    let handle = start(&context, backends);
    wait_for("the routes", || {
        (kernel.recorded().routes.len() == 2).then_some(())
    })
    .await;
    let recorded = kernel.recorded();
    assert_eq!(recorded.links.get("eth0"), Some(&Some(1400)));
    assert_eq!(recorded.links.get("eth1"), Some(&None));
    assert_eq!(
        recorded.addresses.iter().collect::<Vec<_>>(),
        ["eth0 192.168.7.2/24", "eth0 fd00::2/64"]
    );
    // The route's link is the one whose subnet holds the gateway.
    assert!(recorded
        .routes
        .contains("0.0.0.0/0 via 192.168.7.1 dev eth0 metric 0"));
    assert!(recorded
        .routes
        .contains("10.0.0.0/8 via 192.168.7.254 dev eth0 metric 50"));
    let specs = context.state.list::<RouteSpec>(&Selector::all()).unwrap();
    assert_eq!(specs.len(), 2);
    wait_for("every status ready", || {
        let addresses = context.state.list::<AddressStatus>(&Selector::all()).ok()?;
        let routes = context.state.list::<RouteStatus>(&Selector::all()).ok()?;
        (addresses.len() == 2
            && routes.len() == 2
            && addresses.iter().all(|a| a.spec.applied == Applied::Ready)
            && routes.iter().all(|r| r.spec.applied == Applied::Ready))
        .then_some(())
    })
    .await;

    // The config drops an address and a route: both are removed from the kernel.
    put(
        &context.state,
        SINGLETON,
        network(serde_json::json!({
            "links": [{"name": "eth0", "addresses": ["192.168.7.2/24"]}],
            "routes": [{"destination": "0.0.0.0/0", "gateway": "192.168.7.1"}]
        })),
    );
    wait_for("the removals", || {
        let r = kernel.recorded();
        (r.routes.len() == 1 && r.addresses.len() == 1).then_some(())
    })
    .await;
    let log = kernel.recorded().log;
    assert!(
        log.contains(&"address del eth0 fd00::2/64".to_owned()),
        "{log:?}"
    );
    assert!(
        log.contains(&"route del 10.0.0.0/8 via 192.168.7.254 dev eth0 metric 50".to_owned()),
        "{log:?}"
    );
    wait_for("the dropped statuses gone", || {
        let addresses = context.state.list::<AddressStatus>(&Selector::all()).ok()?;
        let links = context.state.list::<LinkStatus>(&Selector::all()).ok()?;
        (addresses.len() == 1 && links.len() == 1).then_some(())
    })
    .await;
    stop(&context, handle).await;
}

#[tokio::test]
async fn a_missing_link_fails_its_addresses_and_is_retried() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    let (kernel, backends) = recording_kernel();
    kernel.missing("eth9", true);
    put(
        &context.state,
        SINGLETON,
        network(serde_json::json!({"links": [{"name": "eth9", "addresses": ["10.1.0.2/16"]}]})),
    );
    let handle = start(&context, backends);
    let status = wait_for("a failed address", || {
        context
            .state
            .get::<AddressStatus>("eth9/10.1.0.2/16")
            .ok()
            .filter(|s| s.spec.applied != Applied::Ready)
    })
    .await;
    assert_eq!(
        status.spec.applied,
        Applied::Failed("link eth9 is not up".into())
    );
    let link = context.state.get::<LinkStatus>("eth9").unwrap();
    assert!(
        matches!(&link.spec.applied, Applied::Failed(m) if m.contains("no link named eth9")),
        "{link:?}"
    );
    // The interface appears (a USB adapter plugged in): the retry applies it.
    kernel.missing("eth9", false);
    wait_for("the address applied", || {
        kernel
            .recorded()
            .addresses
            .contains("eth9 10.1.0.2/16")
            .then_some(())
    })
    .await;
    stop(&context, handle).await;
}
