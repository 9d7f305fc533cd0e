//! Debian's real `swupdate` (suricatta, hawkBit mode) against the real `skerry-server`
//! binary on 127.0.0.1: it polls with its target token, takes the rollout's deployment,
//! downloads the release's `.swu` (made by `skerry_release::swu`, CMS-signed), verifies
//! it against `-k release.pem`, writes the raw image into a file slot and reports; after
//! a "reboot" (a restart with `-c 2`, as SWUpdate does without a bootloader state store)
//! it reports success and the server moves the device to 2.0.0 and counts it. A second
//! release whose `.swu` a stranger's key signed is refused by swupdate, which reports the
//! failure; the server records it with swupdate's reason and the rollout counts it (and
//! pauses itself). A third release's deployment, canceled by aborting its rollout, is
//! confirmed canceled by swupdate and not taken for a success. Needs Debian's `swupdate`
//! and `openssl` (scripts/deps/ddi.apt); the processes are in `swupdate_support/`.

mod support;
mod swupdate_support;

use std::path::Path;

use semver::Version;
use skerry_fleet_store::{ActionState, DdiStore, FleetStore, SqliteStore};
use skerry_release::swu::{write_swu, SwuSpec};
use skerry_release::Expiries;
use skerry_rollout::{PauseReason, RolloutState};

use swupdate_support::{cert, need, operator, start_server, swupdate, wait_for, Auth};

/// The server's gateway token (`DIR/keys/ddi-gateway.token`).
const GATEWAY: &str = "gw-5b1f0c9e7d2a4b3c";
/// The file slot's size: larger than an image (200 000 bytes), as a partition is.
const SLOT_BYTES: usize = 256 * 1024;

/// Whether the slot holds `image` at its start and its old zeros after it.
fn slot_holds(slot: &Path, image: &Path) -> bool {
    let (slot, image) = (std::fs::read(slot).unwrap(), std::fs::read(image).unwrap());
    slot.len() == SLOT_BYTES
        && slot.starts_with(&image)
        && slot[image.len()..].iter().all(|&b| b == 0)
}

