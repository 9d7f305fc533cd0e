//! The flash benchmark: one 1 GiB sparse disk image with ~200 MiB of data (random bytes,
//! each data extent holding a 2 MiB run of written zeros) is written to a new file by
//! `skerryctl flash` (with and without its read-back verification), by
//! `dd bs=4M conv=fsync` (also with `conv=sparse`), and by `bmaptool copy` (after
//! `bmaptool create`), every one syncing to the medium. The runs are interleaved and
//! each row is the median of `SKERRY_FLASH_BENCH_RUNS` (default 3); the page cache is
//! dropped before each run when this process may (root), and the table says if it was.
//! Every file target must equal the image. A second table writes a 256 MiB image to a
//! loop device refilled with random old data before each run, and says which tools
//! leave old data where the image has zeros (skipping zeros there is not a copy). Needs bmap-tools
//! (scripts/deps/bench/flash.apt).

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const MIB: u64 = 1 << 20;
const IMAGE_LEN: u64 = 1024 * MIB;
/// Data extents: 20 of 10 MiB, each with 2 MiB of zeros written inside.
const EXTENTS: u64 = 20;
const EXTENT_LEN: u64 = 10 * MIB;
/// The image for the block-device table (the device is refilled before every run).
const DEVICE_IMAGE_LEN: u64 = 256 * MIB;

