//! `ApplyConfiguration` and `ConfirmConfiguration`: check the request, decide what the
//! mode may do, carry it out on the engine (one request at a time, under its lock),
//! then wake the publishing controller and wait until the config in effect is
//! published, so an answer is followed by resources that agree with it.

use std::sync::Arc;
use std::time::Duration;

use skerry_api::pb;
use skerry_config::kinds::HumanDuration;
use skerry_config::{required_mode, ApplyMode, Config, Kind, Limits, ModeDecision};
use skerry_runtime::State;
use skerryd_core::{ConfigOps, Power, PowerRequest};
use tokio::sync::Mutex;
use tonic::Status;

use crate::engine::{ConfirmError, Engine};
use crate::problems::{self, Verdict};
use crate::resources::{ConfigRevision, ConfigStatus, STORE_ID};
use crate::store::StoreError;

/// The try timeout when the request gives none.
pub const DEFAULT_TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// The shortest try timeout accepted.
pub const MIN_TRY_TIMEOUT: Duration = Duration::from_secs(1);
/// The longest try timeout accepted.
pub const MAX_TRY_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// How long an answer waits for the config in effect to be published.
pub const PUBLISH_WAIT: Duration = Duration::from_secs(10);
/// How long after a REBOOT answer the reboot is requested, so the answer reaches the
/// client before the daemon stops.
pub const REBOOT_AFTER: Duration = Duration::from_millis(500);
/// Who the API side writes [`ConfigRevision`] as.
const WRITER: &str = "config-api";

/// The API side of the config subsystem.
pub struct ConfigApi {
    engine: Arc<Mutex<Engine>>,
    state: State,
    power: Arc<dyn Power>,
    limits: Limits,
}

impl std::fmt::Debug for ConfigApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigApi")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// The mode a request asks for, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    NoReboot,
    Reboot,
    Staged,
    Try(Duration),
}

impl Mode {
    fn of(request: &pb::ApplyConfigurationRequest) -> Result<Mode, Status> {
        let mode = match pb::ApplyMode::try_from(request.mode) {
            Ok(pb::ApplyMode::NoReboot) => Mode::NoReboot,
            Ok(pb::ApplyMode::Reboot) => Mode::Reboot,
            Ok(pb::ApplyMode::Staged) => Mode::Staged,
            Ok(pb::ApplyMode::Try) => Mode::Try(try_timeout(request.try_timeout)?),
            Ok(pb::ApplyMode::Unspecified) => {
                return Err(Status::invalid_argument(
                    "the apply mode is not set: choose no-reboot, reboot, staged or try",
                ))
            }
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "apply mode {} is not known: choose no-reboot, reboot, staged or try",
                    request.mode
                )))
            }
        };
        if request.try_timeout.is_some() && !matches!(mode, Mode::Try(_)) {
            return Err(Status::invalid_argument(
                "try_timeout is only for apply mode try",
            ));
        }
        Ok(mode)
    }

    fn as_config_mode(self) -> ApplyMode {
        match self {
            Mode::NoReboot => ApplyMode::NoReboot,
            Mode::Reboot => ApplyMode::Reboot,
            Mode::Staged => ApplyMode::Staged,
            Mode::Try(timeout) => ApplyMode::Try {
                timeout: HumanDuration(timeout),
            },
        }
    }
}

fn try_timeout(timeout: Option<prost_types::Duration>) -> Result<Duration, Status> {
    let Some(timeout) = timeout else {
        return Ok(DEFAULT_TRY_TIMEOUT);
    };
    let bad = || {
        Status::invalid_argument(format!(
            "try_timeout must be between {} and {}",
            HumanDuration(MIN_TRY_TIMEOUT),
            HumanDuration(MAX_TRY_TIMEOUT)
        ))
    };
    // A protobuf Duration's nanos are below one second; prost would carry the excess
    // into the seconds, turning a malformed request into some other timeout.
    if timeout.nanos.unsigned_abs() >= 1_000_000_000 {
        return Err(bad());
    }
    let timeout = Duration::try_from(timeout).map_err(|_| bad())?;
    if !(MIN_TRY_TIMEOUT..=MAX_TRY_TIMEOUT).contains(&timeout) {
        return Err(bad());
    }
    Ok(timeout)
}

fn store_failed(error: StoreError) -> Status {
    let error = anyhow::Error::from(error);
    tracing::error!(
        error = format!("{error:#}"),
        "the config store could not be written"
    );
    Status::internal(format!("{error:#}"))
}

/// What the change from `current` to `proposed` needs. `required_mode` sees a
/// `MachineConfig` appear or go as an identity change even when neither side sets
/// one; the identity in effect is then the board's default on both sides, so that is
/// not a change that needs a reboot.
fn decide(current: &Config, proposed: &Config) -> ModeDecision {
    let mut decision = required_mode(current, proposed);
    let identity = |c: &Config| {
        c.machine
            .as_ref()
            .map(|m| m.identity.clone())
            .unwrap_or_default()
    };
    if identity(current) == identity(proposed) {
        decision
            .changes
            .retain(|c| !(c.kind == Kind::Machine && c.what == "identity"));
    }
    decision
}

