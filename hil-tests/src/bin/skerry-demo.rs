//! The local demo of the update loop, driven through the device daemon. A simulated
//! board runs the real `skerryd` (`--root` mode) on file-backed slots with a real boot
//! store; every action is a call to its machine API over mutual TLS, as an operator
//! makes it: apply the machine config (a dry-run diff first), watch health, upgrade to
//! 1.1.0 (progress streamed), reboot into the trial, probation commits it; upgrade to
//! the broken 1.2.0, probation fails and the daemon rolls back by itself, and refuses to
//! install it again; a tampered mirror is refused; a `try` config reverts itself.
//! One backend (U-Boot) is narrated step by step with the slot table after each step;
//! every backend then runs the same stories silently, summed up in one table.
//!
//! The daemon's binary is `$SKERRYD_BIN`, or the first argument (`scripts/demo` builds
//! it and passes it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use skerry_api::pb;
use skerry_boot_state::report::slot_table;
use skerry_boot_state::{BootState, SlotStatus};
use skerry_hil::daemon_scenario::{
    apply, field, last_step, machine_config, upgrade, upgrade_history, upgrade_status,
    wait_healthy, wait_upgrade_phase, UpdateSourceConfig, READER,
};
use skerry_hil::updates::{Release, SignedReleases, BOARD};
use skerry_hil::{images, Backend, DaemonBoard, DaemonBoardOptions};

/// The backend told in full unless `SKERRY_DEMO_NARRATE` names another (`uboot`,
/// `grub`, `gpt`, `tryboot`); the others appear in the summary only.
const NARRATED: Backend = Backend::Uboot;
/// How long a new slot's critical checks must hold before it is committed.
const PROBATION: Duration = Duration::from_secs(3);
/// How long a `try` config stays before it reverts itself.
const TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// A reboot, an install, a probation or a revert takes at most this long here.
const STEP: Duration = Duration::from_secs(60);

const LEGEND: &str = "\
How to read a slot table:
  order   the bootloader tries slots top to bottom
  →       the slot the next power-on starts
  good    known to work; started without using boot attempts
  trial   a new image; every start uses one attempt, and with none left the
          bootloader gives it up (marks it bad) and falls back
  bad     never started (empty, given up, or being written)";

const NOTES: &str = "
tampered 1.1.0   the Upgrade call from the tampered mirror failed and the boot state
                 was the same after it as before
trial of 1.1.0   the power request skerryd made to start the trial, and the boot
                 attempts the store gave it → those left once it booted. tryboot's
                 trial is the firmware's one-shot flag: one attempt, used by the boot
                 itself; any reboot before the commit starts the known-good slot
upgrade 1.1.0    chunks fetched from the repository and reused from the running slot
                 (the install resumes the slot the refused attempt left unfinished)
broken 1.2.0     where the board runs after the failed probation, and who decided
1.2.0 again      the Upgrade call without force was refused (FAILED_PRECONDITION)
try              a `try` config applied for 2 s and not confirmed was reverted";

/// The factory config: only a name. Everything else arrives through the API.
const FACTORY_CONFIG: &str =
    "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: factory\n";

/// Where the releases are, once per demo.
struct Sources {
    genuine: SignedReleases,
    tampered: SignedReleases,
    trusted_root: PathBuf,
}

impl Sources {
    fn genuine(&self) -> UpdateSourceConfig<'_> {
        UpdateSourceConfig {
            repository: self.genuine.repo_dir(),
            trusted_root: &self.trusted_root,
            probation: PROBATION,
        }
    }

    fn tampered(&self) -> UpdateSourceConfig<'_> {
        UpdateSourceConfig {
            repository: self.tampered.repo_dir(),
            trusted_root: &self.trusted_root,
            probation: PROBATION,
        }
    }
}

/// What one backend did in the stories.
struct Summary {
    backend: Backend,
    tampered: String,
    trial: String,
    upgrade: String,
    broken: String,
    again: String,
    tried: String,
    seconds: f64,
}

/// Prints when narrating, stays quiet otherwise.
struct Narrator {
    on: bool,
}