struct Tool {
    name: &'static str,
    argv: fn(&Path, &Path, &Path) -> Vec<String>,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

const TOOLS: &[Tool] = &[
    Tool {
        name: "dd bs=4M conv=fsync",
        argv: |img, out, _| {
            let (i, o) = (s(img), s(out));
            vec![
                "dd".into(),
                format!("if={i}"),
                format!("of={o}"),
                "bs=4M".into(),
                "conv=fsync".into(),
                "status=none".into(),
            ]
        },
    },
    Tool {
        name: "dd bs=4M conv=sparse,fsync",
        argv: |img, out, _| {
            let (i, o) = (s(img), s(out));
            vec![
                "dd".into(),
                format!("if={i}"),
                format!("of={o}"),
                "bs=4M".into(),
                "conv=sparse,fsync".into(),
                "status=none".into(),
            ]
        },
    },
    Tool {
        name: "bmaptool copy",
        argv: |img, out, bmap| {
            let (i, o, b) = (s(img), s(out), s(bmap));
            vec![
                "bmaptool".into(),
                "-q".into(),
                "copy".into(),
                "--bmap".into(),
                b,
                i,
                o,
            ]
        },
    },
    Tool {
        name: "skerryctl flash --no-verify",
        argv: |img, out, _| skerryctl(img, out, true),
    },
    Tool {
        name: "skerryctl flash (verified)",
        argv: |img, out, _| skerryctl(img, out, false),
    },
];

fn skerryctl(img: &Path, out: &Path, no_verify: bool) -> Vec<String> {
    let mut v = vec![
        env!("CARGO_BIN_EXE_skerryctl").into(),
        "--output".into(),
        "json".into(),
        "flash".into(),
    ];
    v.extend(["--image".into(), s(img), "--to".into(), s(out)]);
    if no_verify {
        v.push("--no-verify".into());
    }
    v
}

fn run(argv: &[String]) -> Result<String, String> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| {
            format!(
                "{}: {e} (bmaptool: install bmap-tools, scripts/deps/bench/flash.apt)",
                argv[0]
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Random bytes (xorshift), fast enough that building the image is not the bench.
fn fill_random(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for word in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
    }
}

fn build_image(path: &Path, len: u64, extents: u64) -> u64 {
    let file = File::create(path).expect("create the bench image");
    file.set_len(len).unwrap();
    let mut buf = vec![0u8; EXTENT_LEN as usize];
    let stride = len / extents;
    for i in 0..extents {
        fill_random(&mut buf, i + 1);
        buf[4 * MIB as usize..6 * MIB as usize].fill(0);
        // The last extent ends at the image's last byte.
        let at = if i == extents - 1 {
            len - EXTENT_LEN
        } else {
            i * stride + MIB
        };
        file.write_all_at(&buf, at).unwrap();
    }
    file.sync_all().unwrap();
    extents * EXTENT_LEN
}

/// Drops the page cache (root only); true when it did.
fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn same_bytes(image: &Path, target: &Path, len: u64) -> bool {
    Command::new("cmp")
        .args(["-s", "-n", &len.to_string(), &s(image), &s(target)])
        .status()
        .is_ok_and(|st| st.success())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn fail(what: &str) -> ! {
    eprintln!("flash bench: {what}");
    std::process::exit(1);
}

/// Where the tools write: a new file each run, or a device refilled with old data.
enum Target<'a> {
    NewFile(PathBuf),
    /// A loop device over `backing`, refilled from `garbage` before every run.
    Device {
        dev: PathBuf,
        backing: &'a Path,
        garbage: &'a Path,
    },
}

struct Row {
    seconds: f64,
    /// Bytes the target file holds on disk (new-file targets only).
    allocated: Option<u64>,
    equal: bool,
}

fn measure(image: &Path, bmap: &Path, len: u64, target: &Target, runs: usize) -> (Vec<Row>, bool) {
    let mut times = vec![Vec::new(); TOOLS.len()];
    let mut rows: Vec<Row> = Vec::new();
    let mut cold = true;
    for _ in 0..runs {
        rows.clear();
        for (i, tool) in TOOLS.iter().enumerate() {
            let out = match target {
                Target::NewFile(out) => {
                    let _ = std::fs::remove_file(out);
                    out.clone()
                }
                Target::Device {
                    dev,
                    backing,
                    garbage,
                } => {
                    std::fs::copy(garbage, backing).unwrap_or_else(|e| fail(&e.to_string()));
                    dev.clone()
                }
            };
            cold &= drop_caches();
            let t = Instant::now();
            if let Err(e) = run(&(tool.argv)(image, &out, bmap)) {
                fail(&format!("{}: {e}", tool.name));
            }
            times[i].push(t.elapsed().as_secs_f64());
            let equal = same_bytes(image, &out, len);
            let allocated = match target {
                Target::NewFile(_) => {
                    if !equal {
                        fail(&format!(
                            "{} left a file that differs from the image",
                            tool.name
                        ));
                    }
                    std::fs::metadata(&out).ok().map(|m| m.blocks() * 512)
                }
                Target::Device { .. } => None,
            };
            rows.push(Row {
                seconds: 0.0,
                allocated,
                equal,
            });
        }
    }
    for (row, t) in rows.iter_mut().zip(times.iter_mut()) {
        row.seconds = median(t);
    }
    (rows, cold)
}

fn print_table(title: &str, rows: &[Row], runs: usize, cold: bool) {
    println!(
        "{title}; median of {runs}; page cache {}",
        if cold {
            "dropped before every run"
        } else {
            "NOT dropped (not root)"
        }
    );
    println!(
        "{:<30} {:>9} {:>8} {:>14} {:>16}",
        "tool", "time s", "vs dd", "MiB in target", "equal to image"
    );
    for (tool, row) in TOOLS.iter().zip(rows) {
        let allocated = row
            .allocated
            .map_or("-".to_string(), |b| format!("{:.1}", b as f64 / MIB as f64));
        println!(
            "{:<30} {:>9.2} {:>8.2} {:>14} {:>16}",
            tool.name,
            row.seconds,
            row.seconds / rows[0].seconds,
            allocated,
            if row.equal {
                "yes"
            } else {
                "NO (old data left)"
            }
        );
    }
}

fn bmap_create(image: &Path, bmap: &Path) -> f64 {
    let started = Instant::now();
    let argv = ["bmaptool", "-q", "create", "-o", &s(bmap), &s(image)];
    if let Err(e) = run(&argv.map(String::from)) {
        fail(&e);
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let runs: usize = std::env::var("SKERRY_FLASH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, 20);
    let base = std::env::var_os("SKERRY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("flash-bench")
        .tempdir_in(base)
        .unwrap();
    let (image, bmap) = (dir.path().join("disk.img"), dir.path().join("disk.bmap"));
    let data = build_image(&image, IMAGE_LEN, EXTENTS);
    let create = bmap_create(&image, &bmap);
    let (rows, cold) = measure(
        &image,
        &bmap,
        IMAGE_LEN,
        &Target::NewFile(dir.path().join("out.img")),
        runs,
    );
    let title = format!(
        "flash to a new file: {} MiB image, {} MiB of data ({} MiB of it zeros), on {}",
        IMAGE_LEN / MIB,
        data / MIB,
        EXTENTS * 2,
        dir.path().display()
    );
    print_table(&title, &rows, runs, cold);
    println!("bmaptool create (once per image, not in its row): {create:.2} s\n");
    device_table(dir.path(), runs);
}

/// The same kind of image, smaller, to a loop device holding random old data.
fn device_table(dir: &Path, runs: usize) {
    let len = DEVICE_IMAGE_LEN;
    let (image, bmap) = (dir.join("small.img"), dir.join("small.bmap"));
    let data = build_image(&image, len, len / (32 * MIB));
    bmap_create(&image, &bmap);
    let (backing, garbage) = (dir.join("card.bin"), dir.join("garbage.bin"));
    let mut noise = vec![0u8; len as usize];
    fill_random(&mut noise, 4242);
    std::fs::write(&garbage, &noise).unwrap();
    std::fs::copy(&garbage, &backing).unwrap();
    let dev = match run(&["losetup", "--find", "--show", &s(&backing)].map(String::from)) {
        Ok(dev) => PathBuf::from(dev.trim()),
        Err(why) => {
            println!("flash to a block device: SKIPPED, no loop device here ({why})");
            return;
        }
    };
    let target = Target::Device {
        dev: dev.clone(),
        backing: &backing,
        garbage: &garbage,
    };
    let (rows, cold) = measure(&image, &bmap, len, &target, runs);
    let _ = run(&["losetup", "--detach", &s(&dev)].map(String::from));
    let title = format!(
        "flash to a block device holding old data (loop device): {} MiB image, {} MiB of data",
        len / MIB,
        data / MIB
    );
    print_table(&title, &rows, runs, cold);
}
