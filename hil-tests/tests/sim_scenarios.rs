//! The A/B stories on a simulated board, on every bootloader backend.

use skerry_boot_state::{SlotName, SlotStatus};
use skerry_hil::scenario::{failed_trial_rolls_back, upgrade_and_commit, Step};
use skerry_hil::{Backend, BoardError};

fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

#[test]
fn upgrade_commits_and_failed_trial_rolls_back_on_every_backend() {
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut board = backend.board(dir.path()).unwrap();
        let mut steps: Vec<Step> = Vec::new();

        let upgraded = upgrade_and_commit(&mut board, &mut |s| steps.push(s)).unwrap();
        assert_eq!(upgraded, slot("B"), "{backend}");
        let state = board.boot_state().unwrap();
        assert_eq!(
            state.status(&slot("B")).unwrap(),
            SlotStatus::Good,
            "{backend}"
        );
        assert_eq!(state.next_boot(), Some(&slot("B")), "{backend}");
        assert_eq!(board.running(), Some(&slot("B")), "{backend}");

        let boots = failed_trial_rolls_back(&mut board, &mut |s| steps.push(s)).unwrap();
        let state = board.boot_state().unwrap();
        assert_eq!(
            usize::from(state.tries()),
            boots,
            "{backend}: boots of the broken image"
        );
        assert_eq!(
            state.status(&slot("A")).unwrap(),
            SlotStatus::Bad,
            "{backend}"
        );
        assert_eq!(board.running(), Some(&slot("B")), "{backend}: rolled back");
        assert!(steps.iter().all(|s| s.state.check().is_ok()), "{backend}");
    }
}

#[test]
fn the_running_slot_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut board = Backend::Uboot.board(dir.path()).unwrap();
    let running = board.power_on().unwrap();
    let before = board.boot_state().unwrap();
    let err = board.install(&running, b"anything").unwrap_err();
    assert!(matches!(err, BoardError::WriteToBootedSlot { .. }), "{err}");
    assert_eq!(board.boot_state().unwrap(), before);
}
