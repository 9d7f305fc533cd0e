//! skerryd's services and health subsystem (placeholder until written).

use skerry_runtime::Runtime;
use skerryd_core::Context;
use skerryd_core::ServiceOps;
use std::sync::Arc;

/// Registers this subsystem's controllers on `runtime`.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<Arc<dyn ServiceOps>> {
    let _ = (runtime, context);
    anyhow::bail!("skerryd-services is not written yet")
}
