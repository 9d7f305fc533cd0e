//! The rollout story, told against a real server and three devices: release 2.0.0 is
//! rolled out in two waves; wave 1 holds `pump-a` and `pump-b` (by their wave seeds),
//! wave 2 everyone. `pump-b`'s application needs what 2.0.0 dropped, so its probation
//! fails and it rolls back; the server's health gate (20 % of the wave) pauses the
//! rollout by itself. `pump-c`, in wave 2, powers on only after wave 2 has opened, so
//! the pause is the one thing between it and 2.0.0.
//!
//! Every wait has a deadline and says what it waited for when that passes; nothing is
//! asserted about how long a step took. [`run`] returns what the server and the devices
//! say at the end; the test asserts on it and the demo prints it.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use skerry_boot_state::BootState;
use skerry_rollout::WaveSeed;

use crate::fleet::device::{DeviceRole, FleetDevice, POLL_INTERVAL};
use crate::fleet::releases::{FleetReleases, CHANNEL, NEW_VERSION};
use crate::fleet::server::FleetServer;
use crate::fleet::FleetBinaries;
use crate::updates::BOARD;

/// The rollout's id.
pub const ROLLOUT: &str = "v2";
/// The devices: two in wave 1 (one fails on 2.0.0), one in wave 2.
pub const DEVICES: [(&str, DeviceRole); 3] = [
    ("pump-a", DeviceRole::Healthy),
    ("pump-b", DeviceRole::FailsOn2),
    ("pump-c", DeviceRole::Healthy),
];
/// When wave 2 opens after the rollout's start.
pub const WAVE_2_AFTER: Duration = Duration::from_secs(5);
/// The health gate: pause when more than this share of a wave failed or rolled back.
pub const MAX_BAD: &str = "20%";
/// The longest the first wave may take to settle (installs, reboots, probations).
pub const WAVE_1_LIMIT: Duration = Duration::from_secs(120);
/// The longest any other awaited step may take.
pub const STEP_LIMIT: Duration = Duration::from_secs(60);

/// One device at the end.
#[derive(Debug)]
pub struct DeviceView {
    pub id: String,
    pub role: DeviceRole,
    /// `GET /api/v1/devices/ID`: version, health, timeline.
    pub server: Value,
    /// The slot it runs.
    pub running: Option<String>,
    pub boot: BootState,
    /// What each slot holds, per the device's installer state.
    pub slot_releases: std::collections::BTreeMap<String, String>,
    /// The fleet client's last decision, in words.
    pub decision: String,
}

/// What the story ends with.
#[derive(Debug)]
pub struct Outcome {
    /// The rollout as `GET /api/v1/rollouts` lists it.
    pub rollout: Value,
    pub devices: Vec<DeviceView>,
    /// The waves' seeds, for the reader: (device, basis points).
    pub seeds: Vec<(String, u16)>,
    /// The dashboard's address.
    pub dashboard: String,
    /// The server, still running (stopped when dropped) so a person can look at it.
    pub server: FleetServer,
}

/// A deadline for one awaited thing.
struct Awaiting {
    what: String,
    until: Instant,
    limit: Duration,
}

impl Awaiting {
    fn new(what: impl Into<String>, limit: Duration) -> Self {
        Awaiting {
            what: what.into(),
            until: Instant::now() + limit,
            limit,
        }
    }

