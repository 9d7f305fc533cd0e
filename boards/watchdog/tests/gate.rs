//! The gate against the fake watchdog on tokio's paused clock: a blocked controller, a
//! stalled write, a failing check and a frozen process each make the watchdog fire within
//! one timeout (+10%) of the moment the machine stopped being healthy; a healthy machine
//! is never reset.

use std::future::pending;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skerry_watchdog::clock::TokioClock;
use skerry_watchdog::fake::{FakeWatchdog, FakeWatchdogMonitor};
use skerry_watchdog::gate::{GateConfig, Vitals, WatchdogGate};
use skerry_watchdog::Watchdog;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::sleep;

const TIMEOUT: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(5);
const PERIOD: Duration = Duration::from_secs(1);
const WRITE_TIME: Duration = Duration::from_millis(30);

/// A switch a test flips to make one part of the machine hang.
#[derive(Clone, Default)]
struct Hang(Arc<AtomicBool>);

impl Hang {
    fn now(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    async fn here_if_hung(&self) {
        if self.0.load(Ordering::SeqCst) {
            pending::<()>().await;
        }
    }
}

/// When a part last vouched for itself.
#[derive(Clone)]
struct LastRenewal(Arc<Mutex<Instant>>);

impl LastRenewal {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(now())))
    }
    fn mark(&self) {
        *self.0.lock().unwrap() = now();
    }
    fn get(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A simulated daemon: a controller that reconciles every second, a state store that
/// writes (and syncs) every second, a health check every second, and the gate.
struct Machine {
    monitor: FakeWatchdogMonitor<TokioClock>,
    controller_hang: Hang,
    write_hang: Hang,
    check_fails: Arc<AtomicBool>,
    reconciled: LastRenewal,
    written: LastRenewal,
    checked: LastRenewal,
    tasks: Vec<JoinHandle<()>>,
    gate: JoinHandle<Result<FakeWatchdog<TokioClock>, String>>,
    shutdown: Option<oneshot::Sender<()>>,
}

fn boot() -> Machine {
    let vitals = Vitals::new(TokioClock);
    let (watchdog, monitor) = FakeWatchdog::new(TokioClock);
    let (controller_hang, write_hang) = (Hang::default(), Hang::default());
    let check_fails = Arc::new(AtomicBool::new(false));
    let (reconciled, written, checked) =
        (LastRenewal::new(), LastRenewal::new(), LastRenewal::new());
    let mut tasks = Vec::new();

    let lease = vitals.controller("network", DEADLINE).unwrap();
    let (hang, mark) = (controller_hang.clone(), reconciled.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            hang.here_if_hung().await; // a reconcile that never returns
            lease.renew();
            mark.mark();
            sleep(PERIOD).await;
        }
    }));

    let lease = vitals.state_writes("state", DEADLINE).unwrap();
    let (hang, mark) = (write_hang.clone(), written.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            sleep(WRITE_TIME).await;
            hang.here_if_hung().await; // an fsync that never completes
            lease.renew();
            mark.mark();
            sleep(PERIOD).await;
        }
    }));

    let report = vitals.health_check("api", DEADLINE).unwrap();
    let (fails, mark) = (Arc::clone(&check_fails), checked.clone());
    tasks.push(tokio::spawn(async move {
        loop {
            if fails.load(Ordering::SeqCst) {
                report.fail("GET /healthz: connection refused");
            } else {
                report.pass();
                mark.mark();
            }
            sleep(PERIOD).await;
        }
    }));

    let (shutdown, stop) = oneshot::channel::<()>();
    let gate = WatchdogGate::new(watchdog, vitals, GateConfig::new(TIMEOUT));
    let gate = tokio::spawn(async move {
        gate.run(async {
            let _ = stop.await;
        })
        .await
        .map_err(|e| e.to_string())
    });
    Machine {
        monitor,
        controller_hang,
        write_hang,
        check_fails,
        reconciled,
        written,
        checked,
        tasks,
        gate,
        shutdown: Some(shutdown),
    }
}

/// The watchdog fired, after `unhealthy_since` and within one timeout + 10% of it, and
/// no feed came once the machine was unhealthy.
fn assert_fired_in_time(machine: &Machine, unhealthy_since: Instant) {
    let fired = machine
        .monitor
        .fired_at()
        .expect("the watchdog did not fire");
    let last_feed = machine
        .monitor
        .last_feed()
        .expect("the watchdog was never fed");
    assert!(
        last_feed <= unhealthy_since,
        "fed {:?} after the machine became unhealthy",
        last_feed - unhealthy_since
    );
    assert!(
        fired > unhealthy_since,
        "fired before the machine became unhealthy"
    );
    let after = fired - unhealthy_since;
    assert!(
        after <= TIMEOUT.mul_f64(1.1),
        "fired {after:?} after the machine became unhealthy; timeout is {TIMEOUT:?}"
    );
    println!("fired {after:?} after the machine became unhealthy (timeout {TIMEOUT:?})");
}

