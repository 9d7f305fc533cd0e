//! Versions and channels: no channel means the default channel and no pre-release; the
//! downgrade check compares with the committed version (so a fix published after a
//! rollback installs); an explicit downgrade is a flag and still needs valid signed
//! metadata; and the state of one repository never refuses another's releases.

mod common;

use common::{image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::state::record_commit;
use skerry_installer::{install, Downgrade, InstallError, NoBootState};

#[test]
fn no_channel_takes_the_default_channel_and_no_pre_release() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(50_000, 1));
    repo.add_on("rpi4", "2.0.0", "beta", &image(50_000, 2));
    repo.add("rpi4", "1.1.0-rc.1", &image(50_000, 3));
    let slot = repo.path().join("slot");
    let opts = repo.options(repo.file_transport(), "rpi4", &slot);
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.0.0");

    let mut on_beta = repo.options(repo.file_transport(), "rpi4", &slot);
    on_beta.channel = Some("beta".into());
    let r = install(&on_beta, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "2.0.0");

    // Asked for by its exact version, a pre-release of the default channel installs.
    let mut exact = repo.options(repo.file_transport(), "rpi4", &slot);
    exact.version = Some("1.1.0-rc.1".parse().unwrap());
    let r = install(&exact, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.1.0-rc.1");
}

#[test]
fn a_fix_published_after_a_rollback_installs_but_older_than_committed_does_not() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(50_000, 4));
    let (a, b) = (repo.path().join("a"), repo.path().join("b"));
    let mut opts = repo.options(repo.file_transport(), "rpi4", &a);
    opts.slot_name = Some("A".into());
    install(&opts, &mut NoBootState, &NoProgress).unwrap();
    let committed = record_commit(&opts.state_dir, "A").unwrap().unwrap();
    assert_eq!(committed.version, "1.0.0");

    // 1.2.0 is installed into B, its trial fails and the device rolls back to A.
    repo.add("rpi4", "1.2.0", &image(50_000, 5));
    let mut into_b = repo.options(repo.file_transport(), "rpi4", &b);
    into_b.slot_name = Some("B".into());
    install(&into_b, &mut NoBootState, &NoProgress).unwrap();

    // The fix is 1.1.0: older than the failed 1.2.0, newer than the committed 1.0.0.
    repo.add("rpi4", "1.1.0", &image(50_000, 6));
    into_b.version = Some(semver::Version::new(1, 1, 0));
    let r = install(&into_b, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.1.0");
    record_commit(&opts.state_dir, "B").unwrap().unwrap();

    // Now 1.1.0 is committed: 1.0.0 is a downgrade, refused unless allowed.
    opts.version = Some(semver::Version::new(1, 0, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Downgrade { .. }), "{err}");
    opts.downgrade = Downgrade::Allow;
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.0.0");
}

#[test]
fn an_allowed_downgrade_still_needs_valid_signed_metadata() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(50_000, 7));
    let slot = repo.path().join("a");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.downgrade = Downgrade::Allow;
    opts.version = Some(semver::Version::new(0, 9, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::NoRelease { .. }), "{err}");

    let current = skerry_release::Repository::current(&repo.repo).unwrap();
    let targets = repo
        .repo
        .metadata_dir()
        .join(format!("{}.targets.json", current.targets.signed.version));
    let text = std::fs::read_to_string(&targets).unwrap();
    std::fs::write(&targets, text.replace("1.0.0", "0.9.0")).unwrap();
    opts.version = Some(semver::Version::new(0, 9, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(
        matches!(
            err,
            InstallError::Metadata { .. } | InstallError::Fetch { .. }
        ),
        "{err}"
    );
}

#[test]
fn one_state_dir_serves_two_repositories() {
    let first = TestRepo::new();
    for (i, v) in ["1.0.0", "2.0.0", "3.0.0"].into_iter().enumerate() {
        first.add("rpi4", v, &image(30_000, 10 + i as u64));
    }
    let second = TestRepo::new();
    second.add("rpi4", "1.0.0", &image(30_000, 20));
    let state = first.path().join("shared-state");
    let slot = first.path().join("a");

    let mut opts = first.options(first.file_transport(), "rpi4", &slot);
    opts.state_dir = state.clone();
    opts.slot_name = Some("A".into());
    install(&opts, &mut NoBootState, &NoProgress).unwrap();
    record_commit(&state, "A").unwrap().unwrap();

    // The second repository's metadata versions and releases are all lower.
    let mut opts = second.options(second.file_transport(), "rpi4", &slot);
    opts.state_dir = state.clone();
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(r.version, "1.0.0");
}

#[test]
fn a_new_image_shipping_the_rotated_root_keeps_the_repository_state() {
    let mut repo = TestRepo::new();
    repo.add("rpi4", "2.0.0", &image(30_000, 30));
    let slot = repo.path().join("a");
    let mut opts = repo.options(repo.file_transport(), "rpi4", &slot);
    opts.slot_name = Some("A".into());
    install(&opts, &mut NoBootState, &NoProgress).unwrap();
    record_commit(&opts.state_dir, "A").unwrap().unwrap();

    // Every key rotates, the root keys included; the device follows the rotation.
    let new_keys = skerry_release::KeySet::generate(&repo.path().join("keys2"), 1).unwrap();
    skerry_release::rotate_root(
        &repo.keys,
        &new_keys,
        &repo.repo,
        1,
        &skerry_release::Expiries::default(),
        std::time::SystemTime::now(),
    )
    .unwrap();
    repo.keys = new_keys;
    repo.add("rpi4", "1.0.0", &image(30_000, 31));
    opts.version = Some(semver::Version::new(1, 0, 0));
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Downgrade { .. }), "{err}");

    // A new image ships root 2 as its trusted root: same repository, same state.
    opts.trusted_root = std::fs::read(repo.repo.metadata_dir().join("2.root.json")).unwrap();
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Downgrade { .. }), "{err}");
}
