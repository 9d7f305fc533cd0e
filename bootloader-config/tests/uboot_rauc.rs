//! Interop with RAUC itself (its D-Bus service and CLI, U-Boot backend): RAUC reads the
//! environment we write with its own meaning, and what RAUC's `mark-bad` writes (it
//! also takes the slot out of `BOOT_ORDER`) loads as a bad slot.
//!
//! RAUC runs `fw_printenv`/`fw_setenv` from `PATH`; a wrapper directory points them at
//! this test's `fw_env.config`, so nothing outside the temp directory is touched.

use std::process::Command;

use skerry_boot_state::sim::Simulated;
use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootState, BootStore, FileMedium, SlotName, SlotStatus};

mod support {
    pub mod rauc;
    pub mod tools;
}

use support::rauc::{statuses, system_conf, Rauc};
use support::tools::need;

#[test]
fn rauc_reads_our_uboot_env_and_its_mark_bad_loads() {
    need("fw_setenv", "libubootenv-tool");
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("uboot.env");
    let layout = UbootLayout {
        offset: 0,
        size: 0x4000,
        redundant: true,
    };
    let config = dir.path().join("fw_env.config");
    std::fs::write(
        &config,
        format!("{e} 0x0 0x4000\n{e} 0x4000 0x4000\n", e = env.display()),
    )
    .unwrap();
    let defenv = dir.path().join("defenv");
    std::fs::write(&defenv, "").unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["fw_printenv", "fw_setenv"] {
        let wrapper = bin.join(tool);
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/{tool} -c '{}' -f '{}' \"$@\"\n",
                config.display(),
                defenv.display()
            ),
        )
        .unwrap();
        let status = Command::new("chmod")
            .arg("+x")
            .arg(&wrapper)
            .status()
            .unwrap();
        assert!(status.success());
    }

    let (a, b) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    let mut store = UbootEnvStore::new(FileMedium::create(&env), layout);
    let mut state = BootState::new(&[a.clone(), b.clone()], 3).unwrap();
    store.commit(&state).unwrap();
    let conf = system_conf(dir.path(), "bootloader=uboot");
    let rauc = Rauc::start(dir.path(), &conf, Some(&bin));
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));

    // Our trial of B: RAUC sees B as bootable and primary.
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(rauc.status(), ("B".into(), statuses("good", "good")));

    // RAUC's mark-bad takes B out of BOOT_ORDER; we load it as bad, at the end.
    rauc.cli(&["status", "mark-bad", "other"]);
    let loaded = store.load().unwrap();
    assert_eq!(loaded.status(&b).unwrap(), SlotStatus::Bad);
    assert_eq!(
        loaded.order().cloned().collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );

    // A new trial puts B back in front for both; using up its attempts makes it bad
    // for RAUC too, and its primary falls back to A.
    let mut state = loaded;
    state.begin_trial(&b).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(rauc.status().0, "B");
    for _ in 0..3 {
        assert_eq!(store.simulate_boot().unwrap(), b);
    }
    assert_eq!(rauc.status(), ("A".into(), statuses("good", "bad")));
    assert_eq!(store.simulate_boot().unwrap(), a);
}
