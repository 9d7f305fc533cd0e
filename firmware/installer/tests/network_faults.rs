//! The network fault matrix: an HTTP server that cuts connections at random offsets,
//! stalls, serves wrong bytes or a truncated pack. The install completes with the exact
//! image, or fails with a typed error; it never reports success for a wrong image.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::server::{Faults, TestServer};
use common::{edit, image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::transport::HttpTransport;
use skerry_installer::NoBootState;
use skerry_installer::{install, InstallError, RetryPolicy, Transport};

fn http(server: &TestServer) -> Arc<dyn Transport> {
    Arc::new(HttpTransport::new(
        &server.url(),
        Duration::from_millis(250),
    ))
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        attempts: 12,
        first_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(20),
    }
}

#[test]
fn full_and_delta_install_over_http() {
    let repo = TestRepo::new();
    let v1 = image(2 << 20, 21);
    let v2 = edit(&v1, 2, 10_000, 22);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let server = TestServer::start(repo.repo.dir.clone(), Faults::default());
    let a = repo.path().join("a");
    let b = repo.path().join("b");
    let mut opts = repo.options(http(&server), "rpi4", &a);
    opts.version = Some(semver::Version::new(1, 0, 0));
    let full = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), v1);
    let mut opts = repo.options(http(&server), "rpi4", &b);
    opts.seed = Some(a);
    let delta = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&b).unwrap(), v2);
    assert!(
        delta.bytes_fetched * 4 < full.bytes_fetched,
        "{delta:?} {full:?}"
    );
}

#[test]
fn cuts_stalls_and_wrong_bytes_are_resumed_to_the_exact_image() {
    let repo = TestRepo::new();
    let v1 = image(1 << 20, 23);
    repo.add("rpi4", "1.0.0", &v1);
    for seed in 1..=5u64 {
        let server = TestServer::start(
            repo.repo.dir.clone(),
            Faults {
                cut_percent: 40,
                stall_percent: 5,
                stall: Duration::from_millis(700),
                corrupt_pack_percent: 15,
                seed,
                ..Faults::default()
            },
        );
        let slot = repo.path().join(format!("slot-{seed}"));
        let mut opts = repo.options(http(&server), "rpi4", &slot);
        opts.state_dir = repo.path().join(format!("state-{seed}"));
        opts.retry = patient();
        let report = install(&opts, &mut NoBootState, &NoProgress)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {:?}", std::error::Error::source(&e)));
        assert_eq!(std::fs::read(&slot).unwrap(), v1, "seed {seed}");
        assert!(server.requests.load(std::sync::atomic::Ordering::SeqCst) > 4);
        assert_eq!(report.bytes_written, v1.len() as u64);
    }
}

#[test]
fn wrong_bytes_anywhere_complete_or_fail_cleanly() {
    let repo = TestRepo::new();
    let v1 = image(600_000, 24);
    repo.add("rpi4", "1.0.0", &v1);
    let (mut ok, mut refused) = (0, 0);
    for seed in 1..=8u64 {
        let server = TestServer::start(
            repo.repo.dir.clone(),
            Faults {
                cut_percent: 20,
                corrupt_any_percent: 20,
                seed,
                ..Faults::default()
            },
        );
        let slot = repo.path().join(format!("slot-{seed}"));
        let mut opts = repo.options(http(&server), "rpi4", &slot);
        opts.state_dir = repo.path().join(format!("state-{seed}"));
        opts.retry = patient();
        match install(&opts, &mut NoBootState, &NoProgress) {
            Ok(_) => {
                assert_eq!(
                    std::fs::read(&slot).unwrap(),
                    v1,
                    "seed {seed} reported success"
                );
                ok += 1;
            }
            Err(
                InstallError::Metadata { .. }
                | InstallError::HashMismatch { .. }
                | InstallError::Index { .. }
                | InstallError::TamperedChunk { .. }
                | InstallError::Fetch { .. },
            ) => refused += 1,
            Err(other) => panic!("seed {seed}: unexpected error {other}"),
        }
    }
    eprintln!("{ok} completed, {refused} refused");
    assert_eq!(ok + refused, 8);
    // The seeds are fixed: both outcomes must have been exercised.
    assert!(ok >= 1 && refused >= 1, "{ok} completed, {refused} refused");
}

#[test]
fn a_truncated_pack_fails_cleanly() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(500_000, 25));
    let server = TestServer::start(
        repo.repo.dir.clone(),
        Faults {
            truncate_packs_at: Some(50_000),
            ..Faults::default()
        },
    );
    let slot = repo.path().join("slot");
    let err = install(
        &repo.options(http(&server), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::Fetch { .. }), "{err}");
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(text.contains("image.pack"), "{text}");
}

#[test]
fn a_truncated_pack_over_file_fails_cleanly() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(500_000, 26));
    let pack = repo.find(".image.pack");
    let bytes = std::fs::read(&pack).unwrap();
    std::fs::write(&pack, &bytes[..bytes.len() / 3]).unwrap();
    let slot = repo.path().join("slot");
    let err = install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap_err();
    let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(
        text.contains("truncated") || text.contains("giving up"),
        "{text}"
    );
}

#[test]
fn a_server_without_range_support_still_works() {
    let repo = TestRepo::new();
    let v1 = image(1 << 20, 27);
    let v2 = edit(&v1, 1, 10_000, 28);
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let server = TestServer::start(
        repo.repo.dir.clone(),
        Faults {
            ignore_ranges: true,
            ..Faults::default()
        },
    );
    let seed = repo.path().join("seed");
    std::fs::write(&seed, &v1).unwrap();
    let slot = repo.path().join("slot");
    let mut opts = repo.options(http(&server), "rpi4", &slot);
    opts.seed = Some(seed);
    let report = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
    assert!(report.chunks_reused > 0);
}
