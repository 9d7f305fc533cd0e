//! Real servers' habits: S3's 403 for a missing file ends the root chain; 408, 429 and
//! 503 are retried after `Retry-After`; a server that ignores `Range` (like
//! `python3 -m http.server`) is detected, warned about, and a delta over it costs at
//! most one full download, every byte received counted, skipped ones included.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::server::{Faults, TestServer};
use common::{image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::transport::HttpTransport;
use skerry_installer::{install, NoBootState, Progress, Transport};

fn http(server: &TestServer) -> Arc<dyn Transport> {
    Arc::new(HttpTransport::new(&server.url(), Duration::from_secs(5)))
}

#[test]
fn a_403_for_the_next_root_ends_the_root_chain() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(50_000, 51));
    let server = TestServer::start(
        repo.repo.dir.clone(),
        Faults {
            forbid_missing: true,
            ..Faults::default()
        },
    );
    let slot = repo.path().join("slot");
    let r = install(
        &repo.options(http(&server), "rpi4", &slot),
        &mut NoBootState,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(r.version, "1.0.0");
}

#[test]
fn busy_answers_are_retried() {
    for (status, retry_after) in [(503, Some(0)), (429, None), (408, Some(0))] {
        let repo = TestRepo::new();
        repo.add("rpi4", "1.0.0", &image(50_000, 52));
        let server = TestServer::start(
            repo.repo.dir.clone(),
            Faults {
                busy_first: 3,
                busy_status: status,
                retry_after,
                ..Faults::default()
            },
        );
        let slot = repo.path().join("slot");
        let r = install(
            &repo.options(http(&server), "rpi4", &slot),
            &mut NoBootState,
            &NoProgress,
        )
        .unwrap_or_else(|e| panic!("HTTP {status}: {e}"));
        assert_eq!(r.version, "1.0.0");
    }
}

/// Keeps the warnings.
#[derive(Default)]
struct Warnings(Mutex<Vec<String>>);

impl Progress for Warnings {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(message.into());
    }
}

#[test]
fn a_delta_over_a_server_ignoring_ranges_costs_at_most_one_full_download() {
    let repo = TestRepo::new();
    let v1 = image(3 << 20, 53);
    // Changed in the middle and near the end: each range request would cost the pack
    // up to its end, and the pack is skipped nearly whole to reach the last change.
    let mut v2 = v1.clone();
    for at in [v2.len() / 2, v2.len() - 30_000] {
        for b in &mut v2[at..at + 20_000] {
            *b = b.wrapping_mul(31).wrapping_add(7);
        }
    }
    repo.add("rpi4", "1.0.0", &v1);
    repo.add("rpi4", "1.1.0", &v2);
    let pack = repo
        .files()
        .into_iter()
        .find(|p| {
            p.to_string_lossy().contains("/1.1.0/") && p.to_string_lossy().ends_with(".image.pack")
        })
        .unwrap();
    let pack_len = std::fs::metadata(repo.repo.dir.join(pack)).unwrap().len();
    let server = TestServer::start(
        repo.repo.dir.clone(),
        Faults {
            ignore_ranges: true,
            ..Faults::default()
        },
    );
    let seed = repo.path().join("seed");
    std::fs::write(&seed, &v1).unwrap();

    let full_slot = repo.path().join("full");
    let mut full = repo.options(http(&server), "rpi4", &full_slot);
    full.state_dir = repo.path().join("state-full");
    let full = install(&full, &mut NoBootState, &NoProgress).unwrap();

    let slot = repo.path().join("slot");
    let mut opts = repo.options(http(&server), "rpi4", &slot);
    opts.seed = Some(seed);
    let warnings = Warnings::default();
    let delta = install(&opts, &mut NoBootState, &warnings).unwrap();
    assert_eq!(std::fs::read(&slot).unwrap(), v2);
    assert!(delta.chunks_reused > 0);
    assert_eq!(warnings.0.lock().unwrap().len(), 1, "warned once");
    assert!(
        delta.bytes_fetched <= full.bytes_fetched,
        "delta {} bytes, full {} bytes",
        delta.bytes_fetched,
        full.bytes_fetched
    );
    // The bytes skipped to reach the changed chunks arrived too, and are counted.
    assert!(
        delta.bytes_fetched >= pack_len * 9 / 10,
        "{} bytes counted for a pack of {pack_len} skipped nearly whole",
        delta.bytes_fetched
    );
}
