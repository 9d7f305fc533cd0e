//! The fleet controller: wakes when the config or the upgrade history changes and
//! when the next check-in is due; turns new history steps into queued reports, checks
//! in, forgets what the server acknowledged, and acts on an offer (the rule is in the
//! crate docs). Its one output is [`FleetStatus`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use skerry_api::pb;
use skerry_proto::fleet::v1::{CheckInResponse, Offer, UpgradeStep};
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, ResourceSpec, Selector,
};
use skerryd_core::resources::{
    ActiveFleet, ActiveMachine, ActiveUpdate, HealthCheckStatus, SINGLETON,
};
use skerryd_core::{Context, UpgradeOps};
use skerryd_upgrade::history::Step;
use skerryd_upgrade::resources::UpgradeHistoryEntry;
use tokio::time::Instant;
use tokio_stream::StreamExt as _;

use crate::join::{self, Joining, Route};
use crate::queue::ReportQueue;
use crate::request::{self, Identity};
use crate::schedule::Schedule;

/// The controller's name.
pub const CONTROLLER: &str = "fleet";
/// The namespace of the fleet client's resources.
pub const FLEET_NAMESPACE: &str = "fleet";
/// The id of the [`FleetStatus`] singleton.
pub const STATUS_ID: &str = "status";

/// Where the fleet client stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetStatus {
    /// The server checked in with ("" without a FleetConfig).
    pub server: String,
    /// Check-ins failed in a row.
    pub failures: u32,
    /// The last error, for people.
    pub last_error: String,
    /// When the last check-in was answered (Unix seconds, 0: never this start).
    pub last_answer: u64,
    /// Reports waiting for the server.
    pub queued: usize,
    /// Reports dropped because the queue was full.
    pub dropped: u64,
    /// The last sequence the server acknowledged.
    pub acknowledged: u64,
    /// What the server said last (an offer or a hold, in words).
    pub decision: String,
    /// How the device talks to the server: "plaintext", "mutual TLS" (enrolled by a
    /// join URL), or "stopped" (the server refused its identity).
    #[serde(default)]
    pub transport: String,
}

impl ResourceSpec for FleetStatus {
    const TYPE: &'static str = "FleetStatuses.fleet.skerry.dev";
    const NAMESPACE: &'static str = FLEET_NAMESPACE;
}

/// See the module docs.
pub(crate) struct Fleet {
    queue: ReportQueue,
    upgrade: Arc<dyn UpgradeOps>,
    upgrading: Arc<AtomicBool>,
    schedule: Option<Schedule>,
    due: Instant,
    board: String,
    booted: Option<String>,
    on_trial: bool,
    /// Whether this start's probation (the booted slot on trial) was queued.
    probation_queued: bool,
    installer: std::path::PathBuf,
    joining: Joining,
    /// The join URL of the last reconcile: a new one is tried at once, not after a
    /// refused token's long wait.
    last_join: Option<String>,
    /// Where the device id goes for the log shipper, and what was written there.
    id_file: PathBuf,
    published_id: Option<String>,
    status: FleetStatus,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    pub(crate) fn new(context: &Context, queue: ReportQueue, upgrade: Arc<dyn UpgradeOps>) -> Self {
        Fleet {
            queue,
            upgrade,
            upgrading: Arc::new(AtomicBool::new(false)),
            schedule: None,
            due: Instant::now(),
            board: context.board.name.clone(),
            booted: context.boot.booted.as_ref().map(|s| s.as_str().to_owned()),
            on_trial: context.boot.booted_on_trial(),
            probation_queued: false,
            installer: context.layout.installer(),
            last_join: None,
            id_file: context
                .layout
                .var()
                .join("fleet")
                .join(crate::ship::shipper::DEVICE_ID_FILE),
            published_id: None,
            joining: Joining::new(
                &context.layout.var().join("fleet"),
                &context.layout.cmdline(),
            ),
            status: FleetStatus {
                server: String::new(),
                failures: 0,
                last_error: String::new(),
                last_answer: 0,
                queued: 0,
                dropped: 0,
                acknowledged: 0,
                decision: String::new(),
                transport: String::new(),
            },
        }
    }

