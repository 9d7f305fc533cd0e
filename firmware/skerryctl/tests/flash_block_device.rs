//! `skerryctl flash` to real block devices (loop devices over files): a device holding
//! old data where the image has zeros ends equal to the image (zero runs are cleared,
//! not skipped), a device smaller than the image, a mounted device and a disk with a
//! mounted partition are refused. Where loop devices or mounts are not available (some
//! containers), each test fails saying what it needs: it never passes without running.

mod flash_support;

use std::path::Path;

use flash_support::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_device_with_old_data_ends_equal_to_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let expected = sparse_image(&image, 24 * MIB);
    let card = dir.path().join("card.bin");
    std::fs::write(&card, noise(32 * MIB as usize, 5)).unwrap();
    let dev = match LoopDevice::attach(&card, false) {
        Ok(d) => d,
        Err(why) => return cannot_run("a_device_with_old_data_ends_equal_to_the_image", &why),
    };
    let s_ = flash_json(&["--image", s(&image), "--to", s(&dev.path)]);
    assert_eq!(s_["target_kind"], "block device");
    assert_eq!(
        s_["bytes_written"],
        24 * MIB,
        "every zero run was cleared: {s_}"
    );
    drop(dev);
    let after = std::fs::read(&card).unwrap();
    assert_eq!(
        &after[..expected.len()],
        &expected[..],
        "old data left where the image is zero"
    );
    assert_eq!(
        &after[expected.len()..],
        &noise(32 * MIB as usize, 5)[expected.len()..]
    );
}

#[test]
fn a_device_smaller_than_the_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    sparse_image(&image, 16 * MIB);
    let card = dir.path().join("small.bin");
    std::fs::write(&card, vec![7u8; 8 * MIB as usize]).unwrap();
    let dev = match LoopDevice::attach(&card, false) {
        Ok(d) => d,
        Err(why) => return cannot_run("a_device_smaller_than_the_image_is_refused", &why),
    };
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&dev.path)]),
        "the image needs",
    );
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&dev.path), "--dry-run"]),
        "the image needs",
    );
    drop(dev);
    assert_eq!(std::fs::read(&card).unwrap(), vec![7u8; 8 * MIB as usize]);
}

#[test]
fn a_mounted_device_and_a_disk_with_a_mounted_partition_are_refused() {
    let name = "a_mounted_device_and_a_disk_with_a_mounted_partition_are_refused";
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    sparse_image(&image, 16 * MIB);
    let disk = dir.path().join("disk.bin");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(64 * MIB)
        .unwrap();
    if let Err(why) = run("sgdisk", &["-n1:2048:+16M", s(&disk)]) {
        panic!("sgdisk (Debian package gdisk) is needed: {why}");
    }
    let dev = match LoopDevice::attach(&disk, true) {
        Ok(d) => d,
        Err(why) => return cannot_run(name, &why),
    };
    let part = format!("{}p1", dev.path.display());
    if !Path::new(&part).exists() {
        return cannot_run(
            name,
            &format!("{part} did not appear (no partition scan here)"),
        );
    }
    run("mkfs.ext4", &["-q", &part]).expect("mkfs.ext4 (Debian package e2fsprogs)");
    let point = dir.path().join("mnt");
    std::fs::create_dir(&point).unwrap();
    let mounted = match Mounted::new(&[&part], &point) {
        Ok(m) => m,
        Err(why) => return cannot_run(name, &why),
    };
    let run_disk = flash(&["--image", s(&image), "--to", s(&dev.path)]);
    assert_refused(&run_disk, &format!("has {part}"));
    assert_refused(
        &flash(&["--image", s(&image), "--to", &part]),
        "is mounted at",
    );
    drop(mounted);
}
