//! Resume across runs: an install that gave up (here, the pack was cut short) left the
//! slot holding the image's first part; the rerun reuses those verified chunks instead
//! of fetching them again, and an unfinished slot can never be committed.

mod common;

use common::server::{Faults, TestServer};
use common::{image, TestRepo};
use skerry_installer::install::NoProgress;
use skerry_installer::state::record_commit;
use skerry_installer::transport::HttpTransport;
use skerry_installer::{install, InstallError, NoBootState};

#[test]
fn a_rerun_after_giving_up_reuses_what_the_slot_holds() {
    let repo = TestRepo::new();
    let img = image(3 << 20, 61);
    repo.add("rpi4", "1.0.0", &img);
    let pack_len = std::fs::metadata(repo.find(".image.pack")).unwrap().len();
    let slot = repo.path().join("slot");
    let cut = TestServer::start(
        repo.repo.dir.clone(),
        Faults {
            truncate_packs_at: Some(pack_len * 6 / 10),
            ..Faults::default()
        },
    );
    let transport = |server: &TestServer| {
        std::sync::Arc::new(HttpTransport::new(
            &server.url(),
            std::time::Duration::from_secs(5),
        ))
    };
    let mut opts = repo.options(transport(&cut), "rpi4", &slot);
    opts.slot_name = Some("B".into());
    let err = install(&opts, &mut NoBootState, &NoProgress).unwrap_err();
    assert!(matches!(err, InstallError::Fetch { .. }), "{err}");
    let err = record_commit(&opts.state_dir, "B").unwrap_err();
    assert!(matches!(err, InstallError::Unfinished { .. }), "{err}");

    let whole = TestServer::start(repo.repo.dir.clone(), Faults::default());
    opts.transport = transport(&whole);
    let r = install(&opts, &mut NoBootState, &NoProgress).unwrap();
    assert!(r.resumed);
    assert_eq!(std::fs::read(&slot).unwrap(), img);
    // About 60% of the pack was written before; only the rest is fetched.
    assert!(
        r.bytes_fetched < pack_len * 6 / 10,
        "fetched {} of a {pack_len}-byte pack",
        r.bytes_fetched
    );
    assert!(r.chunks_reused > 0);
    // Verified now, the slot's release commits.
    assert!(record_commit(&opts.state_dir, "B").unwrap().is_some());
}
