//! The runner takes its time from tokio: on paused time, a real crashing process is
//! restarted after exactly its backoff delays (seconds to a minute of virtual time,
//! no real waiting), capped, with the delays in the events.

mod common;

use std::time::Duration;

use skerry_supervisor::{BackoffSpec, ServiceState, Supervisor, SupervisorOptions};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn backoff_delays_pass_on_virtual_time() {
    let mut spec = common::quick("crashy", &["sh", "-c", "exit 1"]);
    spec.backoff = BackoffSpec {
        base_ms: 10_000,
        factor: 2,
        cap_ms: 60_000,
        reset_after_ms: 600_000,
    };
    let (supervisor, mut events) =
        Supervisor::start(vec![spec], SupervisorOptions::default()).unwrap();
    let mut backing_off_at = None;
    let mut waits = Vec::new();
    let mut announced = Vec::new();
    let read = async {
        while waits.len() < 5 {
            let event = events.recv().await.expect("events");
            match event.state {
                ServiceState::BackingOff { delay_ms, .. } => {
                    announced.push(delay_ms);
                    backing_off_at = Some(Instant::now());
                }
                ServiceState::Starting => {
                    if let Some(at) = backing_off_at.take() {
                        waits.push(at.elapsed());
                    }
                }
                _ => {}
            }
        }
    };
    // Real time bound: virtual time would let any timeout pass at once.
    let real = std::time::Instant::now();
    read.await;
    assert_eq!(announced, [10_000, 20_000, 40_000, 60_000, 60_000]);
    let secs = [10, 20, 40, 60, 60].map(Duration::from_secs);
    for (waited, want) in waits.iter().zip(secs) {
        // The clock jumps straight to the timer: the wait is the delay, to the ms.
        assert!(
            *waited >= want && *waited < want + Duration::from_millis(5),
            "{waited:?} for {want:?}"
        );
    }
    println!(
        "3 min 10 s of backoff took {:?} of real time",
        real.elapsed()
    );
    supervisor.shutdown().await;
}
