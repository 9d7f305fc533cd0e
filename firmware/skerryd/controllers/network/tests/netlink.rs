//! The netlink kernel against a real kernel, in a network namespace the test creates
//! with a veth pair (never the host's network; veth rather than dummy because the
//! dummy driver is often a module the test host does not have).

mod common;

use std::sync::Arc;

use common::netns::Netns;
use common::{context, from_json, put, start, stop, wait_for};
use skerry_runtime::Selector;
use skerryd_core::resources::{ActiveNetwork, SINGLETON};
use skerryd_network::clock::RecordingClock;
use skerryd_network::kernel::{Kernel as _, NetlinkKernel};
use skerryd_network::resources::{AddressSpec, Applied, LinkSpec, RouteSpec, RouteStatus};
use skerryd_network::{Backends, KernelBackend};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn netlink_applies_and_removes_links_addresses_and_routes() {
    let ns = Netns::new("nl");
    ns.ip(&[
        "link", "add", "dummy0", "type", "veth", "peer", "name", "peer0",
    ]);
    ns.ip(&["link", "set", "peer0", "up"]);
    let link = LinkSpec {
        name: "dummy0".into(),
        mtu: Some(1400),
        dhcp: false,
    };
    let address = AddressSpec {
        link: "dummy0".into(),
        address: "10.77.1.2/24".parse().unwrap(),
    };
    let route = RouteSpec {
        destination: "10.88.0.0/16".parse().unwrap(),
        gateway: "10.77.1.1".parse().unwrap(),
        link: Some("dummy0".into()),
        metric: Some(20),
    };
    let (l, a, r) = (link.clone(), address.clone(), route.clone());
    ns.run_in(move || {
        runtime().block_on(async {
            let kernel = NetlinkKernel;
            kernel.ensure_link(&l).await.unwrap();
            for _ in 0..2 {
                kernel.ensure_address(&a).await.unwrap();
                kernel.ensure_route(&r).await.unwrap();
            }
            let missing = LinkSpec {
                name: "eth9".into(),
                ..l.clone()
            };
            let err = kernel.ensure_link(&missing).await.unwrap_err();
            assert!(err.to_string().contains("no link named eth9"), "{err}");
        })
    });
    let shown = ns.ip(&["link", "show", "dummy0"]);
    assert!(
        shown.contains("mtu 1400") && shown.contains(",UP"),
        "{shown}"
    );
    let addresses = ns.ip(&["-o", "addr", "show", "dev", "dummy0"]);
    assert_eq!(addresses.matches("10.77.1.2/24").count(), 1, "{addresses}");
    let routes = ns.ip(&["route", "show"]);
    let line = routes
        .lines()
        .find(|l| l.starts_with("10.88.0.0/16 via 10.77.1.1 dev dummy0"))
        .unwrap_or_else(|| panic!("no route to 10.88.0.0/16 in {routes}"));
    assert!(line.contains("metric 20"), "{line}");
    assert_eq!(routes.matches("10.88.0.0/16").count(), 1, "{routes}");

    ns.run_in(move || {
        runtime().block_on(async {
            let kernel = NetlinkKernel;
            for _ in 0..2 {
                kernel.remove_route(&route).await.unwrap();
                kernel.remove_address(&address).await.unwrap();
            }
        })
    });
    assert!(!ns.ip(&["route", "show"]).contains("10.88.0.0"));
    assert!(!ns
        .ip(&["-o", "addr", "show", "dev", "dummy0"])
        .contains("10.77.1.2"));
}

#[test]
fn the_controllers_configure_a_namespace_through_netlink() {
    let ns = Netns::new("ctl");
    ns.ip(&[
        "link", "add", "dummy1", "type", "veth", "peer", "name", "peer1",
    ]);
    ns.ip(&["link", "set", "peer1", "up"]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().to_owned();
    ns.run_in(move || {
        runtime().block_on(async move {
            let context = context(&dir);
            let backends = Backends {
                kernel: KernelBackend::Netlink,
                ..Backends::recording(Arc::new(RecordingClock::host()))
            };
            put(
                &context.state,
                SINGLETON,
                ActiveNetwork(from_json(serde_json::json!({
                    "links": [{"name": "dummy1", "mtu": 1300, "addresses": ["10.66.0.2/24"]}],
                    "routes": [{"destination": "10.99.0.0/16", "gateway": "10.66.0.1"}]
                }))),
            );
            let handle = start(&context, backends);
            wait_for("the route applied", || {
                let routes = context.state.list::<RouteStatus>(&Selector::all()).ok()?;
                (routes.len() == 1 && routes[0].spec.applied == Applied::Ready).then_some(())
            })
            .await;
            stop(&context, handle).await;
        })
    });
    assert!(ns.ip(&["link", "show", "dummy1"]).contains("mtu 1300"));
    assert!(ns
        .ip(&["-o", "addr", "show", "dev", "dummy1"])
        .contains("10.66.0.2/24"));
    assert!(ns
        .ip(&["route", "show"])
        .contains("10.99.0.0/16 via 10.66.0.1 dev dummy1"));
}
