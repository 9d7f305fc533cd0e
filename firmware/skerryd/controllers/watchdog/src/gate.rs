//! `watchdog`: arms the board's watchdog from the config in effect and runs the feed
//! loop; publishes the status resource; the stop hook disarms it on an orderly stop.
//! A crash (the process killed) runs no hook: the device keeps counting and fires.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_runtime::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use skerry_watchdog::gate::{GateConfig, GateError, GateReport, Vitals, WatchdogGate};
use skerry_watchdog::Watchdog;
use skerryd_core::resources::{ActiveWatchdog, SINGLETON};
use skerryd_core::{BoardWatchdog, Context, EventLog, Layout, NewEvent, StopHooks};
use tokio::sync::{oneshot, watch, Mutex};
use tokio::task::JoinHandle;

use crate::driver::{BoardDriver, BoardDriverError};
use crate::options::Tuning;
use crate::status::{WatchdogStatus, STATUS_ID};
use crate::SharedTuning;

/// The gate controller's name.
pub(crate) const NAME: &str = "watchdog";
/// How often the status resource is refreshed while armed.
const STATUS_REFRESH: Duration = Duration::from_secs(1);
/// How long after a failed arm or feed loop the watchdog is armed again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

type GateResult = Result<BoardDriver, GateError<BoardDriverError>>;

struct Running {
    timeout: Duration,
    device: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<GateResult>,
    report: watch::Receiver<GateReport>,
}

