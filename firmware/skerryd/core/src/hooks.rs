//! Work a subsystem must finish when the daemon stops in order: stop the services'
//! process groups, close the watchdog with its magic character, flush a store. The
//! daemon runs the hooks after the controllers stopped, last registered first.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

type Hook = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The hooks, shared by every clone.
#[derive(Clone, Default)]
pub struct StopHooks {
    hooks: Arc<Mutex<Vec<(String, Hook)>>>,
}

impl std::fmt::Debug for StopHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hooks = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_list()
            .entries(hooks.iter().map(|(name, _)| name))
            .finish()
    }
}

impl StopHooks {
    /// Adds `hook`, named for the log.
    pub fn add(&self, name: impl Into<String>, hook: impl Future<Output = ()> + Send + 'static) {
        self.hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), Box::pin(hook)));
    }

    /// Runs every hook, last added first, each at most `limit`.
    pub async fn run(&self, limit: std::time::Duration) {
        let hooks = std::mem::take(&mut *self.hooks.lock().unwrap_or_else(|e| e.into_inner()));
        for (name, hook) in hooks.into_iter().rev() {
            if tokio::time::timeout(limit, hook).await.is_err() {
                tracing::warn!(hook = %name, "a stop hook did not finish in time");
            }
        }
    }
}
