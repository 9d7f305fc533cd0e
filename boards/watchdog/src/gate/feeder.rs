//! The feed loop: arm the watchdog, then before every feed look at every vital.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::vitals::{Unhealthy, Vitals};
use crate::Watchdog;

/// How the gate runs the watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateConfig {
    /// The timeout asked of the watchdog.
    pub timeout: Duration,
    /// How many feed attempts fit in one timeout (the device's actual timeout): with 4, a
    /// healthy machine feeds every quarter timeout and survives three missed wake-ups.
    pub feeds_per_timeout: u32,
}

impl GateConfig {
    /// `timeout`, fed four times per timeout.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            feeds_per_timeout: 4,
        }
    }
}

/// Why the feed loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum GateError<E: crate::Error> {
    /// The watchdog refused the timeout.
    #[error("arming the watchdog with a {timeout:?} timeout")]
    Arm {
        /// Timeout asked for.
        timeout: Duration,
        /// The driver's error.
        source: E,
    },
    /// A feed failed (after it fired, the board is resetting).
    #[error("feeding the watchdog")]
    Feed {
        /// The driver's error.
        source: E,
    },
    /// `feeds_per_timeout` of zero would never feed.
    #[error("feeds_per_timeout is 0: the gate must try to feed at least once per timeout")]
    NoFeeds,
}

/// What the feed loop did last, for a status page: published after every wake-up to
/// the channel given to [`WatchdogGate::report_to`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateReport {
    /// The timeout the device counts, once armed.
    pub armed: Option<Duration>,
    /// When it last fed (the gate's clock: tokio's).
    pub last_feed: Option<Instant>,
    /// Feeds so far.
    pub feeds: u64,
    /// Why the last wake-up did not feed; `None` when it fed.
    pub withheld: Option<Unhealthy>,
}

/// Owns the watchdog and feeds it only while [`Vitals::check`] passes.
#[derive(Debug)]
pub struct WatchdogGate<W> {
    watchdog: W,
    vitals: Vitals,
    config: GateConfig,
    report: Option<watch::Sender<GateReport>>,
}

impl<W: Watchdog> WatchdogGate<W> {
    /// A gate over `watchdog` reading `vitals`.
    pub fn new(watchdog: W, vitals: Vitals, config: GateConfig) -> Self {
        Self {
            watchdog,
            vitals,
            config,
            report: None,
        }
    }

    /// Publishes a [`GateReport`] to `report` after arming and after every wake-up.
    pub fn report_to(mut self, report: watch::Sender<GateReport>) -> Self {
        self.report = Some(report);
        self
    }

    fn publish(&self, update: impl FnOnce(&mut GateReport)) {
        if let Some(report) = &self.report {
            report.send_modify(update);
        }
    }

    /// Arms the watchdog and feeds it while healthy until `shutdown` completes, then
    /// hands the still-armed watchdog back: the caller disarms it for an orderly stop or
    /// keeps it armed across a reboot.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<W, GateError<W::Error>> {
        if self.config.feeds_per_timeout == 0 {
            return Err(GateError::NoFeeds);
        }
        let timeout = self.config.timeout;
        let actual = self
            .watchdog
            .arm(timeout)
            .map_err(|source| GateError::Arm { timeout, source })?;
        let period = actual / self.config.feeds_per_timeout;
        tracing::info!(?actual, ?period, "watchdog armed");
        self.publish(|r| r.armed = Some(actual));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut withheld = false;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(self.watchdog),
                _ = ticks.tick() => {}
            }
            match self.vitals.check() {
                Ok(()) => {
                    self.watchdog
                        .feed()
                        .map_err(|source| GateError::Feed { source })?;
                    let now = tokio::time::Instant::now().into_std();
                    self.publish(|r| {
                        r.last_feed = Some(now);
                        r.feeds += 1;
                        r.withheld = None;
                    });
                    if withheld {
                        tracing::info!("machine healthy again; feeding the watchdog");
                        withheld = false;
                    }
                }
                Err(unhealthy) => {
                    self.publish(|r| r.withheld = Some(unhealthy.clone()));
                    if !withheld {
                        tracing::warn!(%unhealthy, "not feeding the watchdog");
                        withheld = true;
                    }
                }
            }
        }
    }
}
