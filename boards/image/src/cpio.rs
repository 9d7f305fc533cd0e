//! Our own writer of the `newc` cpio format the kernel unpacks as an initramfs,
//! deterministic by construction: entries sorted by path, every time the epoch, owners
//! 0:0, inode numbers from a counter, no compression (chunks are compressed in transit).

use std::collections::BTreeMap;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir,
    /// A regular file: its bytes, and whether it is executable.
    File {
        data: Vec<u8>,
        executable: bool,
    },
    Symlink {
        target: String,
    },
    /// A character device (`/dev/console` must exist before `/init` runs, or it starts
    /// without a console).
    CharDevice {
        major: u32,
        minor: u32,
    },
}

/// An initramfs being assembled; paths are relative (`init`, `lib/modules/…`).
#[derive(Debug, Default)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

impl Archive {
    /// Adds `entry` at `path` and every missing parent directory before it.
    pub fn add(&mut self, path: &str, entry: Entry) {
        let path = path.trim_matches('/');
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p.to_vec())
            .unwrap_or_default()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.entries.entry(parent.clone()).or_insert(Entry::Dir);
        }
        self.entries.insert(path.to_owned(), entry);
    }

    /// The archive's bytes, with every time set to `epoch`.
    pub fn to_bytes(&self, epoch: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for (ino, (path, entry)) in (1u32..).zip(&self.entries) {
            let (mode, data, rdev): (u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir => (S_IFDIR | 0o755, &[], (0, 0)),
                Entry::File { data, executable } => (
                    S_IFREG | if *executable { 0o755 } else { 0o644 },
                    data,
                    (0, 0),
                ),
                Entry::Symlink { target } => (S_IFLNK | 0o777, target.as_bytes(), (0, 0)),
                Entry::CharDevice { major, minor } => (S_IFCHR | 0o600, &[], (*major, *minor)),
            };
            let nlink = if matches!(entry, Entry::Dir) { 2 } else { 1 };
            header(&mut out, ino, mode, nlink, epoch, data.len(), rdev, path);
            out.extend_from_slice(data);
            pad4(&mut out);
        }
        header(&mut out, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!");
        out
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the newc header's fields, in order"
)]
fn header(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    size: usize,
    rdev: (u32, u32),
    name: &str,
) {
    out.extend_from_slice(b"070701");
    let size = u32::try_from(size).unwrap_or(u32::MAX);
    let namesize = u32::try_from(name.len() + 1).unwrap_or(u32::MAX);
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    for field in [
        ino, mode, 0, 0, nlink, mtime, size, 0, 0, rdev.0, rdev.1, namesize, 0,
    ] {
        out.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sample() -> Archive {
        let mut a = Archive::default();
        a.add(
            "lib/modules/k/x.ko",
            Entry::File {
                data: b"module".to_vec(),
                executable: false,
            },
        );
        a.add(
            "init",
            Entry::File {
                data: b"\x7fELF...".to_vec(),
                executable: true,
            },
        );
        a.add("dev/console", Entry::CharDevice { major: 5, minor: 1 });
        a.add(
            "bin",
            Entry::Symlink {
                target: "sbin".into(),
            },
        );
        a
    }

    #[test]
    fn the_same_entries_give_the_same_bytes_in_any_order() {
        let mut b = Archive::default();
        b.add(
            "bin",
            Entry::Symlink {
                target: "sbin".into(),
            },
        );
        b.add("dev/console", Entry::CharDevice { major: 5, minor: 1 });
        b.add(
            "init",
            Entry::File {
                data: b"\x7fELF...".to_vec(),
                executable: true,
            },
        );
        b.add(
            "lib/modules/k/x.ko",
            Entry::File {
                data: b"module".to_vec(),
                executable: false,
            },
        );
        assert_eq!(sample().to_bytes(7), b.to_bytes(7));
        assert_ne!(sample().to_bytes(7), sample().to_bytes(8));
    }

    /// GNU cpio (when installed) lists what we wrote, parents first.
    #[test]
    fn gnu_cpio_reads_it() {
        if Command::new("cpio").arg("--version").output().is_err() {
            panic!("cpio is not installed: install the Debian package cpio (scripts/install-deps test)");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("initrd.img");
        std::fs::write(&file, sample().to_bytes(1_700_000_000)).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -itv --quiet < {}", file.display()))
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let paths: Vec<&str> = listing
            .lines()
            .map(|l| l.split(" -> ").next().unwrap().rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "bin",
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/k",
                "lib/modules/k/x.ko"
            ],
            "{listing}"
        );
        assert!(
            listing.contains("crw-------   1 root     root       5,   1 Nov 14  2023 dev/console"),
            "{listing}"
        );
        assert!(
            listing.contains("-rwxr-xr-x   1 root     root            7 Nov 14  2023 init"),
            "{listing}"
        );
        assert!(listing.contains("lib/modules/k/x.ko"), "{listing}");
    }
}
