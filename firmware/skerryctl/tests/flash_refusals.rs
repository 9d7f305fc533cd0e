//! Every target `skerryctl flash` must refuse, each with a message saying why, exit code
//! 2, and nothing written: a missing image, the image itself (by another name too), a
//! directory, a character device, an existing file without --overwrite, a bind-mounted
//! file, and the disk the host runs from (checked with --dry-run, so that a broken
//! guard cannot write to this machine's own disk).

mod flash_support;

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use flash_support::*;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    sparse_image(&image, 16 * MIB);
    (dir, image)
}

#[test]
fn a_missing_image_is_refused_and_no_target_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.img");
    let run = flash(&["--image", s(&dir.path().join("nope.img")), "--to", s(&out)]);
    assert_refused(&run, "does not exist");
    assert!(!out.exists());
}

#[test]
fn the_image_itself_is_refused_under_any_name() {
    let (dir, image) = setup();
    let before = std::fs::read(&image).unwrap();
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&image), "--overwrite"]),
        "is the image",
    );
    let link = dir.path().join("link.img");
    std::os::unix::fs::symlink(&image, &link).unwrap();
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&link), "--overwrite"]),
        "is the image",
    );
    let hard = dir.path().join("hard.img");
    std::fs::hard_link(&image, &hard).unwrap();
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&hard), "--overwrite"]),
        "is the image",
    );
    assert_eq!(std::fs::read(&image).unwrap(), before);
}

#[test]
fn a_directory_and_a_character_device_are_refused() {
    let (dir, image) = setup();
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(dir.path())]),
        "is a directory",
    );
    assert_refused(
        &flash(&["--image", s(&image), "--to", "/dev/null"]),
        "character device",
    );
    assert_refused(
        &flash(&["--image", s(dir.path()), "--to", "out.img"]),
        "not a regular file",
    );
}

#[test]
fn an_existing_file_needs_overwrite() {
    let (dir, image) = setup();
    let out = dir.path().join("precious.img");
    std::fs::write(&out, b"my data").unwrap();
    assert_refused(
        &flash(&["--image", s(&image), "--to", s(&out)]),
        "pass --overwrite",
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"my data");
    // An empty file is as good as a missing one.
    let empty = dir.path().join("empty.img");
    std::fs::write(&empty, b"").unwrap();
    flash_json(&["--image", s(&image), "--to", s(&empty)]);
}

#[test]
fn a_bind_mounted_file_is_refused() {
    let (dir, image) = setup();
    let (src, point) = (dir.path().join("src.img"), dir.path().join("point.img"));
    std::fs::write(&src, b"x").unwrap();
    std::fs::write(&point, b"").unwrap();
    let mounted = match Mounted::new(&["--bind", s(&src)], &point) {
        Ok(m) => m,
        Err(why) => return cannot_run("a_bind_mounted_file_is_refused", &why),
    };
    let run = flash(&[
        "--image",
        s(&image),
        "--to",
        s(&mounted.point),
        "--overwrite",
    ]);
    assert_refused(&run, "is mounted at");
    drop(mounted);
    assert_eq!(std::fs::read(&src).unwrap(), b"x");
}

/// The block device `/` is on, and its whole disk, as the test finds them itself.
fn host_root_devices() -> Result<Vec<PathBuf>, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| e.to_string())?;
    let line = info
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))
        .ok_or("no mount at / in mountinfo")?;
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields
        .iter()
        .position(|f| *f == "-")
        .ok_or("odd mountinfo")?;
    let source = PathBuf::from(fields[dash + 2]);
    let is_block = std::fs::metadata(&source).is_ok_and(|m| m.file_type().is_block_device());
    if !is_block {
        return Err(format!(
            "/ is on {}, not a block device (a container?)",
            source.display()
        ));
    }
    let mut devices = vec![source.clone()];
    let sys = PathBuf::from("/sys/dev/block").join(fields[2]);
    if sys.join("partition").exists() {
        let disk = std::fs::canonicalize(&sys).map_err(|e| e.to_string())?;
        let name = disk
            .parent()
            .and_then(|p| p.file_name())
            .ok_or("no parent disk")?;
        devices.push(Path::new("/dev").join(name));
    }
    Ok(devices)
}

#[test]
fn the_disk_the_host_runs_from_is_refused() {
    let (_dir, image) = setup();
    let devices = match host_root_devices() {
        Ok(d) => d,
        Err(why) => return cannot_run("the_disk_the_host_runs_from_is_refused", &why),
    };
    for dev in devices {
        for extra in [&["--dry-run"][..], &["--dry-run", "--overwrite"]] {
            let mut args = vec!["--image", s(&image), "--to", s(&dev)];
            args.extend(extra);
            assert_refused(&flash(&args), "the disk the host runs from");
        }
    }
}
