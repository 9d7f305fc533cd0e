//! Interop with RAUC itself (its D-Bus service and CLI, GRUB backend): RAUC reads the
//! block we write with its own meaning (a trial with attempts left is bootable, a used-up
//! one is not), and what RAUC's `mark-bad` writes loads as a bad slot.

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};

mod support {
    pub mod rauc;
    pub mod tools;
}

use support::rauc::{statuses, system_conf, Rauc};
use support::tools::need;

#[test]
fn rauc_reads_our_grub_env_and_its_mark_bad_loads() {
    need("grub-editenv", "grub-common");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("grubenv");
    let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    let mut store = GrubEnvStore::new(FileMedium::create(&env));
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    store.commit(&state).unwrap();
    let conf = system_conf(
        dir.path(),
        &format!("bootloader=grub\ngrubenv={}", env.display()),
    );
    let rauc = Rauc::start(dir.path(), &conf, None);
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));

    // Our trial of B with three attempts: bootable and primary for RAUC on each of them
    // but the last, which RAUC sees as started and not marked good.
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    for _ in 0..2 {
        assert_eq!(rauc.status(), ("B".into(), statuses("good", "good")));
        assert_eq!(store.simulate_boot().unwrap(), b);
    }
    assert_eq!(rauc.status(), ("B".into(), statuses("good", "good")));
    assert_eq!(store.simulate_boot().unwrap(), b);
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));
    assert_eq!(
        store.load().unwrap().status(&b).unwrap(),
        SlotStatus::Trial { tries_left: 0 }
    );
    assert_eq!(store.simulate_boot().unwrap(), a);

    // A new trial, then RAUC's mark-bad: we load B as bad.
    let mut state = store.load().unwrap();
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    rauc.cli(&["status", "mark-bad", "other"]);
    assert_eq!(store.load().unwrap().status(&b).unwrap(), SlotStatus::Bad);
    assert_eq!(store.simulate_boot().unwrap(), a);
}
