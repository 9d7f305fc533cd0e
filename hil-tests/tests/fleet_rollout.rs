//! End to end: the real `skerry-server` and three simulated devices running the real
//! `skerryd` (the story is in `skerry_hil::fleet::story`). Release 2.0.0 is rolled out
//! in two waves; one device of wave 1 fails its health check on 2.0.0 and rolls back;
//! the rollout pauses itself, and the device of wave 2 is held by that pause although
//! its wave is open. Asserted on the server's operator API (rollout state and reason,
//! per-wave counts, each device's version and timeline) and on the devices (boot slots,
//! what each slot holds, what the fleet client was told).
//!
//! The binaries: `$SKERRY_SERVER_BIN` and `$SKERRYD_BIN`, else those `cargo test
//! --workspace` builds beside this test (`cargo build -p skerry-server -p skerryd`).

use serde_json::Value;
use skerry_boot_state::{SlotName, SlotStatus};
use skerry_hil::fleet::story::{self, timeline_steps, DeviceView, DEVICE_STEPS};
use skerry_hil::fleet::FleetBinaries;

fn slot(view: &DeviceView, name: &str) -> SlotStatus {
    view.boot
        .status(&SlotName::new(name).unwrap())
        .unwrap_or_else(|e| panic!("{}: slot {name}: {e}", view.id))
}

#[test]
fn a_rollback_in_wave_one_pauses_the_rollout_before_wave_two_takes_it() {
    let bins = FleetBinaries::locate().unwrap();
    let work = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = runtime
        .block_on(story::run(&bins, work.path(), |line| println!("{line}")))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let [a, b, c] = &outcome.devices[..] else {
        panic!("three devices expected: {:?}", outcome.devices)
    };

    // The server's view of the rollout: paused by itself, naming wave 1 and its counts.
    let r = &outcome.rollout;
    assert_eq!(r["state"], "paused", "{r}");
    assert_eq!(r["paused_automatically"], true, "{r}");
    let reason = r["pause_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("1 of 2 devices in wave 1 failed or rolled back"),
        "{reason}"
    );
    let w1 = &r["waves"][0];
    assert_eq!(
        (
            &w1["started"],
            &w1["committed"],
            &w1["rolled_back"],
            &w1["failed"]
        ),
        (&2.into(), &1.into(), &1.into(), &0.into()),
        "{r}"
    );
    assert_eq!(r["waves"][1]["started"], 0, "{r}");

    // pump-a: every step of the upgrade, in order, and now it runs 2.0.0 from slot B.
    assert_eq!(
        timeline_steps(&a.server),
        [
            "downloading",
            "installed",
            "rebooting",
            "probation",
            "committed"
        ],
        "{}",
        a.server
    );
    let about: Vec<&Value> = a.server["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| DEVICE_STEPS.contains(&e["kind"].as_str().unwrap_or("")))
        .map(|e| &e["version"])
        .collect();
    assert!(about.iter().all(|v| **v == "2.0.0"), "{about:?}");
    assert_eq!(a.server["version"], "2.0.0", "{}", a.server);
    assert_eq!(a.running.as_deref(), Some("B"));
    assert_eq!(slot(a, "B"), SlotStatus::Good);
    assert_eq!(a.slot_releases.get("B").map(String::as_str), Some("2.0.0"));

    // pump-b: the same steps up to probation, then rolled back with the failing check
    // named; it runs 1.0.0 from slot A again and slot B is bad.
    let kinds = timeline_steps(&b.server);
    assert_eq!(
        kinds[..4],
        ["downloading", "installed", "rebooting", "probation"],
        "{}",
        b.server
    );
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("rolled_back"),
        "{}",
        b.server
    );
    let rolled = b.server["timeline"].as_array().unwrap().last().unwrap();
    let why = rolled["detail"].as_str().unwrap_or_default();
    assert!(why.contains("app/image"), "the rollback's reason: {why}");
    assert_eq!(b.server["version"], "1.0.0", "{}", b.server);
    assert_eq!(b.running.as_deref(), Some("A"));
    assert_eq!(slot(b, "A"), SlotStatus::Good);
    assert_eq!(slot(b, "B"), SlotStatus::Bad);

    // pump-c: its wave is open, yet the pause holds it: told so, nothing started.
    assert!(
        c.decision.starts_with("hold:") && c.decision.contains("paused automatically"),
        "pump-c was told: {}",
        c.decision
    );
    assert_eq!(
        timeline_steps(&c.server),
        Vec::<String>::new(),
        "{}",
        c.server
    );
    assert_eq!(c.server["version"], "1.0.0", "{}", c.server);
    assert_eq!(c.running.as_deref(), Some("A"));
    assert_eq!(slot(c, "A"), SlotStatus::Good);
    assert_eq!(c.slot_releases.get("B"), None);
}

/// The demo (`scripts/demo`'s second part) tells the same story and ends with its table.
#[test]
fn the_fleet_demo_narrates_the_rollout_and_ends_with_a_table() {
    let bins = FleetBinaries::locate().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skerry-fleet-demo"))
        .env("SKERRY_SERVER_BIN", &bins.server)
        .env("SKERRYD_BIN", &bins.skerryd)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "Rollout v2 (2.0.0 of sim-x86), gate 20%: paused — paused automatically: 1 of 2 devices in wave 1",
        "opens after",
        "dashboard",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let row = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no table row for {id}:\n{text}"))
            .to_owned()
    };
    assert!(row("pump-a ").contains("B 2.0.0"), "{}", row("pump-a "));
    assert!(row("pump-a ").contains("committed"), "{}", row("pump-a "));
    assert!(row("pump-b ").contains("rolled_back"), "{}", row("pump-b "));
    assert!(
        row("pump-c ").contains("hold: paused automatically"),
        "{}",
        row("pump-c ")
    );
}
