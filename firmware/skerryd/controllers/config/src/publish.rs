//! The controller that publishes the config in effect as the shared `Active*`
//! resources (one per document, services by name) and the subsystem's status, and that
//! reverts a config on try when its time runs out. It owns those types exclusively; the
//! API side only writes the store and bumps [`ConfigRevision`], which wakes it.

use std::sync::Arc;
use std::time::Duration;

use skerry_config::Config;
use skerry_runtime::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use skerryd_core::resources::{
    ActiveFleet, ActiveMachine, ActiveNetwork, ActiveService, ActiveTime, ActiveUpdate,
    ActiveWatchdog, SINGLETON,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::resources::{ConfigRevision, ConfigStatus, STORE_ID};

/// The controller's name.
pub const CONTROLLER: &str = "config-in-effect";

/// See the module docs.
#[derive(Debug)]
pub struct PublishConfig {
    engine: Arc<Mutex<Engine>>,
}

impl PublishConfig {
    /// Publishes what `engine` holds.
    pub fn new(engine: Arc<Mutex<Engine>>) -> Self {
        PublishConfig { engine }
    }
}

fn singleton<T: skerry_runtime::ResourceSpec>(
    ctx: &mut ReconcileContext,
    spec: Option<T>,
) -> Result<(), ControllerError> {
    match spec {
        Some(spec) => {
            ctx.apply(SINGLETON, spec)?;
        }
        None => {
            ctx.destroy::<T>(SINGLETON)?;
        }
    }
    Ok(())
}

/// Brings the `Active*` resources in line with `config`.
fn publish(ctx: &mut ReconcileContext, config: &Config) -> Result<(), ControllerError> {
    singleton(ctx, config.machine.clone().map(ActiveMachine))?;
    singleton(ctx, config.network.clone().map(ActiveNetwork))?;
    singleton(ctx, config.time.clone().map(ActiveTime))?;
    singleton(ctx, config.watchdog.clone().map(ActiveWatchdog))?;
    singleton(ctx, config.update.clone().map(ActiveUpdate))?;
    singleton(ctx, config.fleet.clone().map(ActiveFleet))?;
    for service in &config.services {
        ctx.apply(&service.name, ActiveService(service.clone()))?;
    }
    ctx.cleanup_untouched::<ActiveService>()?;
    Ok(())
}

impl Controller for PublishConfig {
    fn name(&self) -> &str {
        CONTROLLER
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<ConfigRevision>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![
            Output::exclusive::<ActiveMachine>(),
            Output::exclusive::<ActiveNetwork>(),
            Output::exclusive::<ActiveTime>(),
            Output::exclusive::<ActiveService>(),
            Output::exclusive::<ActiveWatchdog>(),
            Output::exclusive::<ActiveUpdate>(),
            Output::exclusive::<ActiveFleet>(),
            Output::exclusive::<ConfigStatus>(),
        ]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let (config, status, deadline) = {
            let mut engine = self.engine.lock().await;
            engine.revert_if_due(Instant::now())?;
            (
                engine.effective().config.clone(),
                engine.status(),
                engine.trial().map(|t| t.deadline),
            )
        };
        publish(ctx, &config)?;
        ctx.apply(STORE_ID, status)?;
        Ok(match deadline {
            // At least a millisecond, so a deadline reached meanwhile is one more run,
            // not a busy loop.
            Some(deadline) => Requeue::After(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ),
            None => Requeue::OnChange,
        })
    }
}