    /// The release the installer recorded for the booted slot ("0.0.0" when unknown).
    fn running_version(&self) -> String {
        self.booted
            .as_deref()
            .and_then(|slot| {
                skerry_installer::state::load_slots(&self.installer)
                    .ok()?
                    .remove(slot)
            })
            .map(|r| r.version)
            .unwrap_or_else(|| "0.0.0".to_owned())
    }

    /// New history steps become queued reports (saved before anything is sent). A
    /// start on a slot on trial adds `probation` once, after the trial's own steps and
    /// before the step that ends it.
    fn take_history(&mut self, ctx: &ReconcileContext) -> Result<(), ControllerError> {
        let mut entries = ctx.list::<UpgradeHistoryEntry>(&Selector::all())?;
        entries.sort_by_key(|e| e.spec.0.seq);
        let mut changed = false;
        for e in entries {
            let e = e.spec.0;
            let new = e.seq > self.queue.state().last_history_seq;
            if new && matches!(e.step, Step::Committed | Step::RolledBack) {
                changed |= self.queue_probation();
            }
            changed |= self.queue.push_steps(
                e.seq,
                request::steps_of(e.step),
                &e.release,
                &e.reason,
                e.time,
            );
        }
        changed |= self.queue_probation();
        if changed {
            self.queue.save()?;
        }
        Ok(())
    }

    /// Queues `probation` for the release on trial, once per start on a trial slot.
    fn queue_probation(&mut self) -> bool {
        if !self.on_trial || self.probation_queued {
            return false;
        }
        self.probation_queued = true;
        let slot = self.booted.clone().unwrap_or_default();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.queue.append(
            UpgradeStep::Probation,
            &self.running_version(),
            &format!("slot {slot} started on trial: its critical health checks decide"),
            at,
        );
        true
    }

    fn identity(
        &self,
        ctx: &ReconcileContext,
        channel: String,
        fleet: &ActiveFleet,
    ) -> Result<Identity, ControllerError> {
        let machine = ctx.get::<ActiveMachine>(SINGLETON)?.map(|m| m.spec.0);
        let device_id = self.device_id(machine.as_ref());
        let mut labels = machine.map(|m| m.identity.labels).unwrap_or_default();
        labels.extend(fleet.0.labels.clone());
        Ok(Identity {
            device_id,
            board: self.board.clone(),
            version: self.running_version(),
            channel,
            labels,
        })
    }

    /// The id the device checks in (and ships its log) as: the config's machine id,
    /// else its host name, else the board's name.
    fn device_id(&self, machine: Option<&skerry_config::kinds::MachineConfig>) -> String {
        let raw = machine
            .and_then(|m| m.identity.machine_id.clone().or(Some(m.hostname.clone())))
            .unwrap_or_else(|| self.board.clone());
        crate::ship::shipper::device_id(&raw)
    }

    /// Writes the device id for the log shipper when the config in effect names one
    /// it has not been told yet (a device id that cannot be written is only logged: the
    /// shipper then uses its fallback).
    fn publish_device_id(&mut self, ctx: &ReconcileContext) -> Result<(), ControllerError> {
        let Some(machine) = ctx.get::<ActiveMachine>(SINGLETON)?.map(|m| m.spec.0) else {
            return Ok(());
        };
        let id = self.device_id(Some(&machine));
        if self.published_id.as_ref() == Some(&id) || id.is_empty() {
            return Ok(());
        }
        if let Some(dir) = self.id_file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match skerry_medium::write_atomic(&self.id_file, format!("{id}\n").as_bytes()) {
            Ok(()) => self.published_id = Some(id),
            Err(e) => {
                tracing::warn!(path = %self.id_file.display(), error = %e, "writing the device id for the log shipper")
            }
        }
        Ok(())
    }

