//! The local demo of the update loop: releases are signed into a TUF repository, and on
//! each bootloader backend a simulated board installs them as deltas into its inactive
//! slot, through upgrade → trial → commit and trial → failed boots → rollback, printing
//! the slot table after every step.

use skerry_boot_state::report::slot_table;
use skerry_hil::scenario::{failed_trial_rolls_back, upgrade_and_commit, Step, UpdateSource};
use skerry_hil::updates::{SignedReleases, BOARD};
use skerry_hil::{images, Backend};

fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let factory = images::factory();
    let releases = SignedReleases::publish(work.path(), &factory)?;
    println!(
        "Signed repository for board {BOARD}: releases 1.1.0 (healthy) and 1.2.0 (broken), \
         {} MiB images cut into zstd chunks, ed25519-signed TUF metadata.\n",
        images::IMAGE_SIZE >> 20
    );
    for backend in Backend::ALL {
        let dir = tempfile::tempdir()?;
        println!("==================================================================");
        println!("{backend}");
        println!("  store: {}", backend.spec(dir.path()));
        println!("==================================================================");
        let mut board = backend.board(dir.path(), &factory)?;
        let source = UpdateSource {
            releases: &releases,
            device_state: &dir.path().join("device-state"),
        };
        println!(
            "\nFactory state: slot A holds the factory image 1.0.0 and is good; slot B is empty."
        );
        print!("{}", slot_table(&board.boot_state()?));
        let mut print = |s: Step| {
            println!("\n* {}", s.what);
            print!("{}", slot_table(&s.state));
        };
        println!("\n--- Story 1: upgrade → trial → commit ---");
        upgrade_and_commit(&mut board, source, &mut print)?;
        println!("\n--- Story 2: trial → failed boots → rollback ---");
        let failed = failed_trial_rolls_back(&mut board, source, &mut print)?;
        println!(
            "\nThe broken release got {} boot attempt(s); the device is back on slot {} without anyone on site.\n",
            failed.boots_of_new_slot,
            board
                .running()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "nothing".into())
        );
    }
    Ok(())
}
