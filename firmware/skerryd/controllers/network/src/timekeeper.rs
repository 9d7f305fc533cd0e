//! The time controller: keeps the persisted floor (loaded at start, raised every
//! `floor.saveInterval` and at stop, never lowered), steps a clock that is behind the
//! floor (a board without an RTC boots in 1970), polls the SNTP servers every
//! `sntp.pollInterval`, and publishes the trusted time as [`TimeStatus`].

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skerry_config::kinds::{FloorSource, TimeConfig};
use skerry_runtime::{
    Controller, ControllerError, Input, Output, ReconcileContext, Requeue, ResourceSpec,
};
use skerryd_core::resources::{ActiveTime, SINGLETON};
use skerryd_core::{EventLog, NewEvent};

use crate::clock::SystemClock;
use crate::floor::{release_floor, FloorStore};
use crate::resources::{TimeStatus, TIME_STATUS_ID};
use crate::sntp;

/// The controller's name.
pub const NAME: &str = "time.keeper";
/// The most SNTP servers asked per poll.
pub const MAX_SERVERS: usize = 4;
/// How soon a poll that got no answer is retried (at most the poll interval).
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// The shortest poll and save intervals honoured.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// The longest a reconcile waits without an input change.
pub const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Offsets smaller than this are left alone (the clock is not stepped).
pub const STEP_THRESHOLD: Duration = Duration::from_millis(100);

/// SNTP timeouts, tunable for tests.
#[derive(Debug, Clone, Copy)]
pub struct SntpTuning {
    /// How long one request waits.
    pub timeout: Duration,
    /// Requests per server per poll.
    pub attempts: u32,
}

impl Default for SntpTuning {
    fn default() -> Self {
        SntpTuning {
            timeout: sntp::ATTEMPT_TIMEOUT,
            attempts: sntp::ATTEMPTS,
        }
    }
}

#[derive(Debug)]
struct LastSync {
    offset_nanos: i64,
    delay: Duration,
    server: String,
    at: SystemTime,
}

/// Keeps the time.
#[derive(Debug)]
pub struct TimeKeeper {
    clock: Arc<dyn SystemClock>,
    store: Arc<Mutex<FloorStore>>,
    events: EventLog,
    tuning: SntpTuning,
    load_error: Option<String>,
    config: Option<TimeConfig>,
    next_poll: Option<Instant>,
    next_save: Option<Instant>,
    last: Option<LastSync>,
    last_error: String,
    floor_applied: bool,
    /// Servers that answered with a DENY or RSTR kiss-o'-death: not asked again until
    /// the config changes (RFC 5905 section 7.4).
    denied: std::collections::BTreeSet<String>,
    persisting: crate::Persisting,
}

fn shifted(t: SystemTime, nanos: i64) -> SystemTime {
    let by = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        t + by
    } else {
        t.checked_sub(by).unwrap_or(UNIX_EPOCH)
    }
}