impl Narrator {
    fn say(&self, text: impl AsRef<str>) {
        if self.on {
            println!("{}", text.as_ref());
        }
    }

    fn table(&self, what: &str, state: &BootState) {
        if self.on {
            println!("\n* {what}");
            print!("{}", slot_table(state));
        }
    }
}

fn skerryd_binary() -> anyhow::Result<PathBuf> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("SKERRYD_BIN").map(PathBuf::from))
        .context(
            "skerry-demo needs the skerryd binary: set SKERRYD_BIN or pass its path \
             (scripts/demo builds it with `cargo build --release -p skerryd`)",
        )?;
    if !path.is_file() {
        bail!(
            "skerryd binary {} not found: build it with `cargo build --release -p skerryd` \
             (scripts/demo does) or point SKERRYD_BIN at it",
            path.display()
        );
    }
    Ok(path)
}

/// A backend by its short name, as `SKERRY_DEMO_NARRATE` gives it.
fn backend_named(name: &str) -> Option<Backend> {
    Backend::ALL.into_iter().find(|b| {
        short_name(*b).eq_ignore_ascii_case(name) || format!("{b:?}").eq_ignore_ascii_case(name)
    })
}

fn short_name(backend: Backend) -> &'static str {
    match backend {
        Backend::Uboot => "U-Boot",
        Backend::Grub => "GRUB",
        Backend::Gpt => "GPT",
        Backend::Tryboot => "tryboot",
    }
}

fn narrated() -> anyhow::Result<Backend> {
    match std::env::var("SKERRY_DEMO_NARRATE") {
        Ok(name) if !name.is_empty() => backend_named(&name).with_context(|| {
            format!("SKERRY_DEMO_NARRATE={name} names no backend (uboot, grub, gpt, tryboot)")
        }),
        _ => Ok(NARRATED),
    }
}

fn main() -> anyhow::Result<()> {
    let skerryd = skerryd_binary()?;
    let narrated = narrated()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(demo(&skerryd, narrated))
}

async fn demo(skerryd: &Path, narrated: Backend) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let factory = images::factory();
    let genuine = SignedReleases::publish(work.path(), &factory)?;
    let tampered = genuine.tampered_mirror(work.path(), Release::Upgrade)?;
    let trusted_root = work.path().join("trusted-root.json");
    std::fs::write(&trusted_root, genuine.trusted_root())
        .with_context(|| format!("writing {}", trusted_root.display()))?;
    let sources = Sources {
        genuine,
        tampered,
        trusted_root,
    };
    println!(
        "Signed repository for board {BOARD}: 1.1.0 (healthy) and 1.2.0 (boots, never \
         healthy),\n{} MiB images in zstd chunks, ed25519-signed TUF metadata; and a mirror \
         whose\n1.1.0 image bytes were altered after signing.\n\
         The board runs the real skerryd ({}); every step below is a call to its\n\
         machine API over mutual TLS (client certificates os:admin and os:reader).\n",
        images::IMAGE_SIZE >> 20,
        skerryd.display()
    );
    println!("{LEGEND}\n");
    let mut summaries = Vec::new();
    for backend in Backend::ALL {
        let narrate = Narrator {
            on: backend == narrated,
        };
        if narrate.on {
            println!("=== {backend}, step by step ===");
        } else {
            println!("\n=== {backend} ...");
        }
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let mut board = DaemonBoard::build(
            dir.path(),
            skerryd,
            DaemonBoardOptions {
                backend,
                config: Some(FACTORY_CONFIG.to_owned()),
                watchdog: false,
                ..DaemonBoardOptions::default()
            },
        )?;
        let mut summary = run_backend(&mut board, backend, &sources, &narrate)
            .await
            .with_context(|| format!("on the {backend} board (skerryd logs:\n{})", board.logs()))?;
        summary.seconds = started.elapsed().as_secs_f64();
        board.stop()?;
        summaries.push(summary);
    }
    println!("\n=== The same stories on every bootloader, through skerryd's API ===\n");
    print!("{}", summary_table(&summaries));
    println!("{NOTES}");
    let wrong: Vec<String> = summaries.iter().flat_map(problems).collect();
    if !wrong.is_empty() {
        bail!(
            "the update loop did not behave as it must:\n  {}",
            wrong.join("\n  ")
        );
    }
    Ok(())
}

