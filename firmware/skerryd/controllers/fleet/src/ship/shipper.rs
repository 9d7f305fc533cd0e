//! The shipper: one task that posts what waits in the console and event outboxes to the
//! sinks the kernel command line names, in order, a batch at a time, removing a batch
//! only once the server took it. A server that is down or refuses the device is retried
//! with backoff (1 s doubling to 60 s) while the outboxes keep the newest lines; a batch
//! the server calls malformed (400, 413) is dropped rather than sent forever.
//!
//! The device id a token post names is the one the fleet controller last wrote
//! ([`DEVICE_ID_FILE`] under the fleet directory), else, once [`ID_WAIT`] passed (or at
//! a flush), the fallback the daemon gives (the kernel's host name). An enrolled device
//! posts with its certificate and names nothing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skerryd_core::EventLog;
use tokio::sync::{broadcast, Notify};

use super::event_line::{event_line, note_line, MAX_EVENT_LINE};
use super::outbox::Outbox;
use super::post::{post, Credential};
use super::sink::{SinkKind, SinkUrl};
use crate::enrollment::DeviceIdentity;

/// Where the fleet controller keeps the device id it checks in as.
pub const DEVICE_ID_FILE: &str = "device-id";
/// How long a first start waits for the controller's device id before posting by token
/// under the fallback id (a token may carry a bounded number of device ids).
pub const ID_WAIT: Duration = Duration::from_secs(15);
/// The longest wait between retries.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Console lines kept while waiting (the server keeps 4096 per device).
pub const CONSOLE_LINES: usize = 4096;
/// Events kept while waiting (the server keeps 1024 per device).
pub const EVENT_LINES: usize = 1024;
/// The longest console line (the server cuts at 2 KiB).
pub const MAX_CONSOLE_LINE: usize = 2 * 1024;

/// The console outbox skerryd's log writer feeds.
pub fn console_outbox() -> Outbox {
    Outbox::new(CONSOLE_LINES, 1 << 20, MAX_CONSOLE_LINE, |n| {
        format!("skerryd: {n} console lines dropped here while the log server was unreachable")
    })
}

fn event_outbox() -> Outbox {
    Outbox::new(EVENT_LINES, 1 << 20, MAX_EVENT_LINE, |n| {
        note_line(
            "ship.dropped",
            &format!("{n} events dropped on the device while the event server was unreachable"),
        )
    })
}

/// The sinks named, and what was wrong with a bad one.
#[derive(Debug, Default)]
pub struct Sinks {
    pub logs: Option<SinkUrl>,
    pub events: Option<SinkUrl>,
    /// One line per bad sink URL (the sink is then not used).
    pub refused: Vec<String>,
}

impl Sinks {
    /// The sinks of a kernel command line.
    pub fn from_cmdline(cmdline: &str) -> Self {
        let mut sinks = Sinks::default();
        for kind in [SinkKind::Logs, SinkKind::Events] {
            let slot = match kind {
                SinkKind::Logs => &mut sinks.logs,
                SinkKind::Events => &mut sinks.events,
            };
            match SinkUrl::from_cmdline(kind, cmdline) {
                Some(Ok(url)) => *slot = Some(url),
                Some(Err(why)) => sinks.refused.push(why),
                None => {}
            }
        }
        sinks
    }

    /// The sinks of the command line saved at `path` (none when it is unreadable).
    pub fn from_file(path: &Path) -> Self {
        let text = skerryd_core::layout::read_small(path).unwrap_or_default();
        Self::from_cmdline(&String::from_utf8_lossy(&text))
    }
}

/// The running shipper.
#[derive(Debug, Clone)]
pub struct Shipper {
    console: Outbox,
    events: Outbox,
    hurry: Arc<Notify>,
    /// The last failure, empty after a success.
    last_error: Arc<Mutex<String>>,
    active: bool,
}

/// Where the shipper finds the device's identity and id.
#[derive(Debug, Clone)]
pub struct Whoami {
    /// `var/skerry/fleet`: the identity directory and the controller's device id.
    pub fleet_dir: PathBuf,
    /// The id used when the controller has named none.
    pub fallback_id: String,
}

impl Whoami {
    fn controller_id(&self) -> Option<String> {
        let bytes = skerryd_core::layout::read_small(&self.fleet_dir.join(DEVICE_ID_FILE)).ok()?;
        let id = device_id(&String::from_utf8_lossy(&bytes));
        (!id.is_empty()).then_some(id)
    }

    /// The credential to post with, `None` while the device id is still awaited.
    fn credential(&self, wait_for_id: bool) -> Option<Credential> {
        let identity = DeviceIdentity::new(&self.fleet_dir.join("identity"));
        if identity.enrolled() {
            return Some(Credential::Certificate(identity));
        }
        match self.controller_id() {
            Some(device_id) => Some(Credential::Token { device_id }),
            None if wait_for_id => None,
            None => Some(Credential::Token {
                device_id: device_id(&self.fallback_id),
            }),
        }
    }
}