fn kinds(store: &SqliteStore) -> Vec<String> {
    store
        .timeline("dev1")
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

fn rollout(store: &SqliteStore, id: &str) -> skerry_fleet_store::RolloutWithStats {
    store
        .rollouts()
        .unwrap()
        .into_iter()
        .find(|r| r.rollout.id == id)
        .unwrap()
}

#[test]
fn swupdate_takes_a_deployment_reports_success_then_refuses_a_stranger_swu() {
    need("swupdate");
    need("openssl");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("srv");
    let keys = d.join("offline-keys");
    support::publish(
        &data,
        &keys,
        &[
            ("2.0.0", "stable"),
            ("3.0.0", "stable"),
            ("4.0.0", "stable"),
        ],
        &Expiries::default(),
    );
    cert(d, "release");
    cert(d, "stranger");
    let slot = d.join("slot-b.img");
    let slot_s = slot.to_str().unwrap().to_string();
    // The slot is a fixed-size "partition" (swupdate's raw handler does not create it).
    std::fs::write(&slot, vec![0u8; SLOT_BYTES]).unwrap();
    let swu_dir = data.join("swu/pi");
    let image = |i: usize| keys.join(format!("image-{i}"));
    let spec = |version: &str, image: std::path::PathBuf, signer: &str| {
        let key = d.join(format!("{signer}.key"));
        let cert = d.join(format!("{signer}.pem"));
        write_swu(
            &SwuSpec {
                version,
                board: "pi",
                image: &image,
                device: &slot_s,
                key_pem: &key,
                cert_pem: &cert,
            },
            &swu_dir,
        )
        .unwrap()
    };
    spec("2.0.0", image(0), "release");
    spec("3.0.0", image(1), "stranger");
    spec("4.0.0", image(2), "release");

    std::fs::create_dir_all(data.join("keys")).unwrap();
    std::fs::write(data.join("keys/ddi-gateway.token"), GATEWAY).unwrap();
    let (mut server, addr) = start_server(&data);
    let token = operator(
        &data,
        &["ddi", "add", "dev1", "--board", "pi", "--version", "1.0.0"],
    );
    let token = token.trim();
    let rollout_args = |id: &'static str, version: &'static str| {
        [
            "rollout",
            "create",
            "--id",
            id,
            "--board",
            "pi",
            "--version",
            version,
            "--waves",
            "0:100%",
            "--max-bad",
            "50%",
            "--min-sample",
            "1",
        ]
    };
    operator(&data, &rollout_args("r2", "2.0.0"));
    let store = SqliteStore::open(&data.join("fleet.db")).unwrap();

    // First boot: poll, deployment, download, verify, install into the slot, then the
    // post-update command (where a device reboots).
    let mut device = swupdate(d, addr, Auth::Target(token), None);
    let rebooted = d.join("rebooted");
    wait_for(
        "swupdate's post-update command",
        &[&device, &server],
        || {
            let k = kinds(&store);
            assert!(
                !k.contains(&"failed".to_string()),
                "{k:?}\n{}",
                device.log()
            );
            rebooted.exists()
        },
    );
    device.stop();
    println!("--- swupdate ---\n{}", device.log());
    assert!(
        slot_holds(&slot, &image(0)),
        "the slot does not hold the 2.0.0 image"
    );
    let first = device.log();
    let k = kinds(&store);
    assert!(
        k.contains(&"offered".to_string()) && k.contains(&"downloading".to_string()),
        "{k:?}\n{first}"
    );
    assert!(!k.contains(&"committed".to_string()), "{k:?}");
    // The configData it sent from its identify section.
    let attrs = store.ddi_attributes("dev1").unwrap();
    assert_eq!(
        attrs.as_ref().and_then(|a| a.get("hw")).map(String::as_str),
        Some("rev2"),
        "{attrs:?}"
    );

    // After the "reboot": swupdate confirms the update (-c 2), this time as the gateway
    // acting for dev1, and the server counts it.
    let mut device = swupdate(d, addr, Auth::Gateway(GATEWAY), Some("2"));
    wait_for(
        "the success on the device's timeline",
        &[&device, &server],
        || kinds(&store).contains(&"committed".to_string()),
    );
    device.stop();
    println!("--- swupdate ---\n{}", device.log());
    assert_eq!(
        store.device("dev1").unwrap().unwrap().version,
        Version::new(2, 0, 0)
    );
    let r2 = rollout(&store, "r2");
    assert_eq!(
        (
            r2.stats[0].started,
            r2.stats[0].committed,
            r2.stats[0].failed
        ),
        (1, 1, 0)
    );

    // 3.0.0's .swu is signed by a stranger: swupdate refuses it and reports the failure.
    std::fs::remove_file(&rebooted).unwrap();
    operator(&data, &rollout_args("r3", "3.0.0"));
    let mut device = swupdate(d, addr, Auth::Target(token), None);
    wait_for(
        "the failure on the device's timeline",
        &[&device, &server],
        || {
            store
                .timeline("dev1")
                .unwrap()
                .iter()
                .any(|e| e.kind == "failed" && e.version == "3.0.0")
        },
    );
    device.stop();
    println!("--- swupdate ---\n{}", device.log());
    let steps: Vec<_> = store
        .timeline("dev1")
        .unwrap()
        .into_iter()
        .filter(|e| e.version == "3.0.0")
        .collect();
    let failed = steps.iter().find(|e| e.kind == "failed").unwrap();
    // swupdate's closing feedback names what failed; why (the signature) it sends either
    // there or in its install log (a `proceeding` feedback just before), depending on
    // which of its readers took the error line first: on the timeline either way.
    assert!(
        failed.detail.contains("closed, failure")
            && failed.detail.contains("No suitable .swu image found"),
        "{failed:?}"
    );
    assert!(
        steps
            .iter()
            .any(|e| e.detail.contains("Authentication of all signatures failed")),
        "the refusal's reason is not on the timeline: {steps:#?}\n{}",
        device.log()
    );
    assert!(!rebooted.exists(), "swupdate ran its post-update command");
    assert!(
        slot_holds(&slot, &image(0)),
        "the refused image was written into the slot"
    );
    let r3 = rollout(&store, "r3");
    assert_eq!((r3.stats[0].started, r3.stats[0].failed), (1, 1));
    // 1 of 1 bad is over the 50 % threshold: the rollout stopped itself.
    assert!(
        matches!(
            r3.rollout.state,
            RolloutState::Paused {
                reason: PauseReason::Health { bad: 1, .. },
                ..
            }
        ),
        "{:?}",
        r3.rollout.state
    );
    assert_eq!(
        store.device("dev1").unwrap().unwrap().version,
        Version::new(2, 0, 0)
    );

    // 4.0.0 is offered (its action opened by one poll), then its rollout is aborted:
    // swupdate's next poll sees cancelAction and confirms the cancel (`closed`+`success`
    // on cancelAction/{id}/feedback), which is no success of the deployment.
    operator(&data, &rollout_args("r4", "4.0.0"));
    let poll = support::get(
        addr,
        "/DEFAULT/controller/v1/dev1",
        &[("Authorization", &format!("TargetToken {token}"))],
    );
    let body = String::from_utf8_lossy(&poll.body).to_string();
    assert!(body.contains("deploymentBase"), "{body}");
    let action = store.ddi_pending_action("dev1").unwrap().unwrap();
    assert_eq!(action.version, Version::new(4, 0, 0));
    operator(&data, &["rollout", "abort", "r4"]);
    let mut device = swupdate(d, addr, Auth::Target(token), None);
    wait_for("the cancel confirmed", &[&device, &server], || {
        store.ddi_action("dev1", action.id).unwrap().unwrap().state != ActionState::Open
            && store.ddi_action("dev1", action.id).unwrap().unwrap().state != ActionState::Canceling
    });
    device.stop();
    println!("--- swupdate ---\n{}", device.log());
    assert_eq!(
        store.ddi_action("dev1", action.id).unwrap().unwrap().state,
        ActionState::Canceled
    );
    assert_eq!(
        store.device("dev1").unwrap().unwrap().version,
        Version::new(2, 0, 0),
        "a confirmed cancel moved the device to the canceled release"
    );
    assert_eq!(rollout(&store, "r4").stats[0].committed, 0);
    assert!(
        slot_holds(&slot, &image(0)),
        "the canceled image was written"
    );
    server.stop();
}
