//! skerryd's config subsystem: the config store in the `/var` area (the config in
//! effect, its history, a staged config, a config on try), the apply modes of
//! `ApplyConfiguration`, a try that reverts itself unless confirmed, and the config in
//! effect published as the shared `Active*` resources the other subsystems reconcile
//! from.
//!
//! Layout:
//! - `store`: the files and their formats, each written atomically;
//! - `engine`: the state machine over the store, and what a start does;
//! - `problems`: checking a submitted config, every problem at once;
//! - `ops`: [`skerryd_core::ConfigOps`] for the API;
//! - `publish`: the controller that owns the `Active*` resources and the status;
//! - `resources`: this subsystem's own resource types.

pub mod engine;
pub mod ops;
pub mod problems;
pub mod publish;
pub mod resources;
pub mod store;

use std::sync::Arc;

use skerry_runtime::Runtime;
use skerryd_core::{ConfigOps, Context};
use tokio::sync::Mutex;

pub use ops::ConfigApi;
pub use resources::{ConfigRevision, ConfigStatus, TryStatus, STORE_ID};

/// The factory config under the machine root, used when the store is empty (on a
/// device `/etc/skerry/config.yaml`: `Layout::factory_config`).
pub const FACTORY_CONFIG: &str = "config.yaml";
/// The marker under `run/` naming the config on try in this boot.
pub const TRY_MARKER: &str = "config-try";

/// The envelope formats the store writes, for `VarArea::record_floor` on a committed
/// slot. (`config.json`, `staged.json` and `history.json` carry skerry-config's own
/// `formatVersion`.)
pub const FORMATS: &[skerryd_core::Format] = &[store::TRY_FORMAT, store::GENERATION_FORMAT];

/// Opens the config store (carrying out what a start does: factory config, staged
/// config, a config on try), registers the publishing controller on `runtime`, and
/// returns what the API calls. Fails, naming the file, when the store or the factory
/// config is unreadable or invalid.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn ConfigOps>> {
    let engine = engine::Engine::open(engine::Start {
        store: store::Store::in_area(&context.area),
        factory: context.layout.factory_config(),
        try_marker: context.layout.run().join(TRY_MARKER),
        events: context.events.clone(),
    })?;
    let engine = Arc::new(Mutex::new(engine));
    runtime.register(publish::PublishConfig::new(engine.clone()))?;
    Ok(Arc::new(ConfigApi::new(
        engine,
        context.state.clone(),
        context.power.clone(),
    )))
}
