//! The API's Upgrade and Rollback: the refusals, then the work.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use skerry_api::pb;
use skerry_boot_state::{SlotName, SlotStatus};
use skerryd_core::resources::{ActiveUpdate, SINGLETON};
use skerryd_core::{Answers, UpgradeOps};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::flow::{self, status_name, RollbackRefused};
use crate::install::{self, refused_rolled_back, Plan, Reinstall};
use crate::machine::Machine;
use crate::resources::UpgradePhaseName;

/// The longest rollback reason kept.
pub const MAX_REASON: usize = 1024;
/// The longest release version accepted.
pub const MAX_VERSION: usize = 128;
/// Progress messages buffered for a slow client.
const STREAM_BUFFER: usize = 64;

/// [`UpgradeOps`] on the shared machine.
#[derive(Debug)]
pub(crate) struct Upgrades {
    pub machine: Arc<Machine>,
}

fn precondition(message: impl Into<String>) -> Status {
    Status::failed_precondition(message.into())
}

impl Upgrades {
    /// Every refusal that can be decided before anything is fetched.
    fn check(&self, request: &pb::UpgradeRequest) -> Result<Plan, Status> {
        let m = &self.machine;
        if request.release_version.len() > MAX_VERSION {
            return Err(Status::invalid_argument(format!(
                "release_version is longer than {MAX_VERSION} characters"
            )));
        }
        let version = if request.release_version.is_empty() {
            None
        } else {
            Some(
                semver::Version::parse(&request.release_version).map_err(|e| {
                    Status::invalid_argument(format!(
                        "release_version {:?} is not a semantic version like 1.2.3: {e}",
                        request.release_version
                    ))
                })?,
            )
        };
        let update = m
            .state
            .get::<ActiveUpdate>(SINGLETON)
            .map_err(|_| {
                precondition(
                    "refused: no update source is configured; apply an UpdateConfig document (repository, trustedRoot, board, channel, probation)",
                )
            })?
            .spec;
        let Some(booted) = m.booted.clone() else {
            return Err(precondition(
                "refused: the booted slot is not known (no skerry.slot= on the kernel command line), so the inactive slot cannot be told apart",
            ));
        };
        let state = m
            .boot_state()
            .map_err(|e| Status::internal(format!("reading the boot store: {e}")))?;
        let booted_status = state
            .status(&booted)
            .map_err(|e| Status::internal(format!("the booted slot {booted}: {e}")))?;
        if let SlotStatus::Trial { .. } = booted_status {
            return Err(precondition(format!(
                "refused: the machine is in probation: the booted slot {booted} is on trial and not yet committed; wait until probation commits it or rolls it back"
            )));
        }
        if !m.area.committed_or_main() {
            // Committed during this start, but the overlay's marker is not on disk: a
            // trial begun now would be seeded from the old release's main area.
            return Err(precondition(format!(
                "refused: slot {booted} was committed during this start but its trial /var overlay could not be marked committed; reboot once before the next upgrade"
            )));
        }
        if m.decided.load(Ordering::SeqCst) && booted_status != SlotStatus::Good {
            return Err(precondition(format!(
                "refused: slot {booted} was just rolled back; the machine reboots into the known-good slot"
            )));
        }
        let target = m
            .board
            .slots
            .iter()
            .map(|s| s.name.as_str())
            .find(|s| *s != booted.as_str())
            .ok_or_else(|| {
                precondition("refused: the board has no slot other than the booted one")
            })?;
        let target: SlotName = target
            .parse()
            .map_err(|e| Status::internal(format!("the board's slot {target}: {e}")))?;
        if target == booted {
            return Err(precondition(format!(
                "refused: the target slot {target} is the booted slot"
            )));
        }
        if booted_status != SlotStatus::Good {
            return Err(precondition(format!(
                "refused: installing into slot {target} would overwrite the last known-good slot: the booted slot {booted} is {}",
                status_name(booted_status)
            )));
        }
        if let Some(trial) = state.trial() {
            return Err(precondition(format!(
                "refused: slot {trial} is on trial; finish that trial first"
            )));
        }
        let history = m.history().load().map_err(|e| {
            precondition(format!(
                "refused: {e}; an upgrade needs a history it can record its steps in"
            ))
        })?;
        if let Some(v) = &version {
            let release = v.to_string();
            if history.is_rolled_back(&release) && !request.force {
                return Err(refused_rolled_back(&release, &history));
            }
        }
        let image = |slot: &SlotName| {
            m.board.slot_image(&m.layout, slot.as_str()).ok_or_else(|| {
                Status::internal(format!("the board definition has no image for slot {slot}"))
            })
        };
        Ok(Plan {
            repository: update.0.repository.clone(),
            trusted_root: m
                .layout
                .resolve(std::path::Path::new(&update.0.trusted_root)),
            board: update.0.board.clone(),
            channel: update.0.channel.clone(),
            version,
            reinstall: if request.force {
                Reinstall::AllowRolledBack
            } else {
                Reinstall::RefuseRolledBack
            },
            seed_image: image(&booted)?,
            target_image: image(&target)?,
            booted,
            target,
        })
    }
}