    /// Keeps the devices powered, then fails if one could not be or the deadline passed.
    fn check(
        &self,
        last: impl std::fmt::Display,
        devices: &mut [FleetDevice],
    ) -> anyhow::Result<()> {
        for d in devices.iter_mut() {
            d.tick();
        }
        for d in devices.iter() {
            let problems = d.problems();
            if !problems.is_empty() {
                bail!(
                    "while awaiting {}: device {}: {}\n{}",
                    self.what,
                    d.id(),
                    problems.join("; "),
                    d.logs()
                );
            }
        }
        if Instant::now() > self.until {
            let logs: Vec<String> = devices
                .iter()
                .map(|d| format!("=== {} ===\n{}", d.id(), d.logs()))
                .collect();
            bail!(
                "{} did not happen within {:?}; last seen: {last}\n{}",
                self.what,
                self.limit,
                logs.join("\n")
            );
        }
        Ok(())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The upgrade steps a device reports (the rest of a timeline is the server's own
/// notes: `enrolled`, `offered`, `running` a new version, `health` changed).
pub const DEVICE_STEPS: [&str; 7] = [
    "downloading",
    "installed",
    "rebooting",
    "probation",
    "committed",
    "rolled_back",
    "failed",
];

/// The upgrade steps in a device's server timeline, oldest first.
pub fn timeline_steps(device: &Value) -> Vec<String> {
    device["timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|e| e["kind"].as_str())
                .filter(|k| DEVICE_STEPS.contains(k))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the story in `work` with the given binaries; `say` narrates.
pub async fn run(
    bins: &FleetBinaries,
    work: &Path,
    mut tell: impl FnMut(&str),
) -> anyhow::Result<Outcome> {
    let t0 = Instant::now();
    let mut say = |line: &str| tell(&format!("[{:>5.1}s] {line}", t0.elapsed().as_secs_f64()));
    let data = work.join("server");
    let releases = FleetReleases::publish(&data, &work.join("release-keys"))?;
    let server = FleetServer::start(&bins.server, &data, POLL_INTERVAL, &work.join("server.log"))?;
    say(&format!(
        "skerry-server serves {} (data in {}), telling devices to check in every {POLL_INTERVAL:?}",
        server.url(),
        data.display()
    ));

    say(&format!(
        "dashboard (watch it while this runs): {}/dashboard/#token={}",
        server.url(),
        server.token()
    ));
    let seeds: Vec<(String, u16)> = DEVICES
        .iter()
        .map(|(id, _)| (id.to_string(), WaveSeed::of(id).basis_points()))
        .collect();
    let first_wave_top = seeds[0].1.max(seeds[1].1);
    let wave_1_bp = first_wave_top + 1;
    if wave_1_bp > seeds[2].1 {
        bail!("the devices' wave seeds do not split as the story needs: {seeds:?}");
    }
    let waves = format!(
        "0:{}.{:02}%,{}s:100%",
        wave_1_bp / 100,
        wave_1_bp % 100,
        WAVE_2_AFTER.as_secs()
    );
    server.post(
        "rollouts",
        &json!({"id": ROLLOUT, "board": BOARD, "version": NEW_VERSION, "channel": CHANNEL,
                "waves": waves, "max_bad": MAX_BAD, "min_sample": 1}),
    )?;
    say(&format!("rollout {ROLLOUT}: {NEW_VERSION} for {BOARD}, waves {waves}, pause when more than {MAX_BAD} of a wave fail or roll back"));

    let mut devices = Vec::new();
    for (id, role) in DEVICES {
        devices.push(FleetDevice::build(
            &work.join(id),
            &bins.skerryd,
            id,
            role,
            &server.url(),
            &server.repository_url(),
            &releases,
        )?);
    }
    for d in &mut devices[..2] {
        d.power_on()?;
        say(&format!("{} powered on (1.0.0 in slot A)", d.id()));
    }

    // Wave 1 settles: pump-a commits, pump-b rolls back; each step told as it arrives.
    let wait = Awaiting::new(
        "pump-a's committed and pump-b's rolled_back steps on the server",
        WAVE_1_LIMIT,
    );
    let mut told = [0usize; 2];
    loop {
        let mut kinds = Vec::new();
        for (i, d) in devices[..2].iter().enumerate() {
            let view = server.device(d.id()).unwrap_or(Value::Null);
            let timeline = view["timeline"].as_array().cloned().unwrap_or_default();
            for e in timeline.iter().skip(told[i]) {
                let detail = e["detail"].as_str().unwrap_or("");
                say(&format!(
                    "  {:<7} {:<12} {} {}",
                    d.id(),
                    e["kind"].as_str().unwrap_or("?"),
                    e["version"].as_str().unwrap_or(""),
                    detail
                ));
            }
            told[i] = timeline.len();
            kinds.push(timeline_steps(&view));
        }
        if kinds[0].iter().any(|k| k == "committed") && kinds[1].iter().any(|k| k == "rolled_back")
        {
            break;
        }
        wait.check(format!("{kinds:?}"), &mut devices)?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let wait = Awaiting::new(format!("rollout {ROLLOUT} to be paused"), STEP_LIMIT);
    let rollout = loop {
        let r = server.rollout(ROLLOUT)?;
        if r["state"] == "paused" {
            break r;
        }
        wait.check(&r, &mut devices)?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    say(&format!(
        "rollout {ROLLOUT} is {}: {}",
        rollout["state"],
        rollout["pause_reason"].as_str().unwrap_or("")
    ));

    let opens = rollout["started_at"].as_u64().unwrap_or(0)
        + rollout["waves"][1]["after_secs"].as_u64().unwrap_or(0);
    let wait = Awaiting::new("wave 2's opening time", STEP_LIMIT);
    while unix_now() <= opens {
        wait.check(format!("now {} ≤ {opens}", unix_now()), &mut devices)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    devices[2].power_on()?;
    say(&format!("wave 2 is open; {} powers on", devices[2].id()));
    let wait = Awaiting::new("pump-c's first answered check-in", STEP_LIMIT);
    loop {
        let status = devices[2].fleet_status().await;
        if let Ok(s) = &status {
            if s["last_answer"].as_u64().unwrap_or(0) > 0 {
                say(&format!(
                    "  pump-c  was told: {}",
                    s["decision"].as_str().unwrap_or("")
                ));
                break;
            }
        }
        wait.check(format!("{status:?}"), &mut devices)?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let rollout = server.rollout(ROLLOUT)?;
    let mut views = Vec::new();
    for d in &mut devices {
        let decision = match d.fleet_status().await {
            Ok(s) => s["decision"].as_str().unwrap_or("").to_owned(),
            Err(e) => format!("(the fleet status could not be read: {e:#})"),
        };
        views.push(DeviceView {
            id: d.id().to_owned(),
            role: DEVICES
                .iter()
                .find(|(id, _)| *id == d.id())
                .map_or(DeviceRole::Healthy, |(_, r)| *r),
            server: server
                .device(d.id())
                .context("reading a device from the server")?,
            running: d.running(),
            boot: d.boot_state()?,
            slot_releases: d.slot_releases()?,
            decision,
        });
    }
    let dashboard = format!("{}/dashboard/#token={}", server.url(), server.token());
    for d in &mut devices {
        d.shut_down()?;
    }
    Ok(Outcome {
        rollout,
        devices: views,
        seeds,
        dashboard,
        server,
    })
}