    /// Acts on an offer under the rule in the crate docs; returns what was decided.
    fn consider(
        &self,
        offer: &Offer,
        fleet: &ActiveFleet,
        update: Option<&ActiveUpdate>,
        who: &Identity,
    ) -> String {
        let version = &offer.version;
        if !fleet.0.accept_offers {
            return format!("offer of {version} not taken: acceptOffers is false (local pin)");
        }
        let Some(update) = update else {
            return format!("offer of {version} not taken: no UpdateConfig is in effect");
        };
        if offer.board != who.board || offer.channel != update.0.channel {
            return format!(
                "offer of {version} refused: board {:?} channel {:?} are not this device's ({} on {})",
                offer.board, offer.channel, who.board, update.0.channel
            );
        }
        let newer = match (
            semver::Version::parse(version),
            semver::Version::parse(&who.version),
        ) {
            (Ok(offered), Ok(running)) => offered > running,
            (Ok(_), Err(_)) => true,
            _ => false,
        };
        if !newer {
            return format!(
                "offer of {version} not taken: it is not newer than {}",
                who.version
            );
        }
        if self.upgrading.swap(true, Ordering::SeqCst) {
            return format!("offer of {version}: an upgrade is already in flight");
        }
        let upgrade = self.upgrade.clone();
        let upgrading = self.upgrading.clone();
        let request = pb::UpgradeRequest {
            release_version: version.clone(),
            force: offer.forced,
        };
        tokio::spawn(async move {
            match upgrade.upgrade(request).await {
                Ok(mut progress) => {
                    while let Some(step) = progress.next().await {
                        if let Err(status) = step {
                            tracing::warn!(%status, "the offered upgrade failed");
                            break;
                        }
                    }
                }
                Err(status) => tracing::warn!(%status, "the offered upgrade was refused"),
            }
            upgrading.store(false, Ordering::SeqCst);
        });
        format!("offer of {version} taken: upgrading")
    }

    fn answered(
        &mut self,
        answer: &CheckInResponse,
        fleet: &ActiveFleet,
        update: Option<&ActiveUpdate>,
        who: &Identity,
    ) -> Result<Duration, ControllerError> {
        self.queue.acknowledge(answer.acknowledged_sequence);
        self.queue.save()?;
        self.status.last_error.clear();
        self.status.last_answer = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.status.decision = match (&answer.offer, &answer.hold) {
            (Some(offer), _) => self.consider(offer, fleet, update, who),
            (None, Some(hold)) => format!(
                "hold: {}",
                hold.detail.chars().take(256).collect::<String>()
            ),
            (None, None) => "no decision".to_owned(),
        };
        let asked = answer
            .poll_interval
            .as_ref()
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32));
        let schedule = self
            .schedule
            .as_mut()
            .ok_or("the schedule is made before the first check-in")?;
        Ok(schedule.answered(asked, fleet.0.poll_interval.map(|p| p.0)))
    }
}

impl Controller for Fleet {
    fn name(&self) -> &str {
        CONTROLLER
    }