/// The API's error as one line: its code and message.
fn status_line(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// A progress printer: every message the daemon sends, and each phase's byte count
/// once the phase is over.
fn progress_printer(narrate: &Narrator) -> impl FnMut(&pb::UpgradeProgress) + '_ {
    let mut current: Option<(pb::UpgradePhase, u64, u64)> = None;
    move |p: &pb::UpgradeProgress| {
        let phase = p.phase();
        match current {
            Some((was, done, total)) if was != phase => {
                if total > 0 && was != pb::UpgradePhase::Verifying {
                    narrate.say(format!(
                        "    [{:<8}] last report: {:.2} of {:.2} MB",
                        phase_name(was),
                        done as f64 / 1e6,
                        total as f64 / 1e6
                    ));
                }
                current = Some((phase, p.done_bytes, p.total_bytes));
            }
            Some((_, ref mut done, ref mut total)) => {
                *done = (*done).max(p.done_bytes);
                *total = (*total).max(p.total_bytes);
            }
            None => current = Some((phase, p.done_bytes, p.total_bytes)),
        }
        if !p.message.is_empty() {
            narrate.say(format!("    [{:<8}] {}", phase_name(phase), p.message));
        }
    }
}

fn phase_name(phase: pb::UpgradePhase) -> &'static str {
    match phase {
        pb::UpgradePhase::RefreshingMetadata => "metadata",
        pb::UpgradePhase::Downloading => "download",
        pb::UpgradePhase::Writing => "writing",
        pb::UpgradePhase::Verifying => "verified",
        pb::UpgradePhase::TrialReady => "trial",
        pb::UpgradePhase::Unspecified => "?",
    }
}