#[tonic::async_trait]
impl UpgradeOps for Upgrades {
    async fn upgrade(
        &self,
        request: pb::UpgradeRequest,
    ) -> Result<Answers<pb::UpgradeProgress>, Status> {
        let plan = self.check(&request)?;
        let busy = self
            .machine
            .try_busy()
            .ok_or_else(|| precondition("refused: an upgrade is already running"))?;
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let machine = self.machine.clone();
        tracing::info!(target_slot = %plan.target, "upgrade started");
        let (watch_tx, watched) = (tx.clone(), machine.clone());
        let work = tokio::task::spawn_blocking(move || install::run(machine, plan, tx, busy));
        tokio::spawn(async move {
            match work.await {
                // The stream is ended (every sender dropped) before the reboot closes
                // the API's streams, so the client gets TRIAL_READY and a clean end.
                Ok(trial_ready) => {
                    drop(watch_tx);
                    if trial_ready {
                        watched.reboot(watched.tryboot());
                    }
                }
                // A panic in the install must still end the stream with an answer.
                Err(e) => {
                    let status = task_failed("upgrade", &e);
                    tracing::error!(message = %status.message());
                    watched.phase(UpgradePhaseName::Failed, status.message().to_owned());
                    let _ = watch_tx.send(Err(status)).await;
                }
            }
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn rollback(&self, request: pb::RollbackRequest) -> Result<pb::RollbackResponse, Status> {
        let m = self.machine.clone();
        if request.reason.len() > MAX_REASON {
            return Err(Status::invalid_argument(format!(
                "reason is longer than {MAX_REASON} bytes"
            )));
        }
        let Some(booted) = m.booted.clone() else {
            return Err(precondition(
                "refused: the booted slot is not known (no skerry.slot= on the kernel command line)",
            ));
        };
        let (target, entry) = tokio::task::spawn_blocking(move || -> Result<_, Status> {
            let _io = m.lock_io();
            let release = skerry_installer::state::load_slots(&m.layout.installer())
                .ok()
                .and_then(|slots| slots.get(booted.as_str()).map(|r| r.version.clone()))
                .unwrap_or_default();
            let mut store = m
                .boot_store()
                .map_err(|e| Status::internal(format!("opening the boot store: {e}")))?;
            let mut history = m.history();
            let target = flow::rollback(
                &mut history,
                store.as_mut(),
                &booted,
                &release,
                &request.reason,
            )
            .map_err(|e| match e {
                RollbackRefused::NoGoodSlot(_) => precondition(e.to_string()),
                RollbackRefused::Flow(e) => Status::internal(format!("rolling back: {e}")),
            })?;
            m.decided.store(true, Ordering::SeqCst);
            let h = history.load().ok();
            Ok((target, h))
        })
        .await
        .map_err(|e| task_failed("rollback", &e))??;
        let m = &self.machine;
        if let Some(h) = entry {
            if let Some(last) = h.entries.last() {
                m.entry_event("upgrade.rolled_back", last);
            }
            m.publish_history(&h);
        }
        m.set_status(|s| {
            s.phase = UpgradePhaseName::RollingBack;
            s.probation_deadline = None;
            s.target_slot = target.to_string();
            s.message = format!("rolled back by an operator; rebooting into slot {target}");
        });
        m.reboot(false);
        Ok(pb::RollbackResponse {
            target_slot: target.to_string(),
        })
    }
}

/// The answer when the blocking task of `what` did not finish: a task cancelled before
/// it started (the daemon is stopping: it never ran, nothing changed) is UNAVAILABLE, to
/// be called again once the daemon is back; a panic is INTERNAL.
fn task_failed(what: &str, error: &tokio::task::JoinError) -> Status {
    if error.is_cancelled() {
        Status::unavailable(format!(
            "skerryd is stopping: the {what} did not run; call again once it is back"
        ))
    } else {
        Status::internal(format!("the {what} task failed: {error}"))
    }
}
