//! skerryd's network and time subsystem. Controllers, each in its own module:
//!
//! - [`rendered`]: `hostname`, `hosts` and `resolv.conf` under `etc/`, rendered from the
//!   machine and network config and the DHCP leases ([`render`] is the pure part);
//! - [`timekeeper`]: the persisted time floor ([`floor`]), the SNTP client ([`sntp`]) and
//!   the trusted time ([`resources::TimeStatus`]); the clock is stepped only through
//!   [`clock::SystemClock`], the real one only on a device;
//! - [`links`]: the desired links, addresses and routes from the network config;
//! - [`apply`]: those applied to the kernel through [`kernel::Kernel`] (netlink on a
//!   device, a recording fake in `--root` mode), with their statuses;
//! - [`dhcp_client`]: a DHCPv4 client ([`dhcp`] is the message codec) on the links that
//!   ask for it, on a device (in `--root` mode no DHCP runs: the host's links are not
//!   ours).
//!
//! TLS and TUF expiry checks on a board without an RTC read the time from
//! [`resources::TimeStatus`] (`trusted_at(SystemTime::now())`), never from the bare
//! clock.
//!
//! Its resources are in [`resources`] (namespaces `network` and `time`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use skerry_runtime::Runtime;
use skerryd_core::Context;

pub mod apply;
pub mod clock;
pub mod dhcp;
pub mod dhcp_client;
pub mod floor;
pub mod kernel;
pub mod links;
mod netlink;
pub mod render;
pub mod rendered;
pub mod resources;
pub mod sntp;
pub mod timekeeper;

use clock::{LinuxClock, RecordingClock, SystemClock};
use floor::{FloorStore, TIME_FLOOR};
use kernel::{NetlinkKernel, RecordingKernel};
use timekeeper::SntpTuning;

/// What the subsystem touches outside the daemon: real on a device, recording fakes in
/// `--root` mode and tests.
#[derive(Debug, Clone)]
pub struct Backends {
    /// The clock read and stepped.
    pub clock: Arc<dyn SystemClock>,
    /// SNTP timeouts.
    pub sntp: SntpTuning,
    /// Where links, addresses and routes are applied.
    pub kernel: KernelBackend,
    /// DHCP timeouts (the client runs only with [`KernelBackend::Netlink`]).
    pub dhcp: dhcp_client::DhcpTuning,
}

/// Where links, addresses and routes are applied.
#[derive(Debug, Clone)]
pub enum KernelBackend {
    /// The kernel, over netlink (a device).
    Netlink,
    /// A recording fake (`--root` mode, tests).
    Recording(RecordingKernel),
}

impl Backends {
    /// The real clock when the machine root is `/` (a device), else a recording clock
    /// that follows the host's and never sets it.
    pub fn for_context(context: &Context) -> Self {
        if on_device(context) {
            Backends {
                clock: Arc::new(LinuxClock),
                sntp: SntpTuning::default(),
                kernel: KernelBackend::Netlink,
                dhcp: Default::default(),
            }
        } else {
            Backends::recording(Arc::new(RecordingClock::host()))
        }
    }

    /// Recording fakes: `clock`, and a [`RecordingKernel`].
    pub fn recording(clock: Arc<dyn SystemClock>) -> Self {
        Backends {
            clock,
            sntp: SntpTuning::default(),
            kernel: KernelBackend::Recording(RecordingKernel::new()),
            dhcp: Default::default(),
        }
    }
}

/// Whether the daemon runs on a device (its root is `/`) rather than in `--root` mode.
pub fn on_device(context: &Context) -> bool {
    context.layout.root() == Path::new("/")
}

/// Registers this subsystem's controllers on `runtime`, with [`Backends::for_context`].
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<()> {
    register_with(runtime, context, Backends::for_context(context))
}

/// Registers this subsystem's controllers on `runtime` with the given backends.
pub fn register_with(
    runtime: &mut Runtime,
    context: &Context,
    backends: Backends,
) -> anyhow::Result<()> {
    let etc = context.layout.etc();
    std::fs::create_dir_all(&etc).with_context(|| format!("creating {}", etc.display()))?;
    let mut rendered = rendered::RenderedFiles::new(etc, context.events.clone());
    if context.layout.mode() == skerryd_core::Mode::Device {
        rendered = rendered.binding_over(context.layout.root().join("etc"));
    }
    runtime.register(rendered)?;
    runtime.register(links::NetworkSpecs)?;
    match backends.kernel {
        KernelBackend::Netlink => {
            runtime.register(apply::NetworkApply::new(NetlinkKernel))?;
            runtime.register(dhcp_client::DhcpClient::new(
                NetlinkKernel,
                context.events.clone(),
                backends.dhcp,
            ))?;
        }
        KernelBackend::Recording(kernel) => runtime.register(apply::NetworkApply::new(kernel))?,
    }

    let version = context
        .area
        .floor
        .version_for(&TIME_FLOOR, context.area.trial.is_some());
    let (store, load_error) = FloorStore::load(&context.layout.time(), version);
    if let Some(e) = &load_error {
        tracing::warn!(error = %e, "the time floor could not be read");
    }
    let store = Arc::new(Mutex::new(store));
    let keeper = timekeeper::TimeKeeper::new(
        backends.clock.clone(),
        store.clone(),
        load_error.map(|e| e.to_string()),
        context.events.clone(),
        backends.sntp,
    );
    let persist = keeper.persisting();
    runtime.register(keeper)?;
    let clock = backends.clock;
    context.stop_hooks.add("time floor", async move {
        if !persist.load(Ordering::SeqCst) {
            return;
        }
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        let now = clock.now().max(store.floor());
        if let Err(e) = store.raise(now) {
            tracing::warn!(error = %e, "the time floor was not saved at stop");
        }
    });
    Ok(())
}

/// Whether the floor is persisted under the config in effect, shared with the stop hook.
pub type Persisting = Arc<AtomicBool>;
