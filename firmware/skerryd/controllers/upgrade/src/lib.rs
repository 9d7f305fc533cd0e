//! skerryd's upgrade subsystem (placeholder until written).

use skerry_runtime::Runtime;
use skerryd_core::Context;
use skerryd_core::UpgradeOps;
use std::sync::Arc;

/// Registers this subsystem's controllers on `runtime`.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn UpgradeOps>> {
    let _ = (runtime, context);
    anyhow::bail!("skerryd-upgrade is not written yet")
}
