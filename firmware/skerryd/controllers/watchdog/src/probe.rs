//! `watchdog-state-probe`: writes and syncs a small file in the state directory every
//! interval, and renews the state-write lease only once the sync returned. A stalled
//! disk (an fsync that never returns) stops the renewals.

use std::ffi::OsStr;

use skerry_medium::Directory;
use skerry_runtime::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use skerry_watchdog::gate::Lease;

use crate::options::IDLE_POLL;
use crate::SharedTuning;

/// The probe controller's name.
pub(crate) const NAME: &str = "watchdog-state-probe";
/// The file it writes.
pub const PROBE_FILE: &str = "watchdog-probe";

pub(crate) struct StateProbe {
    directory: Option<Box<dyn Directory + Send>>,
    lease: Lease,
    tuning: SharedTuning,
    writes: u64,
}

impl StateProbe {
    pub(crate) fn new(
        directory: Box<dyn Directory + Send>,
        lease: Lease,
        tuning: SharedTuning,
    ) -> Self {
        Self {
            directory: Some(directory),
            lease,
            tuning,
            writes: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the state-write probe's blocking task ended without its directory")]
struct ProbeLost;

impl Controller for StateProbe {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        Vec::new()
    }

    fn outputs(&self) -> Vec<Output> {
        Vec::new()
    }

    async fn reconcile(&mut self, _: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let tuning = *self.tuning.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tuning) = tuning else {
            return Ok(Requeue::After(IDLE_POLL));
        };
        self.lease.set_deadline(tuning.deadline)?;
        let Some(mut directory) = self.directory.take() else {
            return Err(ProbeLost.into());
        };
        self.writes += 1;
        // Fixed length, written in place: one small write and one sync per probe.
        let content = format!("{:020}\n", self.writes);
        let (directory, written) = tokio::task::spawn_blocking(move || {
            let name = OsStr::new(PROBE_FILE);
            let written = directory
                .write_at(name, 0, content.as_bytes())
                .and_then(|()| directory.sync_file(name));
            (directory, written)
        })
        .await
        .map_err(|_| ProbeLost)?;
        self.directory = Some(directory);
        match written {
            Ok(()) => self.lease.renew(),
            Err(e) => tracing::warn!(error = %e, "the watchdog's state-write probe failed"),
        }
        Ok(Requeue::After(tuning.interval))
    }
}
