//! skerryd's config subsystem (placeholder until written).

use skerry_runtime::Runtime;
use skerryd_core::ConfigOps;
use skerryd_core::Context;
use std::sync::Arc;

/// Registers this subsystem's controllers on `runtime`.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn ConfigOps>> {
    let _ = (runtime, context);
    anyhow::bail!("skerryd-config is not written yet")
}