async fn run_backend(
    board: &mut DaemonBoard,
    backend: Backend,
    sources: &Sources,
    narrate: &Narrator,
) -> anyhow::Result<Summary> {
    let upgrade_to = Release::Upgrade.version();
    let broken = Release::Broken.version();
    narrate.table(
        "Factory state: slot A holds the factory image 1.0.0; slot B is empty.",
        &board.boot_state()?,
    );

    // Power on; the factory config names the machine and nothing else.
    let slot = board.power_on()?;
    let mut reader = board.client(READER).await?;
    let version = reader.version(pb::VersionRequest {}).await?.into_inner();
    narrate.say(format!(
        "\nPowered on: the bootloader started slot {slot}; skerryd {} answers on {} \
         (board {}, release {}, booted slot {}).",
        version.daemon_version,
        board.api().map(|a| a.to_string()).unwrap_or_default(),
        version.board,
        if version.release_version.is_empty() {
            "unknown"
        } else {
            &version.release_version
        },
        version.booted_slot
    ));

    // --- the machine config, through ApplyConfiguration
    narrate.say("\n--- Step 1: apply the machine config ---");
    let config = machine_config(board, "sim-01", Some(sources.genuine()));
    let dry = apply(board, &config, pb::ApplyMode::NoReboot, true, None)
        .await?
        .map_err(|s| anyhow::anyhow!("the dry run was refused: {}", status_line(&s)))?;
    if !dry.problems.is_empty() {
        bail!("the demo's config has problems: {:?}", dry.problems);
    }
    narrate.say(
        "ApplyConfiguration --dry-run: the diff from the factory config (nothing changed yet):",
    );
    for line in dry.diff.lines() {
        narrate.say(format!("    {line}"));
    }
    let applied = apply(board, &config, pb::ApplyMode::NoReboot, false, None)
        .await?
        .map_err(|s| anyhow::anyhow!("the config was refused: {}", status_line(&s)))?;
    narrate.say(format!(
        "ApplyConfiguration (no-reboot): generation {} in effect.",
        applied.generation
    ));
    let healthy = wait_healthy(board, STEP).await?;
    for check in &healthy.checks {
        narrate.say(format!(
            "Health: check {} ({}) is {:?}.",
            check.name,
            if check.critical {
                "critical"
            } else {
                "not critical"
            },
            check.status()
        ));
    }

    // --- a tampered mirror
    narrate.say("\n--- Step 2: a tampered mirror is refused ---");
    let before = board.boot_state()?;
    let mirror = machine_config(board, "sim-01", Some(sources.tampered()));
    apply(board, &mirror, pb::ApplyMode::NoReboot, false, None)
        .await?
        .map_err(|s| anyhow::anyhow!("the mirror's config was refused: {}", status_line(&s)))?;
    narrate.say(format!(
        "ApplyConfiguration: the update source is now the mirror {}.",
        sources.tampered.repo_dir().display()
    ));
    narrate.say(format!("Upgrade {upgrade_to}:"));
    let answer = upgrade(board, upgrade_to, false, progress_printer(narrate)).await?;
    let tampered = match answer {
        Ok(progress) => bail!(
            "the upgrade from the tampered mirror was NOT refused; it ended with: {}",
            progress
                .last()
                .map(|p| p.message.as_str())
                .unwrap_or("no progress at all")
        ),
        Err(status) => {
            narrate.say(format!("  refused: {}", status_line(&status)));
            let after = board.boot_state()?;
            if after == before {
                "refused, state kept".to_owned()
            } else {
                narrate.table("The boot state CHANGED:", &after);
                "refused, STATE CHANGED".to_owned()
            }
        }
    };
    narrate.table(
        "The boot state after the refusal (slot B still unbootable):",
        &board.boot_state()?,
    );
    apply(board, &config, pb::ApplyMode::NoReboot, false, None)
        .await?
        .map_err(|s| anyhow::anyhow!("the genuine config was refused: {}", status_line(&s)))?;
    narrate.say("\nApplyConfiguration: the update source is the genuine repository again.");

    // --- upgrade, trial, probation, commit
    narrate.say(format!(
        "\n--- Step 3: upgrade to {upgrade_to} → trial → probation → commit ---"
    ));
    narrate.say(format!("Upgrade {upgrade_to}:"));
    let progress = upgrade(board, upgrade_to, false, progress_printer(narrate))
        .await?
        .map_err(|s| anyhow::anyhow!("upgrade to {upgrade_to} failed: {}", status_line(&s)))?;
    let delta = progress
        .iter()
        .find(|p| p.phase() == pb::UpgradePhase::Verifying)
        .map(|p| chunk_counts(&p.message))
        .unwrap_or_default();
    narrate.table(
        "The trial has begun; skerryd asks for a reboot:",
        &board.boot_state()?,
    );
    let trial_state = board.boot_state()?;
    let request = tokio::task::block_in_place(|| board.wait_for_power_request(STEP))?;
    let slot = board.power_on()?;
    let booted_state = board.boot_state()?;
    narrate.table(
        &format!("skerryd asked for `{request}`; the bootloader started slot {slot}."),
        &booted_state,
    );
    let tries_left = match booted_state.status(&slot)? {
        SlotStatus::Trial { tries_left } => tries_left.to_string(),
        other => format!("{other:?}"),
    };
    let trial_summary = format!(
        "`{request}`, {} → {tries_left} left",
        plural(usize::from(trial_state.tries()), "try", "tries")
    );
    let committed = wait_upgrade_phase(board, "committed", STEP, |s| {
        narrate.say(format!(
            "  UpgradeStatus: {} — {}",
            field(s, "phase"),
            field(s, "message")
        ));
    })
    .await?;
    let committed_slot = field(&committed, "target_slot").to_owned();
    narrate.table(
        &format!("Probation held for {PROBATION:?}: slot {committed_slot} is committed."),
        &board.boot_state()?,
    );
    narrate.say(version_line(board).await?);
    let upgrade_summary = format!("{delta}, {committed_slot} good");

    // --- broken release: probation fails, the daemon rolls back by itself
    narrate.say(format!(
        "\n--- Step 4: upgrade to {broken} (never healthy) → probation fails → rollback ---"
    ));
    narrate.say(format!("Upgrade {broken}:"));
    upgrade(board, broken, false, progress_printer(narrate))
        .await?
        .map_err(|s| anyhow::anyhow!("upgrade to {broken} failed: {}", status_line(&s)))?;
    let good_slot = board.running().map(ToString::to_string).unwrap_or_default();
    let slot = board.reboot(STEP)?;
    narrate.table(
        &format!("Rebooted: the bootloader started slot {slot} on trial."),
        &board.boot_state()?,
    );
    // Watch its critical check fail and the daemon decide, until it stops to reboot.
    watch_probation(board, narrate).await?;
    let request = tokio::task::block_in_place(|| board.wait_for_power_request(STEP))?;
    narrate.table(
        &format!("Nobody touched it: skerryd marked slot {slot} bad and asked for `{request}`."),
        &board.boot_state()?,
    );
    let back_on = board.power_on()?;
    wait_healthy(board, STEP).await?;
    narrate.say(format!("\nPowered on again on slot {back_on}; healthy."));
    narrate.say(version_line(board).await?);
    let history = upgrade_history(board).await?;
    let (reason, by) = match last_step(&history, "rolled_back", broken) {
        Some(entry) => (
            field(entry, "reason").to_owned(),
            field(entry, "by").to_owned(),
        ),
        None => bail!("no rollback of {broken} in the upgrade history: {history:?}"),
    };
    narrate.say(format!(
        "UpgradeHistory: {broken} on slot {slot} rolled back by {}: {reason}",
        if by.is_empty() { "?" } else { &by }
    ));
    let broken_summary = if back_on.as_str() == good_slot {
        format!(
            "back on {back_on} ({})",
            if by.is_empty() { "?" } else { &by }
        )
    } else {
        format!("ON {back_on}, NOT {good_slot}")
    };

    // --- the same release again
    narrate.say(format!("\n--- Step 5: {broken} again ---"));
    let before = board.boot_state()?;
    let again = match upgrade(board, broken, false, progress_printer(narrate)).await? {
        Ok(progress) => bail!(
            "{broken}, which this machine rolled back from, was installed again without force; it ended with: {}",
            progress.last().map(|p| p.message.as_str()).unwrap_or("no progress at all")
        ),
        Err(status) => {
            narrate.say(format!("Upgrade {broken}: {}", status_line(&status)));
            let kept = board.boot_state()? == before;
            format!(
                "{}{}",
                if status.code() == tonic::Code::FailedPrecondition {
                    "refused"
                } else {
                    "refused (unexpected code)"
                },
                if kept { "" } else { ", STATE CHANGED" }
            )
        }
    };
    let status = upgrade_status(board).await?;
    narrate.say(format!(
        "UpgradeStatus: {} on slot {}.",
        field(&status, "phase"),
        field(&status, "booted_slot")
    ));

    // --- a try config reverts itself
    narrate.say("\n--- Step 6: a `try` config reverts itself ---");
    let tried = apply(
        board,
        &machine_config(board, "sim-try", Some(sources.genuine())),
        pb::ApplyMode::Try,
        false,
        Some(TRY_TIMEOUT),
    )
    .await?
    .map_err(|s| anyhow::anyhow!("the try config was refused: {}", status_line(&s)))?;
    narrate.say(format!(
        "ApplyConfiguration (try, {TRY_TIMEOUT:?}): generation {}; nobody confirms it.",
        tried.generation
    ));
    let hostname = |board: &DaemonBoard| {
        std::fs::read_to_string(board.root().join("etc").join("hostname"))
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let saw_try = wait_until(STEP, || hostname(board) == "sim-try").await;
    narrate.say(format!(
        "  rendered hostname: {}",
        if saw_try { "sim-try" } else { "never sim-try" }
    ));
    let reverted = wait_until(STEP, || hostname(board) == "sim-01").await;
    narrate.say(format!(
        "  rendered hostname: {} (reverted)",
        hostname(board)
    ));
    let tried_summary = match (saw_try, reverted) {
        (true, true) => "reverted".to_owned(),
        (false, _) => "NEVER APPLIED".to_owned(),
        (true, false) => "NOT REVERTED".to_owned(),
    };

    Ok(Summary {
        backend,
        tampered,
        trial: trial_summary,
        upgrade: upgrade_summary,
        broken: broken_summary,
        again,
        tried: tried_summary,
        seconds: 0.0,
    })
}

/// Follows a failing probation through the API: the machine's events, watched from
/// this start's first one, until the daemon ends the stream to reboot.
async fn watch_probation(board: &DaemonBoard, narrate: &Narrator) -> anyhow::Result<()> {
    let opened = async {
        let mut client = board.client(READER).await?;
        let stream = client
            .events(pb::EventsRequest {
                after_id: String::new(),
                watch: true,
            })
            .await?;
        anyhow::Ok(stream.into_inner())
    };
    // A daemon that decided before we could connect has stopped already.
    let Ok(mut stream) = opened.await else {
        narrate.say("  (skerryd stopped before its events could be watched)");
        return Ok(());
    };
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message()).await;
        match next {
            Ok(Ok(Some(event))) => {
                if event.kind.starts_with("upgrade.")
                    || event.kind.starts_with("health")
                    || event.kind.starts_with("power")
                {
                    narrate.say(format!("  event {}: {}", event.kind, event.message));
                }
            }
            // The daemon stops serving to reboot: its streams end.
            Ok(Ok(None)) | Ok(Err(_)) => return Ok(()),
            Err(_) => bail!("the daemon kept running {STEP:?} into a failing trial"),
        }
    }
}

