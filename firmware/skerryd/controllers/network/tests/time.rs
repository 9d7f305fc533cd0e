//! The time floor through the controller: a clock in 1970 is stepped to the floor, the
//! floor is raised and persisted, restored after a restart, and never lowered.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{context, from_json, put, start, stop, wait_for};
use skerryd_core::resources::{ActiveTime, SINGLETON};
use skerryd_network::clock::{RecordingClock, SystemClock as _};
use skerryd_network::floor::{release_floor, FloorStore};
use skerryd_network::resources::{TimeStatus, TIME_STATUS_ID};
use skerryd_network::Backends;

fn time_config(source: &str) -> ActiveTime {
    ActiveTime(from_json(serde_json::json!({
        "floor": {"source": source, "saveInterval": "1s"}
    })))
}

fn backends(clock: &RecordingClock) -> Backends {
    Backends::recording(Arc::new(clock.clone()))
}

fn saved_floor(context: &skerryd_core::Context) -> SystemTime {
    FloorStore::load(&context.layout.time(), 1).0.floor()
}

fn status(context: &skerryd_core::Context) -> Option<TimeStatus> {
    context
        .state
        .get::<TimeStatus>(TIME_STATUS_ID)
        .ok()
        .map(|r| r.spec)
}

#[tokio::test]
async fn the_floor_is_persisted_raised_restored_and_never_lowered() {
    let root = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);

    // First boot: the board starts in 1970.
    let context1 = context(root.path());
    put(&context1.state, SINGLETON, time_config("persisted"));
    let clock = RecordingClock::starting_at(UNIX_EPOCH + Duration::from_secs(10));
    let handle = start(&context1, backends(&clock));
    let first = wait_for("a time status", || status(&context1)).await;
    assert!(first.trusted_now >= release_floor(), "{first:?}");
    assert_eq!(
        clock.sets().first(),
        Some(&release_floor()),
        "not stepped to the floor"
    );
    assert!(clock.now() >= release_floor());
    wait_for("the floor file", || {
        (saved_floor(&context1) >= release_floor()).then_some(())
    })
    .await;

    // A day passes (the operator set the time, say): the floor follows within its
    // save interval.
    clock.advance(day);
    wait_for("the raised floor", || {
        (saved_floor(&context1) >= release_floor() + day).then_some(())
    })
    .await;
    let status1 = wait_for("a status with the raised floor", || {
        status(&context1).filter(|s| s.floor >= release_floor() + day)
    })
    .await;
    assert!(status1.trusted_now >= status1.floor);
    assert!(!status1.synced);
    stop(&context1, handle).await;
    let floor1 = saved_floor(&context1);
    assert!(floor1 >= release_floor() + day);

    // Second boot, in 1970 again: the clock is stepped to the persisted floor, which
    // is never lowered although the clock starts before it.
    let context2 = context(root.path());
    put(&context2.state, SINGLETON, time_config("persisted"));
    let clock2 = RecordingClock::starting_at(UNIX_EPOCH + Duration::from_secs(10));
    let handle = start(&context2, backends(&clock2));
    let restored = wait_for("a time status", || status(&context2)).await;
    assert_eq!(restored.floor, floor1);
    assert_eq!(
        clock2.sets().first(),
        Some(&floor1),
        "not stepped to the saved floor"
    );
    // Several save intervals later the floor has not gone down.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(saved_floor(&context2) >= floor1);
    let later = status(&context2).unwrap();
    assert!(
        later.floor >= floor1 && later.trusted_now >= floor1,
        "{later:?}"
    );
    stop(&context2, handle).await;
}

#[tokio::test]
async fn with_the_floor_off_nothing_is_written_or_stepped() {
    let root = tempfile::tempdir().unwrap();
    let context = context(root.path());
    put(&context.state, SINGLETON, time_config("off"));
    let start_at = UNIX_EPOCH + Duration::from_secs(10);
    let clock = RecordingClock::starting_at(start_at);
    let handle = start(&context, backends(&clock));
    let status = wait_for("a time status", || status(&context)).await;
    assert!(status.trusted_now < release_floor(), "{status:?}");
    assert_eq!(status.floor, UNIX_EPOCH);
    stop(&context, handle).await;
    assert!(clock.sets().is_empty());
    assert!(!context.layout.time().join("floor.json").exists());
}