/// Problems for the changes `mode` cannot carry (for a dry run's answer).
fn mode_problems(current: &Config, proposed: &Config, mode: Mode) -> Vec<pb::ConfigurationProblem> {
    let decision = decide(current, proposed);
    if decision.check(mode.as_config_mode()).is_ok() {
        return Vec::new();
    }
    decision
        .reboot_reasons()
        .map(|change| pb::ConfigurationProblem {
            document: change.kind.as_str().to_owned(),
            path: change.what.clone(),
            line: 0,
            message: format!(
                "this change needs a reboot ({}); mode {} cannot apply it: use reboot or staged",
                change.reason,
                mode.as_config_mode()
            ),
        })
        .collect()
}

impl ConfigApi {
    /// The API side over `engine`; it wakes the publisher through `state` and reboots
    /// through `power`.
    pub fn new(engine: Arc<Mutex<Engine>>, state: State, power: Arc<dyn Power>) -> Self {
        ConfigApi {
            engine,
            state,
            power,
            limits: Limits::DEFAULT,
        }
    }

    /// Wakes the publisher and waits (at most [`PUBLISH_WAIT`]) until its status
    /// reflects `revision`.
    async fn publish(&self, revision: u64) {
        let mut watcher = match self.state.watch::<ConfigStatus>(STORE_ID) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config status");
                None
            }
        };
        if let Err(e) = self
            .state
            .apply_owned(STORE_ID, Some(WRITER), ConfigRevision { revision })
        {
            tracing::error!(error = %e, "cannot wake the config publisher");
            return;
        }
        let Some(watcher) = watcher.as_mut() else {
            return;
        };
        let published = |state: &State| {
            state
                .get::<ConfigStatus>(STORE_ID)
                .is_ok_and(|s| s.spec.revision >= revision)
        };
        let wait = async {
            while !published(&self.state) {
                if watcher.next().await.is_err() {
                    // Fell behind or closed: poll instead.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        if tokio::time::timeout(PUBLISH_WAIT, wait).await.is_err() {
            tracing::warn!(
                revision,
                "the config in effect was stored but not published in time"
            );
        }
    }

    fn dry_run(current: &Config, verdict: Verdict, mode: Mode) -> pb::ApplyConfigurationResponse {
        let (diff, problems) = match verdict {
            Verdict::Valid(config) => (
                skerry_config::diff::unified_diff(current, &config),
                mode_problems(current, &config, mode),
            ),
            Verdict::Invalid { config, problems } => (
                config
                    .map(|c| skerry_config::diff::unified_diff(current, &c))
                    .unwrap_or_default(),
                problems,
            ),
        };
        pb::ApplyConfigurationResponse {
            diff,
            problems,
            unchanged: true,
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl ConfigOps for ConfigApi {
    async fn apply(
        &self,
        request: pb::ApplyConfigurationRequest,
    ) -> Result<pb::ApplyConfigurationResponse, Status> {
        let mode = Mode::of(&request)?;
        let text = problems::bounded_text(&request.configuration, &self.limits)?;
        let verdict = problems::check(text, &self.limits);
        let mut engine = self.engine.lock().await;
        let current = engine.effective().clone();
        if request.dry_run {
            return Ok(Self::dry_run(&current.config, verdict, mode));
        }
        let config = match verdict {
            Verdict::Valid(config) => config,
            Verdict::Invalid { problems, .. } => return Err(problems::invalid(problems)),
        };
        let (target_generation, target) = match (mode, engine.staged()) {
            (Mode::Staged, Some((generation, staged))) => (generation, staged),
            _ => (current.generation, &current.config),
        };
        if *target == config {
            return Ok(pb::ApplyConfigurationResponse {
                unchanged: true,
                generation: target_generation,
                ..Default::default()
            });
        }
        if let Some(trial) = engine.trial() {
            return Err(Status::failed_precondition(format!(
                "generation {} is on try until it is confirmed or reverted; confirm it or wait",
                trial.record.generation
            )));
        }
        decide(&current.config, &config)
            .check(mode.as_config_mode())
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let diff = skerry_config::diff::unified_diff(&current.config, &config);
        let mut response = pb::ApplyConfigurationResponse {
            diff,
            ..Default::default()
        };
        match mode {
            Mode::NoReboot | Mode::Reboot => {
                response.generation = engine
                    .commit(config, mode.as_config_mode())
                    .map_err(store_failed)?;
                response.reboot_pending = mode == Mode::Reboot;
            }
            Mode::Staged => {
                response.generation = engine.stage(config).map_err(store_failed)?;
            }
            Mode::Try(timeout) => {
                let (generation, revert_at) =
                    engine.begin_try(config, timeout).map_err(store_failed)?;
                response.generation = generation;
                response.revert_at = Some(revert_at.into());
            }
        }
        let revision = engine.revision();
        drop(engine);
        self.publish(revision).await;
        if response.reboot_pending {
            let power = self.power.clone();
            tokio::spawn(async move {
                tokio::time::sleep(REBOOT_AFTER).await;
                power.request(PowerRequest::Reboot { tryboot: false });
            });
        }
        Ok(response)
    }

    async fn confirm(&self, request: pb::ConfirmConfigurationRequest) -> Result<(), Status> {
        let mut engine = self.engine.lock().await;
        match engine.confirm(request.generation) {
            Ok(()) => {}
            Err(ConfirmError::Store(e)) => return Err(store_failed(e)),
            Err(e) => return Err(Status::failed_precondition(e.to_string())),
        }
        let revision = engine.revision();
        drop(engine);
        self.publish(revision).await;
        Ok(())
    }
}