/// "1 try", "3 tries".
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What the Version call says runs now.
async fn version_line(board: &DaemonBoard) -> anyhow::Result<String> {
    let mut reader = board.client(READER).await?;
    let v = reader.version(pb::VersionRequest {}).await?.into_inner();
    Ok(format!(
        "Version: release {} on slot {}.",
        if v.release_version.is_empty() {
            "unknown"
        } else {
            &v.release_version
        },
        v.booted_slot
    ))
}

/// Polls `check` every 100 ms for at most `limit`; whether it held.
async fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !check() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// "N fetched / M reused" from the verifying message ("… (M chunks reused from slot A,
/// N fetched)"), or the message's absence.
fn chunk_counts(message: &str) -> String {
    let number_before = |word: &str| {
        message
            .split_once(word)
            .and_then(|(head, _)| head.split_whitespace().last())
            .map(|n| n.trim_matches(|c: char| !c.is_ascii_digit()).to_owned())
    };
    let reused = number_before(" chunks reused");
    let fetched = number_before(" fetched");
    match (fetched, reused) {
        (Some(f), Some(r)) => format!("{f} chunks fetched, {r} reused"),
        _ => "no chunk counts".to_owned(),
    }
}

/// What a backend's row shows that the update loop must never do.
fn problems(r: &Summary) -> Vec<String> {
    let name = short_name(r.backend);
    let mut out = Vec::new();
    let mut expect = |ok: bool, column: &str, shown: &str| {
        if !ok {
            out.push(format!("{name}: {column}: {shown}"));
        }
    };
    expect(
        r.tampered == "refused, state kept",
        "tampered 1.1.0",
        &r.tampered,
    );
    expect(r.upgrade.ends_with(" good"), "upgrade 1.1.0", &r.upgrade);
    expect(r.broken.starts_with("back on "), "broken 1.2.0", &r.broken);
    expect(r.again == "refused", "1.2.0 again", &r.again);
    expect(r.tried == "reverted", "try", &r.tried);
    out
}

fn summary_table(rows: &[Summary]) -> String {
    let header = [
        "backend",
        "tampered 1.1.0",
        "trial of 1.1.0",
        "upgrade 1.1.0 (delta)",
        "broken 1.2.0",
        "1.2.0 again",
        "try",
        "time",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for r in rows {
        let name = short_name(r.backend);
        table.push(vec![
            name.to_owned(),
            r.tampered.clone(),
            r.trial.clone(),
            r.upgrade.clone(),
            r.broken.clone(),
            r.again.clone(),
            r.tried.clone(),
            format!("{:.1} s", r.seconds),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
