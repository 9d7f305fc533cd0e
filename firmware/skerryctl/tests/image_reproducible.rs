//! The same inputs give the same bytes: two builds a few seconds apart, into different
//! directories, make byte-identical slot images and disks (every stray byte would be a
//! delta byte); a different build epoch makes a different slot.

mod image_support;

use std::path::Path;
use std::time::Instant;

use image_support::{fake_skerryd, need_build_tools};

fn build_in(dir: &Path, skerryd: &Path, epoch: Option<&str>) -> (Vec<u8>, Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join("disk.img");
    let mut cmd = image_support::skerryctl();
    // Unset, the build's default epoch: the tools it runs must get it from the build,
    // not from this environment.
    cmd.env_remove("SOURCE_DATE_EPOCH");
    if let Some(epoch) = epoch {
        cmd.env("SOURCE_DATE_EPOCH", epoch);
    }
    let o = {
        let started = Instant::now();
        let o = cmd
            .args([
                "image",
                "build",
                "--board",
                "qemu-x86_64",
                "--version",
                "1.0.0",
                "--out",
            ])
            .arg(&out)
            .arg("--skerryd")
            .arg(skerryd)
            .output()
            .unwrap();
        eprintln!("image build: {:.1?}", started.elapsed());
        o
    };
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        std::fs::read(dir.join("disk.slot.img")).unwrap(),
        std::fs::read(out).unwrap(),
    )
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then_some(a.len().min(b.len())))
}

#[test]
fn two_builds_of_the_same_inputs_are_identical() {
    need_build_tools();
    let tmp = tempfile::tempdir().unwrap();
    let skerryd = fake_skerryd(tmp.path());
    let (slot1, disk1) = build_in(&tmp.path().join("one"), &skerryd, None);
    // Past a second boundary, so a time taken from the clock anywhere would show.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (slot2, disk2) = build_in(&tmp.path().join("two"), &skerryd, None);
    assert!(
        slot1 == slot2,
        "the slot images differ first at byte {:?}",
        first_difference(&slot1, &slot2)
    );
    assert!(
        disk1 == disk2,
        "the disks differ first at byte {:?}",
        first_difference(&disk1, &disk2)
    );
    let (slot3, _) = build_in(&tmp.path().join("three"), &skerryd, Some("1738368000"));
    assert!(slot1 != slot3, "the build epoch did not reach the slot");
}