impl TimeKeeper {
    /// A keeper over `clock` and the floor in `store` (shared with the stop hook);
    /// `load_error` is why the floor file could not be read at start, if it could not.
    pub fn new(
        clock: Arc<dyn SystemClock>,
        store: Arc<Mutex<FloorStore>>,
        load_error: Option<String>,
        events: EventLog,
        tuning: SntpTuning,
    ) -> Self {
        TimeKeeper {
            clock,
            store,
            events,
            tuning,
            load_error,
            config: None,
            next_poll: None,
            next_save: None,
            last: None,
            last_error: String::new(),
            floor_applied: false,
            denied: Default::default(),
            persisting: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Whether the config in effect persists the floor (the stop hook reads it).
    pub fn persisting(&self) -> crate::Persisting {
        self.persisting.clone()
    }

    fn floor(&self, source: FloorSource) -> SystemTime {
        match source {
            FloorSource::Persisted => self
                .store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .floor()
                .max(release_floor()),
            FloorSource::BuildTime => release_floor(),
            FloorSource::Off => UNIX_EPOCH,
        }
    }

    fn step(&self, to: SystemTime, why: &str) {
        match self.clock.set(to) {
            Ok(()) => {
                tracing::info!(to = ?to, why, "stepped the clock");
                self.events.push(
                    NewEvent::new("time.stepped", format!("stepped the clock: {why}"))
                        .about(TimeStatus::NAMESPACE, TimeStatus::TYPE, TIME_STATUS_ID)
                        .with(
                            "to_unix",
                            to.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                        ),
                );
            }
            Err(e) => tracing::warn!(error = %e, "could not step the clock"),
        }
    }

    async fn poll(&mut self, config: &TimeConfig, floor: SystemTime) -> bool {
        let mut errors = Vec::new();
        for server in config.sntp.servers.iter().take(MAX_SERVERS) {
            if self.denied.contains(server) {
                errors.push(format!(
                    "{server} refused us (kiss-o'-death); not asked again"
                ));
                continue;
            }
            match sntp::query(
                server,
                &*self.clock,
                self.tuning.timeout,
                self.tuning.attempts,
            )
            .await
            {
                Ok(sample) => {
                    let now = self.clock.now();
                    let server_now = shifted(now, sample.offset_nanos);
                    if server_now < floor {
                        errors.push(format!(
                            "{server} says the time is before the floor; ignored"
                        ));
                        continue;
                    }
                    if sample.offset_nanos.unsigned_abs() >= STEP_THRESHOLD.as_nanos() as u64 {
                        self.step(server_now, &format!("SNTP offset from {server}"));
                    }
                    if self.last.is_none() {
                        self.events.push(
                            NewEvent::new("time.synced", format!("synchronized with {server}"))
                                .about(TimeStatus::NAMESPACE, TimeStatus::TYPE, TIME_STATUS_ID)
                                .with("server", server)
                                .with("offset_nanos", sample.offset_nanos),
                        );
                    }
                    self.last = Some(LastSync {
                        offset_nanos: sample.offset_nanos,
                        delay: sample.delay,
                        server: server.clone(),
                        at: self.clock.now(),
                    });
                    self.last_error.clear();
                    return true;
                }
                Err(e) => {
                    if let sntp::SntpError::KissOfDeath { code } = &e {
                        if code == "DENY" || code == "RSTR" {
                            self.denied.insert(server.clone());
                        }
                    }
                    errors.push(format!("{server}: {e}"));
                }
            }
        }
        self.last_error = errors.join("; ");
        tracing::warn!(error = %self.last_error, "no SNTP server gave the time");
        false
    }
}

impl Controller for TimeKeeper {
    fn name(&self) -> &str {
        NAME
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::weak::<ActiveTime>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<TimeStatus>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        let config = ctx
            .get::<ActiveTime>(SINGLETON)?
            .map(|r| r.spec.0)
            .unwrap_or_default();
        if self.config.as_ref() != Some(&config) {
            self.next_poll = None;
            self.denied.clear();
            self.next_save = None;
            self.config = Some(config.clone());
        }
        let source = config.floor.source;
        self.persisting.store(
            source == FloorSource::Persisted,
            std::sync::atomic::Ordering::SeqCst,
        );
        let floor = self.floor(source);
        if !self.floor_applied && source != FloorSource::Off {
            self.floor_applied = true;
            if self.clock.now() < floor {
                self.step(floor, "the clock is behind the time floor");
            }
        }
        let started = Instant::now();
        let poll_every = config.sntp.poll_interval.0.max(MIN_INTERVAL);
        let mut synced_now = false;
        if !config.sntp.servers.is_empty() && self.next_poll.is_none_or(|at| at <= started) {
            synced_now = self.poll(&config, floor).await;
            let wait = if synced_now {
                poll_every
            } else {
                RETRY_AFTER.min(poll_every)
            };
            self.next_poll = Some(Instant::now() + wait);
        }
        let trusted_now = self.clock.now().max(floor);
        let mut save_error = None;
        if source == FloorSource::Persisted {
            let save_every = config.floor.save_interval.0.max(MIN_INTERVAL);
            if synced_now || self.next_save.is_none_or(|at| at <= Instant::now()) {
                let saved = self
                    .store
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .raise(trusted_now);
                if let Err(e) = saved {
                    save_error = Some(e.to_string());
                }
                self.next_save = Some(Instant::now() + save_every);
            }
        } else {
            self.next_save = None;
        }
        let last_error = [
            self.load_error.clone(),
            save_error,
            Some(self.last_error.clone()),
        ]
        .into_iter()
        .flatten()
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
        let status = TimeStatus {
            trusted_now,
            floor: self.floor(source),
            synced: self.last.is_some(),
            last_offset_nanos: self.last.as_ref().map(|l| l.offset_nanos),
            last_delay: self.last.as_ref().map(|l| l.delay),
            last_server: self.last.as_ref().map(|l| l.server.clone()),
            last_sync: self.last.as_ref().map(|l| l.at),
            last_error,
        };
        ctx.apply(TIME_STATUS_ID, status)?;
        let now = Instant::now();
        let sleep = [self.next_poll, self.next_save]
            .into_iter()
            .flatten()
            .map(|at| at.saturating_duration_since(now))
            .min()
            .unwrap_or(MAX_SLEEP)
            .clamp(MIN_INTERVAL, MAX_SLEEP);
        Ok(Requeue::After(sleep))
    }
}
