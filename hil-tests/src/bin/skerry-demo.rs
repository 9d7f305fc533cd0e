//! The local demo of the update loop: each bootloader backend on a simulated board,
//! through upgrade → trial → commit and trial → failed boots → rollback, printing the
//! slot table after every step.

use skerry_boot_state::report::slot_table;
use skerry_hil::scenario::{failed_trial_rolls_back, upgrade_and_commit, Step};
use skerry_hil::Backend;

fn main() -> anyhow::Result<()> {
    for backend in Backend::ALL {
        let dir = tempfile::tempdir()?;
        println!("==================================================================");
        println!("{backend}");
        println!("  store: {}", backend.spec(dir.path()));
        println!("==================================================================");
        let mut board = backend.board(dir.path())?;
        println!("\nFactory state: slot A holds the factory image and is good; slot B is empty.");
        print!("{}", slot_table(&board.boot_state()?));
        let mut print = |s: Step| {
            println!("\n* {}", s.what);
            print!("{}", slot_table(&s.state));
        };
        println!("\n--- Story 1: upgrade → trial → commit ---");
        upgrade_and_commit(&mut board, &mut print)?;
        println!("\n--- Story 2: trial → failed boots → rollback ---");
        let boots = failed_trial_rolls_back(&mut board, &mut print)?;
        println!(
            "\nThe broken image got {boots} boot attempt(s); the device is back on {} without anyone on site.\n",
            board
                .running()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "nothing".into())
        );
    }
    Ok(())
}
