//! The resource types this subsystem writes: the rendered files and the desired and
//! applied network state (namespace [`NETWORK_NAMESPACE`]), the trusted time (namespace
//! [`TIME_NAMESPACE`]).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use skerry_config::kinds::common::Cidr;
use skerry_runtime::ResourceSpec;

/// The namespace of links, addresses, routes, leases and rendered files.
pub const NETWORK_NAMESPACE: &str = "network";
/// The namespace of the trusted time.
pub const TIME_NAMESPACE: &str = "time";
/// The id of the time status singleton.
pub const TIME_STATUS_ID: &str = "status";

/// A file the daemon owns under `etc/` (id: its name, `hostname`, `hosts`,
/// `resolv.conf`), as last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedFile {
    /// Where it was written.
    pub path: String,
    /// The BLAKE3 hash of its content, hex.
    pub blake3: String,
    /// Its length in bytes.
    pub bytes: u64,
}

impl ResourceSpec for RenderedFile {
    const TYPE: &'static str = "RenderedFiles.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// The trusted time: what TLS and TUF expiry checks must use on a board without an RTC
/// (id [`TIME_STATUS_ID`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeStatus {
    /// `max(system clock, floor)` when this status was written.
    pub trusted_now: SystemTime,
    /// The persisted floor: the time is never earlier than this.
    pub floor: SystemTime,
    /// Whether an SNTP server answered since the daemon started.
    pub synced: bool,
    /// The offset the last answer measured (server minus local clock), in nanoseconds.
    pub last_offset_nanos: Option<i64>,
    /// The round-trip delay of the last answer.
    pub last_delay: Option<Duration>,
    /// Who answered last.
    pub last_server: Option<String>,
    /// When the last answer came.
    pub last_sync: Option<SystemTime>,
    /// Why the last poll found no usable answer; empty after a good one.
    pub last_error: String,
}

impl TimeStatus {
    /// The trusted time at `system_now` (the caller's reading of the system clock):
    /// never earlier than the floor.
    pub fn trusted_at(&self, system_now: SystemTime) -> SystemTime {
        system_now.max(self.floor)
    }
}

impl ResourceSpec for TimeStatus {
    const TYPE: &'static str = "TimeStatuses.time.skerry.dev";
    const NAMESPACE: &'static str = TIME_NAMESPACE;
}

/// A link the config wants up (id: the interface name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    /// The interface name.
    pub name: String,
    /// MTU to set, if the config gives one.
    pub mtu: Option<u16>,
    /// Whether a DHCP client runs on it.
    pub dhcp: bool,
}

impl ResourceSpec for LinkSpec {
    const TYPE: &'static str = "LinkSpecs.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// A static address the config wants on a link (id: `LINK/ADDRESS/PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpec {
    /// The interface.
    pub link: String,
    /// The address and prefix.
    pub address: Cidr,
}

impl ResourceSpec for AddressSpec {
    const TYPE: &'static str = "AddressSpecs.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// A static route the config wants (id: `DESTINATION via GATEWAY`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSpec {
    /// The destination network.
    pub destination: Cidr,
    /// The next hop.
    pub gateway: IpAddr,
    /// The link it goes out of (resolved from the addresses when the config names none).
    pub link: Option<String>,
    /// The metric.
    pub metric: Option<u32>,
}

impl ResourceSpec for RouteSpec {
    const TYPE: &'static str = "RouteSpecs.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// What applying one spec to the kernel gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// The kernel has it as specified.
    Ready,
    /// Applying it failed; the message says why. Retried.
    Failed(String),
}

/// A link's state after applying (id: as its [`LinkSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The spec applied.
    pub spec: LinkSpec,
    /// How it went.
    pub applied: Applied,
}

impl ResourceSpec for LinkStatus {
    const TYPE: &'static str = "LinkStatuses.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// An address's state after applying (id: as its [`AddressSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressStatus {
    /// The spec applied.
    pub spec: AddressSpec,
    /// How it went.
    pub applied: Applied,
}

impl ResourceSpec for AddressStatus {
    const TYPE: &'static str = "AddressStatuses.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// A route's state after applying (id: as its [`RouteSpec`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    /// The spec applied.
    pub spec: RouteSpec,
    /// How it went.
    pub applied: Applied,
}

impl ResourceSpec for RouteStatus {
    const TYPE: &'static str = "RouteStatuses.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}

/// A DHCPv4 lease held on a link (id: the interface name). The rendered `resolv.conf`
/// takes its DNS servers when the link asks for DHCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpLease {
    /// The interface.
    pub link: String,
    /// The address leased, with the subnet mask's prefix.
    pub address: Cidr,
    /// Routers (option 3).
    pub routers: Vec<IpAddr>,
    /// DNS servers (option 6).
    pub dns: Vec<IpAddr>,
    /// The server that granted it (option 54).
    pub server: IpAddr,
    /// When it was granted.
    pub acquired: SystemTime,
    /// Lease time (option 51).
    pub lease: Duration,
    /// Renewal time T1 (option 58, half the lease if absent).
    pub renew: Duration,
    /// Rebinding time T2 (option 59, 7/8 of the lease if absent).
    pub rebind: Duration,
}

impl ResourceSpec for DhcpLease {
    const TYPE: &'static str = "DhcpLeases.network.skerry.dev";
    const NAMESPACE: &'static str = NETWORK_NAMESPACE;
}