/// What the controller and its stop hook share.
struct Shared {
    running: Mutex<Option<Running>>,
    stopped: AtomicBool,
    events: EventLog,
    tuning: SharedTuning,
    /// The last failure announced, so a retry failing the same way is not announced again.
    last_failure: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Stops the feed loop and disarms the watchdog (magic close). Returns the error
    /// that ended the loop or the disarm, if any.
    async fn stop(&self, running: Running, why: &str) -> Option<String> {
        *self.tuning.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let _ = running.stop.send(());
        let outcome = match running.task.await {
            Ok(Ok(driver)) => driver.disarm().map_err(|e| error_chain(&e)),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(e) => Err(format!("the feed loop ended abnormally: {e}")),
        };
        match outcome {
            Ok(()) => {
                self.events.push(
                    NewEvent::new(
                        "watchdog.disarmed",
                        format!("watchdog {} disarmed: {why}", running.device),
                    )
                    .with("device", &running.device),
                );
                None
            }
            Err(message) => {
                let mut last = self.last_failure.lock().unwrap_or_else(|p| p.into_inner());
                if last.as_deref() == Some(message.as_str()) {
                    return Some(message);
                }
                *last = Some(message.clone());
                self.events.push(
                    NewEvent::new(
                        "watchdog.failed",
                        format!("watchdog {}: {message}", running.device),
                    )
                    .with("device", &running.device),
                );
                Some(message)
            }
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

pub(crate) struct GateController {
    board: BoardWatchdog,
    layout: Layout,
    vitals: Vitals,
    deadline: Option<Duration>,
    reconcile_deadline: Option<Duration>,
    shared: Arc<Shared>,
    last_error: Option<String>,
    retry_at: Option<tokio::time::Instant>,
    required: Option<Vec<String>>,
}

impl GateController {
    pub(crate) fn new(
        context: &Context,
        tuning: SharedTuning,
        deadline: Option<Duration>,
        reconcile_deadline: Option<Duration>,
    ) -> Self {
        Self {
            board: context.board.watchdog.clone(),
            layout: context.layout.clone(),
            vitals: context.vitals.clone(),
            deadline,
            reconcile_deadline,
            shared: Arc::new(Shared {
                running: Mutex::new(None),
                stopped: AtomicBool::new(false),
                events: context.events.clone(),
                tuning,
                last_failure: std::sync::Mutex::new(None),
            }),
            last_error: None,
            retry_at: None,
            required: None,
        }
    }

    /// On an orderly stop: stop feeding and disarm with the magic close.
    pub(crate) fn add_stop_hook(&self, hooks: &StopHooks) {
        let shared = Arc::clone(&self.shared);
        hooks.add("watchdog: magic close", async move {
            shared.stopped.store(true, Ordering::SeqCst);
            let running = shared.running.lock().await.take();
            if let Some(running) = running {
                if let Some(error) = shared.stop(running, "the daemon stops").await {
                    tracing::error!(%error, "the watchdog could not be disarmed");
                }
            }
        });
    }

    fn start(&self, mut driver: BoardDriver, timeout: Duration) -> Running {
        let device = driver.describe();
        let tuning = Tuning::new(timeout, self.deadline, self.reconcile_deadline);
        *self.shared.tuning.lock().unwrap_or_else(|p| p.into_inner()) = Some(tuning);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (report_tx, report) = watch::channel(GateReport::default());
        let vitals = self.vitals.clone();
        tokio::spawn(announce(
            report.clone(),
            self.shared.events.clone(),
            device.clone(),
        ));
        let task = tokio::spawn(async move {
            // Give the heartbeat and the probe one timeout to vouch under the new
            // deadlines, so the first feeds are not withheld for stale leases; a machine
            // that stays unhealthy is armed anyway and reset.
            let waiting = tokio::time::Instant::now();
            while vitals.check().is_err() && waiting.elapsed() < timeout {
                tokio::select! {
                    _ = &mut stopped => return Ok(driver),
                    () = tokio::time::sleep(tuning.interval) => {}
                }
            }
            if let Err(source) = driver.arm(timeout) {
                return Err(GateError::Arm { timeout, source });
            }
            let gate =
                WatchdogGate::new(driver, vitals, GateConfig::new(timeout)).report_to(report_tx);
            gate.run(async move {
                let _ = stopped.await;
            })
            .await
        });
        Running {
            timeout,
            device,
            stop,
            task,
            report,
        }
    }

    fn status(&self, running: Option<&Running>) -> WatchdogStatus {
        let device = BoardDriver::for_board(&self.board, &self.layout)
            .map_or_else(|| "none".to_owned(), |d| d.describe());
        let report = running
            .map(|r| r.report.borrow().clone())
            .unwrap_or_default();
        let now = tokio::time::Instant::now().into_std();
        let last_feed = report
            .last_feed
            .map(|at| SystemTime::now() - now.saturating_duration_since(at));
        WatchdogStatus {
            armed: report.armed.is_some(),
            device,
            timeout_ms: report
                .armed
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            last_feed,
            feeds: report.feeds,
            withheld: report
                .withheld
                .map(|u| u.problems.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            error: self.last_error.clone(),
        }
    }
}

/// Turns the feed loop's reports into events: armed, starving (with the reason), fed
/// again.
async fn announce(mut report: watch::Receiver<GateReport>, events: EventLog, device: String) {
    let mut armed = false;
    let mut starving = false;
    while report.changed().await.is_ok() {
        let now = report.borrow_and_update().clone();
        if let (false, Some(timeout)) = (armed, now.armed) {
            armed = true;
            events.push(
                NewEvent::new(
                    "watchdog.armed",
                    format!("watchdog {device} armed with a {timeout:?} timeout"),
                )
                .with("device", &device)
                .with("timeout_ms", timeout.as_millis()),
            );
        }
        match (&now.withheld, starving) {
            (Some(unhealthy), false) => {
                starving = true;
                events.push(
                    NewEvent::new("watchdog.starving", unhealthy.to_string())
                        .with("device", &device),
                );
            }
            (None, true) if now.feeds > 0 => {
                starving = false;
                events.push(
                    NewEvent::new(
                        "watchdog.fed",
                        "machine healthy again; feeding the watchdog",
                    )
                    .with("device", &device),
                );
            }
            _ => {}
        }
    }
}

impl Controller for GateController {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<ActiveWatchdog>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<WatchdogStatus>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let config = ctx.get::<ActiveWatchdog>(SINGLETON)?.map(|r| r.spec.0);
        let required = config.as_ref().map(|c| c.gate.clone()).unwrap_or_default();
        if self.required.as_ref() != Some(&required) {
            self.vitals.require_health_checks(&required)?;
            self.required = Some(required);
        }
        // On a device PID 1 armed the watchdog at boot: with no watchdog in the config
        // it is kept fed (gated) with the timeout it was armed with, never left to fire.
        let wanted = config
            .map(|c| c.timeout.0)
            .or_else(|| self.board.armed_at_boot());
        let shared = Arc::clone(&self.shared);
        let mut running = shared.running.lock().await;
        let finished = running.as_ref().is_some_and(|r| r.task.is_finished());
        let changed = running.as_ref().map(|r| r.timeout) != wanted;
        if finished || changed {
            if let Some(old) = running.take() {
                let why = if finished {
                    "its feed loop ended"
                } else {
                    "the config changed"
                };
                self.last_error = shared.stop(old, why).await;
                if self.last_error.is_some() {
                    self.retry_at = Some(tokio::time::Instant::now() + RETRY_AFTER);
                }
            }
        }
        let stopped = shared.stopped.load(Ordering::SeqCst);
        let waiting = self.retry_at.filter(|at| *at > tokio::time::Instant::now());
        if let (None, Some(timeout), false, None) = (running.as_ref(), wanted, stopped, waiting) {
            self.retry_at = None;
            match BoardDriver::for_board(&self.board, &self.layout) {
                Some(driver) => {
                    *running = Some(self.start(driver, timeout));
                }
                None => {
                    self.last_error =
                        Some("the config asks for a watchdog but board.json names none".to_owned());
                }
            }
        }
        if running
            .as_ref()
            .is_some_and(|r| r.report.borrow().feeds > 0)
        {
            self.last_error = None;
            *shared
                .last_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = None;
        }
        let status = self.status(running.as_ref());
        let armed = running.is_some();
        drop(running);
        ctx.apply(STATUS_ID, status)?;
        Ok(match (armed, waiting) {
            (true, _) => Requeue::After(STATUS_REFRESH),
            (false, Some(at)) => {
                Requeue::After(at.saturating_duration_since(tokio::time::Instant::now()))
            }
            (false, None) => Requeue::OnChange,
        })
    }
}