async fn run_healthy_for(machine: &Machine, how_long: Duration) {
    sleep(how_long).await;
    assert_eq!(machine.monitor.fired_at(), None, "fired while healthy");
}

#[tokio::test(start_paused = true)]
async fn a_blocked_controller_makes_it_fire() {
    let machine = boot();
    run_healthy_for(&machine, Duration::from_secs(60)).await;
    machine.controller_hang.now();
    sleep(Duration::from_secs(60)).await;
    assert_fired_in_time(&machine, machine.reconciled.get() + DEADLINE);
    // The other parts kept going: only the controller's lease stopped the feeds.
    assert!(machine.written.get() > machine.reconciled.get() + DEADLINE + TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_fsync_makes_it_fire() {
    let machine = boot();
    run_healthy_for(&machine, Duration::from_secs(60)).await;
    machine.write_hang.now();
    sleep(Duration::from_secs(60)).await;
    assert_fired_in_time(&machine, machine.written.get() + DEADLINE);
    assert!(machine.reconciled.get() > machine.written.get() + DEADLINE + TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_failing_health_check_makes_it_fire() {
    let machine = boot();
    run_healthy_for(&machine, Duration::from_secs(60)).await;
    machine.check_fails.store(true, Ordering::SeqCst);
    // The first failing report comes within one period of the last pass.
    sleep(Duration::from_secs(60)).await;
    assert_fired_in_time(&machine, machine.checked.get() + PERIOD);
}

#[tokio::test(start_paused = true)]
async fn a_frozen_process_makes_it_fire() {
    let machine = boot();
    run_healthy_for(&machine, Duration::from_secs(60)).await;
    // Everything stops at once, the feed loop included, as under SIGSTOP.
    let frozen_at = now();
    machine.gate.abort();
    for task in &machine.tasks {
        task.abort();
    }
    sleep(Duration::from_secs(60)).await;
    assert_fired_in_time(&machine, frozen_at);
}

#[tokio::test(start_paused = true)]
async fn a_healthy_machine_is_never_reset() {
    let mut machine = boot();
    let long_run = Duration::from_secs(6 * 3600);
    run_healthy_for(&machine, long_run).await;
    let feeds = machine.monitor.feeds();
    let longest_gap = feeds.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert_eq!(longest_gap, TIMEOUT / 4, "fed every quarter timeout");
    assert!(machine.monitor.feed_count() >= 6 * 3600 / 10 * 4 - 1);
    // An orderly stop hands the watchdog back; disarming it is the magic close.
    machine.shutdown.take().unwrap().send(()).unwrap();
    let watchdog = machine.gate.await.unwrap().unwrap();
    assert!(watchdog.timeout().is_some());
    watchdog.disarm().unwrap();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(machine.monitor.fired_at(), None);
    assert!(machine.monitor.closed_at().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_gate_with_nothing_to_watch_never_feeds() {
    let (watchdog, monitor) = FakeWatchdog::new(TokioClock);
    let gate = WatchdogGate::new(watchdog, Vitals::new(TokioClock), GateConfig::new(TIMEOUT));
    let armed_at = now();
    let gate = tokio::spawn(gate.run(pending()));
    sleep(Duration::from_secs(60)).await;
    assert_eq!(monitor.feed_count(), 0);
    assert_eq!(monitor.fired_at(), Some(armed_at + TIMEOUT));
    gate.abort();
}

#[tokio::test(start_paused = true)]
async fn the_gate_reports_its_feeds_and_why_it_withholds_them() {
    let vitals = Vitals::new(TokioClock);
    let controller = vitals.controller("network", DEADLINE).unwrap();
    let _store = vitals
        .state_writes("state", Duration::from_secs(3600))
        .unwrap();
    let (watchdog, monitor) = FakeWatchdog::new(TokioClock);
    let (report_tx, report) = tokio::sync::watch::channel(Default::default());
    let (stop_tx, stop) = oneshot::channel::<()>();
    let gate = WatchdogGate::new(watchdog, vitals, GateConfig::new(TIMEOUT)).report_to(report_tx);
    let task = tokio::spawn(gate.run(async move {
        let _ = stop.await;
    }));
    sleep(Duration::from_secs(3)).await;
    let fed = report.borrow().clone();
    assert_eq!(fed.armed, Some(TIMEOUT));
    assert_eq!(fed.feeds, monitor.feed_count());
    assert!(fed.feeds >= 2, "{fed:?}");
    assert_eq!(fed.last_feed, monitor.last_feed());
    assert_eq!(fed.withheld, None);

    sleep(DEADLINE + PERIOD).await;
    let starving = report.borrow().clone();
    let unhealthy = starving.withheld.expect("withheld once the lease expired");
    assert!(unhealthy.to_string().contains("\"network\""), "{unhealthy}");
    assert_eq!(starving.feeds, monitor.feed_count());

    controller.renew();
    sleep(TIMEOUT / 4 + PERIOD).await;
    assert_eq!(report.borrow().withheld, None);
    stop_tx.send(()).unwrap();
    task.await.unwrap().unwrap().disarm().unwrap();
}
