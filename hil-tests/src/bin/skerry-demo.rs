//! The local demo of the update loop. Releases are signed into a TUF repository; a
//! simulated board installs them as deltas into its inactive slot. One backend (U-Boot)
//! is narrated step by step — a tampered release refused, upgrade → trial → commit, and
//! trial → failed boots → rollback — and every backend then runs the same stories
//! silently, summed up in one table.

use skerry_boot_state::report::slot_table;
use skerry_hil::scenario::{
    failed_trial_rolls_back, tampered_release_is_refused, upgrade_and_commit, Step, UpdateSource,
};
use skerry_hil::updates::{Release, SignedReleases, BOARD};
use skerry_hil::{images, Backend};

/// The backend told in full; the others appear in the summary only.
const NARRATED: Backend = Backend::Uboot;

const LEGEND: &str = "\
How to read a slot table:
  order   the bootloader tries slots top to bottom
  →       the slot the next power-on starts
  good    known to work; started without using boot attempts
  trial   a new image; every start uses one attempt, and with none left the
          bootloader gives it up (marks it bad) and falls back
  bad     never started (empty, given up, or being written)";

/// What one backend did in the three stories.
struct Summary {
    backend: Backend,
    tampered_refused: bool,
    upgrade_fetched: u64,
    upgrade_written: u64,
    committed_slot: String,
    broken_boots: usize,
    rolled_back_to: String,
}

fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let factory = images::factory();
    let releases = SignedReleases::publish(work.path(), &factory)?;
    let mirror = releases.tampered_mirror(work.path(), Release::Upgrade)?;
    println!(
        "Signed repository for board {BOARD}: 1.1.0 (healthy) and 1.2.0 (boots, never \
         healthy),\n{} MiB images in zstd chunks, ed25519-signed TUF metadata; and a mirror \
         whose\n1.1.0 image bytes were altered after signing.\n",
        images::IMAGE_SIZE >> 20
    );
    println!("{LEGEND}\n");
    let mut summaries = Vec::new();
    for backend in Backend::ALL {
        let narrate = backend == NARRATED;
        if narrate {
            println!("=== {backend}, step by step ===");
        }
        summaries.push(run_backend(backend, &releases, &mirror, &factory, narrate)?);
    }
    println!("\n=== The same stories on every bootloader ===\n");
    print!("{}", summary_table(&summaries));
    Ok(())
}

fn run_backend(
    backend: Backend,
    releases: &SignedReleases,
    mirror: &SignedReleases,
    factory: &[u8],
    narrate: bool,
) -> anyhow::Result<Summary> {
    let dir = tempfile::tempdir()?;
    let mut board = backend.board(dir.path(), factory)?;
    let device_state = dir.path().join("device-state");
    let source = UpdateSource {
        releases,
        device_state: &device_state,
    };
    let tampered = UpdateSource {
        releases: mirror,
        device_state: &device_state,
    };
    let mut print = |s: Step| {
        if narrate {
            println!("\n* {}", s.what);
            print!("{}", slot_table(&s.state));
        }
    };
    if narrate {
        println!("store: {}", backend.spec(dir.path()));
        println!("\nFactory state: slot A holds the factory image 1.0.0; slot B is empty.");
        print!("{}", slot_table(&board.boot_state()?));
        println!("\n--- Story 0: a tampered release is refused ---");
    }
    let refusal = tampered_release_is_refused(&mut board, tampered, Release::Upgrade, &mut print)?;
    if narrate {
        println!("\n--- Story 1: upgrade → trial → commit ---");
    }
    let upgrade = upgrade_and_commit(&mut board, source, &mut print)?;
    if narrate {
        println!("\n--- Story 2: trial → failed boots → rollback ---");
    }
    let failed = failed_trial_rolls_back(&mut board, source, &mut print)?;
    let running = board
        .running()
        .map_or_else(|| "nothing".to_string(), |s| s.to_string());
    if narrate {
        println!(
            "\nThe broken release got {} boot attempt(s); the device is back on slot {running} \
             without anyone on site.",
            failed.boots_of_new_slot
        );
    }
    Ok(Summary {
        backend,
        tampered_refused: refusal.boot_state_unchanged,
        upgrade_fetched: upgrade.install.bytes_fetched,
        upgrade_written: upgrade.install.bytes_written,
        committed_slot: upgrade.slot.to_string(),
        broken_boots: failed.boots_of_new_slot,
        rolled_back_to: running,
    })
}

fn summary_table(rows: &[Summary]) -> String {
    let mut out = format!(
        "{:<9} {:<17} {:<26} {}\n",
        "backend", "tampered 1.1.0", "upgrade 1.1.0 (delta)", "broken 1.2.0"
    );
    for r in rows {
        let name = match r.backend {
            Backend::Uboot => "U-Boot",
            Backend::Grub => "GRUB",
            Backend::Gpt => "GPT",
            Backend::Tryboot => "tryboot",
        };
        let tampered = if r.tampered_refused {
            "refused"
        } else {
            "NOT REFUSED"
        };
        let upgrade = format!(
            "{:.2} of {:.2} MB, {} good",
            r.upgrade_fetched as f64 / 1e6,
            r.upgrade_written as f64 / 1e6,
            r.committed_slot
        );
        let broken = format!(
            "{} attempt(s), back on {}",
            r.broken_boots, r.rolled_back_to
        );
        let row = format!("{name:<9} {tampered:<17} {upgrade:<26} {broken}");
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}