/// A device id as the server takes it: `[A-Za-z0-9._-]`, at most 128.
pub fn device_id(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(128)
        .collect()
}

impl Shipper {
    /// Starts shipping `console` (and the events given later) to `sinks`; with no sink
    /// nothing is started and what is pushed is only kept (bounded).
    pub fn start(sinks: Sinks, console: Outbox, who: Whoami) -> Self {
        let shipper = Shipper {
            active: sinks.logs.is_some() || sinks.events.is_some(),
            console,
            events: event_outbox(),
            hurry: Arc::default(),
            last_error: Arc::default(),
        };
        for why in &sinks.refused {
            tracing::warn!("{why}; that sink is not used");
        }
        if shipper.active {
            tokio::spawn(shipper.clone().run(sinks, who));
        }
        shipper
    }

    /// Ships the events of `log`, this start's from the first.
    pub fn follow(&self, log: &EventLog) {
        if !self.active {
            return;
        }
        let Ok((backlog, live)) = log.since(None) else {
            return;
        };
        for event in &backlog {
            self.events.push(&event_line(event));
        }
        tokio::spawn(follow_live(live, self.events.clone()));
    }

    /// Ships one event the daemon makes itself (its failure to start, say).
    pub fn note(&self, kind: &str, detail: &str) {
        if self.active {
            self.events.push(&note_line(kind, detail));
        }
    }

    /// Waits up to `limit` for everything pushed so far to be taken by the server.
    /// Returns whether it was.
    pub async fn flush(&self, limit: Duration) -> bool {
        if !self.active {
            return true;
        }
        let until = Instant::now() + limit;
        loop {
            if self.console.is_empty() && self.events.is_empty() {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            self.hurry.notify_one();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Why the last post failed, empty after a success.
    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn run(self, sinks: Sinks, who: Whoami) {
        let started = Instant::now();
        let mut failures: u32 = 0;
        let mut hurried = false;
        loop {
            let wait_for_id = !hurried && started.elapsed() < ID_WAIT;
            let mut failed = false;
            let mut waiting_for_id = false;
            for (sink, outbox) in [(&sinks.logs, &self.console), (&sinks.events, &self.events)] {
                let Some(sink) = sink else { continue };
                match self.ship(sink, outbox, &who, wait_for_id).await {
                    Shipped::All => {}
                    Shipped::NoId => waiting_for_id = true,
                    Shipped::Failed => failed = true,
                }
            }
            failures = if failed {
                failures.saturating_add(1)
            } else {
                0
            };
            let pause = if failed {
                Duration::from_secs(1u64 << failures.min(6)).min(MAX_RETRY)
            } else if waiting_for_id {
                Duration::from_millis(500)
            } else {
                Duration::from_secs(3600)
            };
            // New lines wake it (after a short gathering pause) unless it is backing off;
            // a flush always does.
            let backing_off = failed;
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.hurry.notified() => hurried = true,
                _ = self.console.pushed(), if !backing_off => {}
                _ = self.events.pushed(), if !backing_off => {}
            }
            if !backing_off && !hurried {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Posts `outbox`'s batches to `sink` until it is empty or a post fails.
    async fn ship(&self, sink: &SinkUrl, outbox: &Outbox, who: &Whoami, wait: bool) -> Shipped {
        while let Some(batch) = outbox.batch() {
            let Some(credential) = who.credential(wait) else {
                return Shipped::NoId;
            };
            match post(sink, &credential, &batch.body).await {
                Ok(()) => {
                    outbox.shipped(&batch);
                    let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
                    if !last.is_empty() {
                        tracing::info!(sink = %sink.path, "the log server takes lines again");
                    }
                    last.clear();
                }
                Err(e) => {
                    let refused = e.refused_body();
                    let text = e.to_string();
                    let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
                    if *last != text {
                        // Said once per new failure: each line said is itself shipped.
                        tracing::warn!(sink = %sink.path, "shipping to the log server: {text}");
                    }
                    *last = text;
                    drop(last);
                    if refused {
                        outbox.shipped(&batch);
                        continue;
                    }
                    return Shipped::Failed;
                }
            }
        }
        Shipped::All
    }
}

enum Shipped {
    All,
    NoId,
    Failed,
}

async fn follow_live(mut live: broadcast::Receiver<skerryd_core::Event>, events: Outbox) {
    loop {
        match live.recv().await {
            Ok(event) => events.push(&event_line(&event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => events.push(&note_line(
                "ship.gap",
                &format!("{missed} events went by faster than the shipper could take them"),
            )),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
