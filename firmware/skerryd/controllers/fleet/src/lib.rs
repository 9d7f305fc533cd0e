//! skerryd's fleet client: checks in with skerry-server (`skerry.fleet.v1.FleetService/
//! CheckIn`) on a jittered schedule, reports every upgrade-history step exactly once
//! through a durable queue, and takes an offered release through the upgrade subsystem.
//!
//! **The offer rule.** An offer is taken only when the `FleetConfig` says
//! `acceptOffers: true` (the default; `false` is the operator's local pin: report only),
//! an `UpdateConfig` is in effect, the offer's board and channel are the device's, the
//! offered version is newer than the running one, and no upgrade this start began is
//! still in flight. It is then the same Upgrade the API runs: the device verifies the
//! signed repository itself, and the upgrade subsystem's own refusals (probation, a
//! release rolled back from) still hold.
//!
//! While the server is unreachable the device keeps working: steps queue on disk
//! (bounded, see [`queue`]) and go out at the next successful check-in.
//!
//! # Layout
//! - [`schedule`]: interval, jitter, backoff (pure).
//! - [`queue`]: the persisted report queue.
//! - [`client`]: one check-in over gRPC, the answer checked.
//! - [`enrollment`]: the join URL, the device key and CSR, the pinned server CA, the
//!   certificate for mutual TLS.
//! - `join`: the controller's route to the server (plaintext, or enroll once and then
//!   mutual TLS), and its stop when the server refuses the identity.
//! - [`join_url`]: parsing the join URL and the `skerry.join=` kernel argument.
//! - [`request`]: the CheckIn built from the device's resources.
//! - [`ship`]: the console log and events to `skerry.logs=` / `skerry.events=`.
//! - `controller`: the runtime controller.

pub mod client;
mod controller;
pub mod enrollment;
mod join;
pub mod join_url;
pub mod queue;
pub mod request;
pub mod schedule;
pub mod ship;

use std::sync::Arc;

use skerry_runtime::Runtime;
use skerryd_core::{Context, UpgradeOps};

pub use controller::{FleetStatus, CONTROLLER, FLEET_NAMESPACE, STATUS_ID};

/// Registers the fleet controller; `upgrade` is what it asks to take an offer.
pub fn register(
    runtime: &mut Runtime,
    context: &Context,
    upgrade: Arc<dyn UpgradeOps>,
) -> anyhow::Result<()> {
    let dir = context.layout.var().join("fleet");
    let queue = queue::ReportQueue::open(&dir)?;
    runtime.register(controller::Fleet::new(context, queue, upgrade))?;
    Ok(())
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
