//! The A/B stories on a simulated board, on every bootloader backend, with releases
//! installed as deltas from a signed repository.

use skerry_boot_state::{SlotName, SlotStatus};
use skerry_hil::scenario::{failed_trial_rolls_back, upgrade_and_commit, Step, UpdateSource};
use skerry_hil::updates::SignedReleases;
use skerry_hil::{images, Backend, BoardError};

fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

#[test]
fn upgrade_commits_and_failed_trial_rolls_back_on_every_backend() {
    let work = tempfile::tempdir().unwrap();
    let factory = images::factory();
    let releases = SignedReleases::publish(work.path(), &factory).unwrap();
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut board = backend.board(dir.path(), &factory).unwrap();
        let source = UpdateSource {
            releases: &releases,
            device_state: &dir.path().join("device-state"),
        };
        let mut steps: Vec<Step> = Vec::new();

        let upgrade = upgrade_and_commit(&mut board, source, &mut |s| steps.push(s)).unwrap();
        assert_eq!(upgrade.slot, slot("B"), "{backend}");
        assert_eq!(upgrade.install.version, "1.1.0", "{backend}");
        // A delta: most chunks come from slot A, and far fewer bytes cross the wire.
        assert!(
            upgrade.install.chunks_reused > upgrade.install.chunks_fetched,
            "{backend}"
        );
        assert!(
            upgrade.install.bytes_fetched * 4 < upgrade.install.bytes_written,
            "{backend}"
        );
        let state = board.boot_state().unwrap();
        assert_eq!(
            state.status(&slot("B")).unwrap(),
            SlotStatus::Good,
            "{backend}"
        );
        assert_eq!(state.next_boot(), Some(&slot("B")), "{backend}");
        assert_eq!(board.running(), Some(&slot("B")), "{backend}");

        let failed = failed_trial_rolls_back(&mut board, source, &mut |s| steps.push(s)).unwrap();
        assert_eq!(failed.slot, slot("A"), "{backend}");
        let state = board.boot_state().unwrap();
        assert_eq!(
            usize::from(state.tries()),
            failed.boots_of_new_slot,
            "{backend}"
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
    let mut board = Backend::Uboot
        .board(dir.path(), &images::factory())
        .unwrap();
    let running = board.power_on().unwrap();
    let before = board.boot_state().unwrap();
    let mut written = false;
    let err = board
        .install_with(&running, |_, _| {
            written = true;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, BoardError::WriteToBootedSlot { .. }), "{err}");
    assert!(!written);
    assert_eq!(board.boot_state().unwrap(), before);
}

#[test]
fn a_tampered_release_is_refused_on_every_backend() {
    use skerry_hil::scenario::tampered_release_is_refused;
    use skerry_hil::updates::Release;
    let work = tempfile::tempdir().unwrap();
    let factory = images::factory();
    let releases = SignedReleases::publish(work.path(), &factory).unwrap();
    let mirror = releases
        .tampered_mirror(work.path(), Release::Upgrade)
        .unwrap();
    for backend in Backend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut board = backend.board(dir.path(), &factory).unwrap();
        let state = dir.path().join("device-state");
        let tampered = UpdateSource {
            releases: &mirror,
            device_state: &state,
        };
        let refusal =
            tampered_release_is_refused(&mut board, tampered, Release::Upgrade, &mut |_| {})
                .unwrap();
        assert_eq!(refusal.slot, slot("B"), "{backend}");
        assert!(refusal.boot_state_unchanged, "{backend}");
        assert!(
            refusal.reason.contains("chunk"),
            "{backend}: {}",
            refusal.reason
        );
        assert_eq!(
            board.boot_state().unwrap().status(&slot("B")).unwrap(),
            SlotStatus::Bad,
            "{backend}"
        );
        // The genuine release still installs afterwards.
        let source = UpdateSource {
            releases: &releases,
            device_state: &state,
        };
        let upgrade = upgrade_and_commit(&mut board, source, &mut |_| {}).unwrap();
        assert_eq!(upgrade.install.version, "1.1.0", "{backend}");
    }
}

/// The skerryd binary the demo drives: `SKERRYD_BIN`, or the one `cargo test --workspace`
/// built beside this package's binaries (skerryd's own tests need it, so it is fresh).
fn skerryd_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("SKERRYD_BIN") {
        return path.into();
    }
    let beside = std::path::Path::new(env!("CARGO_BIN_EXE_skerry-demo")).with_file_name("skerryd");
    assert!(
        beside.is_file(),
        "the demo drives skerryd: run `cargo build -p skerryd` (cargo test --workspace does) or set SKERRYD_BIN; looked for {}",
        beside.display()
    );
    beside
}

/// The demo as a user runs it: one backend told in full, a legend, and a summary row for
/// every backend, every step through skerryd's API.
#[test]
fn the_demo_narrates_one_backend_and_sums_up_all() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_skerry-demo"))
        .env("SKERRYD_BIN", skerryd_binary())
        .env_remove("SKERRY_DEMO_NARRATE")
        .output()
        .expect("skerry-demo runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("How to read a slot table"), "{text}");
    assert!(text.contains("a tampered mirror is refused"), "{text}");
    let summary = text
        .split("=== The same stories on every bootloader, through skerryd's API ===")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in: {text}"));
    for name in ["U-Boot", "GRUB", "GPT", "tryboot"] {
        let row = summary
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in: {summary}"));
        assert!(row.contains("refused, state kept"), "{row}");
        assert!(row.contains("B good"), "{row}");
        assert!(row.contains("back on B"), "{row}");
        assert!(row.contains("reverted"), "{row}");
    }
    assert_eq!(
        text.matches(", step by step ===").count(),
        1,
        "one backend narrated: {text}"
    );
    let lines = text.lines().count();
    assert!(lines < 250, "the demo prints {lines} lines");
}
