//! A power cut between saving the rotated root and saving the device state must not
//! keep versions that the rotation was meant to forget (TUF 1.0 §5.3.11): the device
//! would refuse the recovered repository's timestamps for ever.

mod common;

use std::time::SystemTime;

use common::{image, TestRepo};
use serde_json::Value;
use skerry_installer::install;
use skerry_installer::install::NoProgress;
use skerry_installer::NoBootState;

#[test]
fn versions_fast_forwarded_before_a_rotation_are_forgotten_after_a_power_cut() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 21));
    let slot = repo.path().join("slot");
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    install(&opts, &mut NoBootState, &NoProgress).expect("the first install succeeds");

    // An attacker holding the timestamp and snapshot keys fast-forwarded the device.
    let state_path = repo.repo_state(&opts).join("state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["versions"]["timestamp"] = 1000.into();
    state["versions"]["snapshot"] = 1000.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    // The repository recovers by rotating every key ...
    let new_keys = skerry_release::KeySet::generate(&repo.path().join("keys2"), 1).unwrap();
    skerry_release::rotate_root(
        &repo.keys,
        &new_keys,
        &repo.repo,
        1,
        &skerry_release::Expiries::default(),
        SystemTime::now(),
    )
    .unwrap();
    // ... and the device saw root 2, saved it, and lost power before saving its state.
    std::fs::copy(
        repo.repo.metadata_dir().join("2.root.json"),
        repo.repo_state(&opts).join("root.json"),
    )
    .unwrap();

    let report =
        install(&opts, &mut NoBootState, &NoProgress).expect("the recovered repository installs");
    assert_eq!(report.version, "1.0.0");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert!(
        state["versions"]["timestamp"].as_u64().unwrap() < 1000,
        "the fast-forwarded timestamp version was kept: {state}"
    );
}
