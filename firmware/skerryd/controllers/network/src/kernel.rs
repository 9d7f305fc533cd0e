//! Applying links, addresses and routes to the kernel, behind a trait: [`NetlinkKernel`]
//! (rtnetlink) on a device, [`RecordingKernel`] in `--root` mode and tests, which keeps
//! what it was asked for instead of touching the host's network.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::resources::{AddressSpec, LinkSpec, RouteSpec};

/// Why the kernel refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct KernelError {
    /// What was being done ("bringing up eth0").
    pub what: String,
    /// Why it failed.
    pub message: String,
}

/// The kernel's network configuration, as the apply controller changes it. Every
/// operation is idempotent: applying what is there already, or removing what is not,
/// succeeds.
pub trait Kernel: Send + Sync + std::fmt::Debug + 'static {
    /// Brings the link up with the spec's MTU.
    fn ensure_link(&self, link: &LinkSpec) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// Adds the address to its link.
    fn ensure_address(
        &self,
        address: &AddressSpec,
    ) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// Removes the address from its link.
    fn remove_address(
        &self,
        address: &AddressSpec,
    ) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// Adds (or replaces) the route.
    fn ensure_route(
        &self,
        route: &RouteSpec,
    ) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// Removes the route.
    fn remove_route(
        &self,
        route: &RouteSpec,
    ) -> impl Future<Output = Result<(), KernelError>> + Send;
    /// The link's Ethernet address (for the DHCP client).
    fn hardware_address(
        &self,
        link: &str,
    ) -> impl Future<Output = Result<[u8; 6], KernelError>> + Send;
}

/// What a [`RecordingKernel`] holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Links brought up, by name, with their MTU.
    pub links: BTreeMap<String, Option<u16>>,
    /// Addresses, as `LINK ADDRESS/PREFIX`.
    pub addresses: BTreeSet<String>,
    /// Routes, as `DESTINATION via GATEWAY dev LINK metric M`.
    pub routes: BTreeSet<String>,
    /// Every operation, in order.
    pub log: Vec<String>,
}

/// A kernel that records instead of applying. Links named in
/// [`RecordingKernel::missing`] do not exist, so applying to them fails like on a
/// device without that interface.
#[derive(Debug, Clone, Default)]
pub struct RecordingKernel {
    inner: Arc<Mutex<(Recorded, BTreeSet<String>)>>,
}

fn address_key(a: &AddressSpec) -> String {
    format!("{} {}", a.link, a.address)
}

fn route_key(r: &RouteSpec) -> String {
    format!(
        "{} via {} dev {} metric {}",
        r.destination,
        r.gateway,
        r.link.as_deref().unwrap_or("-"),
        r.metric.unwrap_or(0)
    )
}

impl RecordingKernel {
    /// An empty kernel where every link exists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the link `name` missing (or present again).
    pub fn missing(&self, name: &str, missing: bool) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if missing {
            inner.1.insert(name.to_owned());
        } else {
            inner.1.remove(name);
        }
    }

    /// What it holds now.
    pub fn recorded(&self) -> Recorded {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    fn change(
        &self,
        link: Option<&str>,
        what: String,
        apply: impl FnOnce(&mut Recorded),
    ) -> Result<(), KernelError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(link) = link.filter(|l| inner.1.contains(*l)) {
            return Err(KernelError {
                what,
                message: format!("no link named {link}"),
            });
        }
        inner.0.log.push(what);
        apply(&mut inner.0);
        Ok(())
    }
}

impl Kernel for RecordingKernel {
    async fn ensure_link(&self, link: &LinkSpec) -> Result<(), KernelError> {
        self.change(Some(&link.name), format!("link up {}", link.name), |r| {
            r.links.insert(link.name.clone(), link.mtu);
        })
    }

    async fn ensure_address(&self, address: &AddressSpec) -> Result<(), KernelError> {
        let key = address_key(address);
        self.change(Some(&address.link), format!("address add {key}"), |r| {
            r.addresses.insert(key);
        })
    }

    async fn remove_address(&self, address: &AddressSpec) -> Result<(), KernelError> {
        let key = address_key(address);
        self.change(None, format!("address del {key}"), |r| {
            r.addresses.remove(&key);
        })
    }

    async fn ensure_route(&self, route: &RouteSpec) -> Result<(), KernelError> {
        let key = route_key(route);
        self.change(route.link.as_deref(), format!("route add {key}"), |r| {
            r.routes.insert(key);
        })
    }

    async fn remove_route(&self, route: &RouteSpec) -> Result<(), KernelError> {
        let key = route_key(route);
        self.change(None, format!("route del {key}"), |r| {
            r.routes.remove(&key);
        })
    }

    async fn hardware_address(&self, link: &str) -> Result<[u8; 6], KernelError> {
        // A locally administered address derived from the name.
        let hash = blake3::hash(link.as_bytes());
        let h = hash.as_bytes();
        Ok([0x02, h[0], h[1], h[2], h[3], h[4]])
    }
}

pub use crate::netlink::NetlinkKernel;
