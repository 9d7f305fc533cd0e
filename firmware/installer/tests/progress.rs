//! Progress is shown during the metadata walk too: every metadata byte received is
//! reported under the `metadata` phase before the image is written.

mod common;

use std::sync::Mutex;

use common::{image, TestRepo};
use skerry_installer::{install, NoBootState, Progress};

/// Bytes reported per phase, in order.
#[derive(Default)]
struct Phases(Mutex<Vec<(String, u64)>>);

impl Progress for Phases {
    fn phase(&self, name: &str, _: u64) {
        self.0.lock().unwrap().push((name.into(), 0));
    }
    fn advance(&self, bytes: u64) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.1 += bytes;
        }
    }
}

#[test]
fn metadata_bytes_are_reported_as_they_arrive() {
    let repo = TestRepo::new();
    repo.add("rpi4", "1.0.0", &image(100_000, 71));
    let current = skerry_release::Repository::current(&repo.repo).unwrap();
    let md = repo.repo.metadata_dir();
    let metadata: u64 = [
        "timestamp.json".to_string(),
        format!("{}.snapshot.json", current.snapshot.signed.version),
        format!("{}.targets.json", current.targets.signed.version),
    ]
    .iter()
    .map(|f| std::fs::metadata(md.join(f)).unwrap().len())
    .sum();
    let slot = repo.path().join("slot");
    let phases = Phases::default();
    install(
        &repo.options(repo.file_transport(), "rpi4", &slot),
        &mut NoBootState,
        &phases,
    )
    .unwrap();
    let phases = phases.0.into_inner().unwrap();
    assert_eq!(phases[0].0, "metadata", "{phases:?}");
    assert!(
        phases[0].1 >= metadata,
        "{phases:?}: {metadata} metadata bytes"
    );
    assert!(phases.iter().any(|(p, _)| p == "writing"), "{phases:?}");
}