    fn inputs(&self) -> Vec<Input> {
        vec![
            Input::weak::<ActiveFleet>(),
            Input::weak::<ActiveUpdate>(),
            Input::weak::<ActiveMachine>(),
            Input::weak::<UpgradeHistoryEntry>(),
            Input::weak::<HealthCheckStatus>(),
        ]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<FleetStatus>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        self.take_history(ctx)?;
        self.publish_device_id(ctx)?;
        let configured = ctx.get::<ActiveFleet>(SINGLETON)?.map(|r| r.spec);
        let join = self
            .joining
            .join_text(configured.as_ref().and_then(|f| f.0.join.as_deref()));
        let join_now = join.as_ref().map(|(text, _)| text.clone());
        if join_now != self.last_join {
            self.last_join = join_now;
            self.due = Instant::now();
        }
        let fleet = match (configured, &join) {
            (Some(fleet), _) => fleet,
            // A join URL on the kernel command line is enough: its server, defaults.
            (None, Some((text, _))) => ActiveFleet(skerry_config::kinds::FleetConfig {
                server: crate::enrollment::JoinUrl::parse(text)
                    .map(|j| j.server)
                    .unwrap_or_default(),
                channel: None,
                labels: Default::default(),
                poll_interval: None,
                join: None,
                accept_offers: true,
            }),
            (None, None) => {
                self.status.server.clear();
                self.status.transport.clear();
                self.refresh_status(ctx)?;
                return Ok(Requeue::OnChange);
            }
        };
        let update = ctx.get::<ActiveUpdate>(SINGLETON)?.map(|r| r.spec);
        let channel = fleet
            .0
            .channel
            .clone()
            .or_else(|| update.as_ref().map(|u| u.0.channel.clone()))
            .unwrap_or_else(|| "stable".to_owned());
        let who = self.identity(ctx, channel, &fleet)?;
        if self.schedule.is_none() {
            let mut entropy = [0u8; 8];
            let _ = getrandom::getrandom(&mut entropy);
            self.schedule = Some(Schedule::new(&who.device_id, u64::from_le_bytes(entropy)));
        }
        let now = Instant::now();
        if now < self.due {
            self.refresh_status(ctx)?;
            return Ok(Requeue::After(self.due - now));
        }
        let checks: Vec<(String, HealthCheckStatus)> = ctx
            .list::<HealthCheckStatus>(&Selector::all())?
            .into_iter()
            .map(|r| (r.metadata.id.to_string(), r.spec))
            .collect();
        let slots = self
            .booted
            .as_deref()
            .map(|slot| vec![request::booted_slot(slot, &who.version, self.on_trial)])
            .unwrap_or_default();
        let req = request::build(&who, slots, request::health(&checks), self.queue.state());
        let schedule = &mut self.schedule;
        let route = self
            .joining
            .route(
                &fleet.0.server,
                join.clone(),
                &who.device_id,
                &who.board,
                || {
                    schedule
                        .as_mut()
                        .map_or(crate::schedule::FIRST_BACKOFF, Schedule::failed)
                },
            )
            .await;
        let (server, tls) = match route {
            Route::Plain(server) => {
                self.status.transport = "plaintext".into();
                (server, None)
            }
            Route::Mutual { server, tls } => {
                self.status.transport = "mutual TLS".into();
                (server, Some(*tls))
            }
            Route::Wait {
                server,
                reason,
                retry,
                stopped,
            } => {
                self.status.server = server;
                self.status.last_error = reason;
                self.status.transport = if stopped { "stopped" } else { "enrolling" }.into();
                self.status.failures = self.schedule.as_ref().map_or(0, Schedule::failures);
                self.refresh_status(ctx)?;
                return Ok(match retry {
                    Some(delay) => {
                        self.due = Instant::now() + delay;
                        Requeue::After(delay)
                    }
                    None => Requeue::OnChange,
                });
            }
        };
        self.status.server = server.clone();
        let mutual = tls.is_some();
        let delay = match crate::client::check_in_with(&server, tls, req).await {
            Ok(answer) => self.answered(&answer, &fleet, update.as_ref(), &who)?,
            Err(crate::client::CheckInError::Refused { status, .. })
                if mutual && join::refuses_identity(status.code()) =>
            {
                let message = format!(
                    "stopped: the server refused this device's identity: {}; enrolling again needs a join URL with a new token",
                    status.message().chars().take(256).collect::<String>()
                );
                tracing::error!(error = %message, "fleet check-ins stop");
                self.joining.identity_refused(join.as_ref());
                self.status.last_error = message;
                self.status.transport = "stopped".into();
                self.refresh_status(ctx)?;
                return Ok(Requeue::OnChange);
            }
            Err(e) => {
                let message = crate::error_chain(&e);
                tracing::warn!(error = %message, "fleet check-in failed; reports stay queued");
                self.status.last_error = message;
                match self.schedule.as_mut() {
                    Some(s) => s.failed(),
                    None => crate::schedule::FIRST_BACKOFF,
                }
            }
        };
        self.status.failures = self.schedule.as_ref().map_or(0, Schedule::failures);
        self.due = Instant::now() + delay;
        self.refresh_status(ctx)?;
        Ok(Requeue::After(delay))
    }
}

impl Fleet {
    fn refresh_status(&mut self, ctx: &mut ReconcileContext) -> Result<(), ControllerError> {
        let q = self.queue.state();
        self.status.queued = q.reports.len();
        self.status.dropped = q.dropped;
        self.status.acknowledged = q.acknowledged;
        ctx.apply(STATUS_ID, self.status.clone())?;
        Ok(())
    }
}
