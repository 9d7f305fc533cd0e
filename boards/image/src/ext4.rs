//! The slot filesystem: ext4 made with `mke2fs -d` from the staged tree, no journal (the
//! slot is mounted read-only), at the slot partition's size, reproducible: a fixed UUID
//! and directory hash seed, root owned by 0:0, `E2FSPROGS_FAKE_TIME` for the
//! filesystem's own times, and then every inode's atime, ctime and crtime set to the
//! epoch and its owner to 0:0 with one `debugfs` run, because `mke2fs -d` copies atime
//! and ctime from the host tree and stamps crtime with the build time.

use std::fmt::Write;
use std::path::Path;

use crate::error::ImageError;
use crate::tools::{run, DEBUGFS, MKE2FS};
use crate::tree::walk;

/// The filesystem label of a slot.
pub const LABEL: &str = "skerry-root";

/// Packs `tree` into `image`, a filesystem of `size` bytes. `uuid` and `hash_seed` are
/// fixed per board and slot content.
pub fn pack(
    tree: &Path,
    image: &Path,
    size: u64,
    uuid: &str,
    hash_seed: &str,
    epoch: u64,
) -> Result<(), ImageError> {
    let epoch_s = epoch.to_string();
    run(MKE2FS
        .command()?
        .env("E2FSPROGS_FAKE_TIME", &epoch_s)
        .env("SOURCE_DATE_EPOCH", &epoch_s)
        // A config file that is not there: mke2fs uses its built-in defaults, not the host's.
        .env("MKE2FS_CONFIG", "/nonexistent/skerry-mke2fs.conf")
        .args([
            "-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-I", "256",
        ])
        .args([
            "-O",
            "^has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize",
        ])
        .arg("-U")
        .arg(uuid)
        .arg("-E")
        .arg(format!(
            "hash_seed={hash_seed},root_owner=0:0,lazy_itable_init=0"
        ))
        .args(["-L", LABEL, "-d"])
        .arg(tree)
        .arg(image)
        .arg(format!("{}k", size / 1024)))?;
    inode_times(tree, image, epoch)
}

fn inode_times(tree: &Path, image: &Path, epoch: u64) -> Result<(), ImageError> {
    let mut script = String::new();
    let mut paths = vec![String::from("/")];
    for (rel, _) in walk(tree)? {
        let p = rel.to_string_lossy().into_owned();
        if p.contains(['"', '\\', '\n']) {
            return Err(ImageError::Input {
                what: format!("/{p}"),
                reason: "a file name with a quote, backslash or newline cannot go into the slot"
                    .into(),
            });
        }
        paths.push(format!("/{p}"));
    }
    for p in &paths {
        for field in ["atime", "ctime", "crtime", "mtime"] {
            let _ = writeln!(
                script,
                "sif \"{p}\" {field} @{epoch}\nsif \"{p}\" {field}_extra 0"
            );
        }
        let _ = writeln!(script, "sif \"{p}\" uid 0\nsif \"{p}\" gid 0");
    }
    let script_path = image.with_extension("debugfs");
    std::fs::write(&script_path, script).map_err(ImageError::io("writing", &script_path))?;
    let out = DEBUGFS
        .command()?
        .env("E2FSPROGS_FAKE_TIME", epoch.to_string())
        .arg("-w")
        .arg("-f")
        .arg(&script_path)
        .arg(image)
        .output()
        .map_err(ImageError::io("starting debugfs on", image))?;
    let _ = std::fs::remove_file(&script_path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("debugfs "))
        .collect();
    if !out.status.success() || !complaints.is_empty() {
        return Err(ImageError::Tool {
            command: format!("debugfs -w -f (inode times) {}", image.display()),
            stderr: complaints
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(())
}
