//! [`Activity`]: when each controller last reconciled and whether it is inside a
//! reconcile now, shared with whoever watches for stuck controllers (the watchdog gate).
//! Times are tokio's clock, so paused-time tests see them move with the timers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

/// One controller's reconcile activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ControllerActivity {
    /// When the reconcile running now started; `None` between reconciles.
    pub reconciling_since: Option<Instant>,
    /// When the last reconcile (successful or not) finished.
    pub last_reconciled: Option<Instant>,
}

/// Every registered controller's activity, by name. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Activity {
    controllers: Arc<Mutex<BTreeMap<String, ControllerActivity>>>,
}

impl Activity {
    fn update(&self, name: &str, f: impl FnOnce(&mut ControllerActivity)) {
        let mut controllers = self
            .controllers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(controllers.entry(name.to_owned()).or_default());
    }

    pub(crate) fn registered(&self, name: &str) {
        self.update(name, |_| {});
    }

    pub(crate) fn started(&self, name: &str) {
        self.update(name, |a| a.reconciling_since = Some(Instant::now()));
    }

    pub(crate) fn finished(&self, name: &str) {
        self.update(name, |a| {
            a.reconciling_since = None;
            a.last_reconciled = Some(Instant::now());
        });
    }

    /// One controller's activity; `None` if no controller has that name.
    pub fn get(&self, name: &str) -> Option<ControllerActivity> {
        self.controllers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .copied()
    }

    /// Every controller's activity, by name.
    pub fn snapshot(&self) -> Vec<(String, ControllerActivity)> {
        self.controllers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, activity)| (name.clone(), *activity))
            .collect()
    }
}
