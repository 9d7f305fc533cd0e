//! skerryd's watchdog subsystem (placeholder until written).

use skerry_runtime::Runtime;
use skerryd_core::Context;

/// Registers this subsystem's controllers on `runtime`.
pub fn register(runtime: &mut Runtime, context: &Context) -> anyhow::Result<()> {
    let _ = (runtime, context);
    anyhow::bail!("skerryd-watchdog is not written yet")
}
