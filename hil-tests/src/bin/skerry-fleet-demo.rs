//! The fleet demo: a real `skerry-server` in a temporary directory, three simulated
//! devices running the real `skerryd`, release 2.0.0 rolled out in two waves; one
//! device fails its health check on 2.0.0 and rolls back, the rollout pauses itself,
//! and the last device is held by that pause. Narrated as it happens, then one table.
//! The story and its waits are `skerry_hil::fleet::story` (the same one
//! `tests/fleet_rollout.rs` asserts on).
//!
//! Binaries: `$SKERRY_SERVER_BIN` and `$SKERRYD_BIN`, else those beside this one
//! (`scripts/demo` builds them). With a terminal on stdin, the server stays up after the
//! story until Enter, so the dashboard can be looked at.

use std::io::IsTerminal as _;

use skerry_boot_state::{SlotName, SlotStatus};
use skerry_hil::fleet::story::{self, timeline_steps, DeviceView, MAX_BAD, ROLLOUT};
use skerry_hil::fleet::{DeviceRole, FleetBinaries};

const INTRO: &str = "\
A fleet on this machine: skerry-server (embedded database, the signed repository it
hosts) and three devices, each the real skerryd on a simulated A/B board with 1.0.0 in
slot A. Each device checks in every 5 s; an offer is taken through its own upgrade
subsystem: it verifies the signed metadata, installs 2.0.0 into slot B, reboots into a
trial, and commits it only if its critical health check holds through probation.
pump-b's application needs something 2.0.0 dropped, so its check fails there.
";

fn slot(view: &DeviceView, name: &str) -> String {
    let Ok(slot) = SlotName::new(name) else {
        return "?".into();
    };
    let status = match view.boot.status(&slot) {
        Ok(SlotStatus::Good) => "good",
        Ok(SlotStatus::Bad) => "bad",
        Ok(SlotStatus::Trial { .. }) => "trial",
        Err(_) => "?",
    };
    match view.slot_releases.get(name) {
        Some(version) => format!("{status} ({version})"),
        None => status.to_owned(),
    }
}

fn main() -> anyhow::Result<()> {
    let bins = FleetBinaries::locate()?;
    let work = tempfile::tempdir()?;
    println!("{INTRO}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(story::run(&bins, work.path(), |line| println!("{line}")))?;

    let r = &outcome.rollout;
    println!(
        "\nRollout {ROLLOUT} ({} of {}), gate {MAX_BAD}: {}{}",
        r["release"]["version"].as_str().unwrap_or("?"),
        r["release"]["board"].as_str().unwrap_or("?"),
        r["state"].as_str().unwrap_or("?"),
        r["pause_reason"]
            .as_str()
            .map(|why| format!(" — {why}"))
            .unwrap_or_default()
    );
    println!(
        "{:<5} {:>11}  {:>6}  {:>7}  {:>9}  {:>11}  {:>6}",
        "wave", "opens after", "share", "started", "committed", "rolled back", "failed"
    );
    for w in r["waves"].as_array().into_iter().flatten() {
        let n = |key: &str| w[key].to_string();
        println!(
            "{:<5} {:>10}s  {:>5}%  {:>7}  {:>9}  {:>11}  {:>6}",
            n("wave"),
            n("after_secs"),
            n("percent"),
            n("started"),
            n("committed"),
            n("rolled_back"),
            n("failed")
        );
    }
    println!(
        "\n{:<8} {:>6}  {:<15} {:<8} {:<13} {:<13} {:<12} told last",
        "device", "seed", "app on 2.0.0", "runs", "slot A", "slot B", "last step"
    );
    for (view, (_, seed)) in outcome.devices.iter().zip(&outcome.seeds) {
        let steps = timeline_steps(&view.server);
        println!(
            "{:<8} {:>5.2}%  {:<15} {:<8} {:<13} {:<13} {:<12} {}",
            view.id,
            f64::from(*seed) / 100.0,
            match view.role {
                DeviceRole::Healthy => "works",
                DeviceRole::FailsOn2 => "fails its check",
            },
            format!(
                "{} {}",
                view.running.as_deref().unwrap_or("-"),
                view.server["version"].as_str().unwrap_or("?")
            ),
            slot(view, "A"),
            slot(view, "B"),
            steps.last().map_or("-", String::as_str),
            view.decision
        );
    }
    println!(
        "\nA device's seed puts it in the first wave whose share is above it. The server's\n\
         view: {}/api/v1/rollouts (bearer token in the data directory), dashboard:\n{}",
        outcome.server.url(),
        outcome.dashboard
    );
    if std::io::stdin().is_terminal() {
        println!("\nThe server keeps running; press Enter to stop it.");
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    Ok(())
}
