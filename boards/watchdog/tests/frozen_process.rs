//! A real frozen process: a child runs the gate on real time against a watchdog whose
//! feeds travel down a pipe to a fake that lives here, in the parent. The parent stops the
//! child with SIGSTOP and the fake fires within one timeout (+10%) of the freeze.
//!
//! The child is this same test binary running this same test with
//! `SKERRY_WATCHDOG_FEEDER_CHILD=1`, which makes it play the feeder instead of the parent.

use std::io::{self, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use skerry_watchdog::clock::MonotonicClock;
use skerry_watchdog::fake::FakeWatchdog;
use skerry_watchdog::gate::{GateConfig, Vitals, WatchdogGate};
use skerry_watchdog::{Error, ErrorKind, Watchdog};

const TIMEOUT: Duration = Duration::from_secs(3);
const CHILD_ENV: &str = "SKERRY_WATCHDOG_FEEDER_CHILD";
const ARM: u8 = b'A';
const FEED: u8 = 0x06; // never part of libtest's text output

/// The child's watchdog: each call becomes one byte on stdout.
#[derive(Debug)]
struct PipeWatchdog {
    timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
#[error("writing to the parent's pipe")]
struct PipeError(#[source] io::Error);

impl Error for PipeError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Device
    }
}

fn send(byte: u8) -> Result<(), PipeError> {
    let mut out = io::stdout().lock();
    out.write_all(&[byte])
        .and_then(|()| out.flush())
        .map_err(PipeError)
}

impl Watchdog for PipeWatchdog {
    type Error = PipeError;
    fn arm(&mut self, timeout: Duration) -> Result<Duration, PipeError> {
        send(ARM)?;
        self.timeout = Some(timeout);
        Ok(timeout)
    }
    fn feed(&mut self) -> Result<(), PipeError> {
        send(FEED)
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn disarm(self) -> Result<(), PipeError> {
        Ok(())
    }
}

/// The child half: a healthy machine (controller, state writes, health check) and the
/// gate, on real time, until the parent kills it.
async fn child_feeder() {
    let vitals = Vitals::new(skerry_watchdog::clock::TokioClock);
    let deadline = TIMEOUT / 2;
    let controller = vitals.controller("network", deadline).unwrap();
    let store = vitals.state_writes("state", deadline).unwrap();
    let check = vitals.health_check("api", deadline).unwrap();
    tokio::spawn(async move {
        loop {
            controller.renew();
            store.renew();
            check.pass();
            tokio::time::sleep(deadline / 5).await;
        }
    });
    let gate = WatchdogGate::new(
        PipeWatchdog { timeout: None },
        vitals,
        GateConfig::new(TIMEOUT),
    );
    gate.run(std::future::pending()).await.unwrap();
}

fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(") ")?.1.chars().next()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_sigstopped_feeder_makes_the_watchdog_fire() {
    if std::env::var(CHILD_ENV).as_deref() == Ok("1") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(child_feeder());
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sigstopped_feeder_makes_the_watchdog_fire",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let mut pipe = child.stdout.take().unwrap();

    let (mut watchdog, monitor) = FakeWatchdog::new(MonotonicClock);
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            for &byte in &buf[..n] {
                match byte {
                    ARM => watchdog.arm(TIMEOUT).map(drop).unwrap(),
                    FEED if watchdog.feed().is_err() => return,
                    FEED => {}
                    _ => {}
                }
            }
        }
    });

    wait_for("the child's first feeds", Duration::from_secs(60), || {
        monitor.feed_count() >= 3
    });
    assert_eq!(
        monitor.fired_at(),
        None,
        "fired while the child was healthy"
    );

    let stopping_at = Instant::now();
    kill_process(pid, Signal::STOP).unwrap();
    wait_for("the child to stop", Duration::from_secs(10), || {
        process_state(child.id()) == Some('T')
    });
    // Let the reader take in whatever the child wrote before it stopped.
    std::thread::sleep(Duration::from_millis(100));
    let frozen_at = Instant::now();
    let feeds_at_freeze = monitor.feed_count();

    wait_for("the watchdog to fire", TIMEOUT * 3, || {
        monitor.fired_at().is_some()
    });
    kill_process(pid, Signal::KILL).unwrap();
    child.wait().unwrap();
    reader.join().unwrap();

    let fired = monitor.fired_at().unwrap();
    assert_eq!(
        monitor.feed_count(),
        feeds_at_freeze,
        "a feed arrived from the stopped child"
    );
    assert!(monitor.last_feed().unwrap() <= frozen_at);
    assert!(fired > stopping_at, "fired before the child was stopped");
    let after = fired.saturating_duration_since(frozen_at);
    assert!(
        after <= TIMEOUT.mul_f64(1.1),
        "fired {after:?} after the freeze; timeout {TIMEOUT:?}"
    );
    println!("fired {after:?} after SIGSTOP (timeout {TIMEOUT:?}, {feeds_at_freeze} feeds before)");
}
