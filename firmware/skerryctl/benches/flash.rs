//! The flash benchmark: one 1 GiB sparse disk image with ~200 MiB of data (random bytes,
//! each data extent holding a 2 MiB run of written zeros) is written to a new file by
//! `skerryctl flash` (with and without its read-back verification), by
//! `dd bs=4M conv=fsync` (also with `conv=sparse`), and by `bmaptool copy` (after
//! `bmaptool create`), every one syncing to the medium. The runs are interleaved and
//! each row is the median of `SKERRY_FLASH_BENCH_RUNS` (default 3); the page cache is
//! dropped before each run when this process may (root), and the table says if it was.
//! Every target is compared with the image. Needs bmap-tools
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

fn build_image(path: &Path) -> u64 {
    let file = File::create(path).expect("create the bench image");
    file.set_len(IMAGE_LEN).unwrap();
    let mut buf = vec![0u8; EXTENT_LEN as usize];
    let stride = IMAGE_LEN / EXTENTS;
    for i in 0..EXTENTS {
        fill_random(&mut buf, i + 1);
        buf[4 * MIB as usize..6 * MIB as usize].fill(0);
        // The last extent ends at the image's last byte.
        let at = if i == EXTENTS - 1 {
            IMAGE_LEN - EXTENT_LEN
        } else {
            i * stride + MIB
        };
        file.write_all_at(&buf, at).unwrap();
    }
    file.sync_all().unwrap();
    EXTENTS * EXTENT_LEN
}

/// Drops the page cache (root only); true when it did.
fn drop_caches() -> bool {
    let _ = Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    Command::new("cmp")
        .args(["-s", &s(a), &s(b)])
        .status()
        .is_ok_and(|st| st.success())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("SKERRY_FLASH_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .clamp(1, 20);
    let dir = tempfile::Builder::new()
        .prefix("flash-bench")
        .tempdir_in(
            std::env::var_os("SKERRY_BENCH_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        )
        .unwrap();
    let image = dir.path().join("disk.img");
    let bmap = dir.path().join("disk.bmap");
    let data = build_image(&image);
    let started = Instant::now();
    if let Err(e) = run(&[
        "bmaptool".into(),
        "-q".into(),
        "create".into(),
        "-o".into(),
        s(&bmap),
        s(&image),
    ]) {
        eprintln!("flash bench: {e}");
        std::process::exit(1);
    }
    let create = started.elapsed().as_secs_f64();
    let mut times = vec![Vec::new(); TOOLS.len()];
    let mut allocated = vec![0u64; TOOLS.len()];
    let mut cold = true;
    for _ in 0..runs {
        for (i, tool) in TOOLS.iter().enumerate() {
            let out = dir.path().join("out.img");
            let _ = std::fs::remove_file(&out);
            cold &= drop_caches();
            let t = Instant::now();
            if let Err(e) = run(&(tool.argv)(&image, &out, &bmap)) {
                eprintln!("flash bench: {}: {e}", tool.name);
                std::process::exit(1);
            }
            times[i].push(t.elapsed().as_secs_f64());
            allocated[i] = std::fs::metadata(&out)
                .map(|m| m.blocks() * 512)
                .unwrap_or(0);
            if !same_bytes(&image, &out) {
                eprintln!(
                    "flash bench: {} left a target that differs from the image",
                    tool.name
                );
                std::process::exit(1);
            }
        }
    }
    let medians: Vec<f64> = times.iter_mut().map(|t| median(t)).collect();
    println!(
        "flash: {} MiB image, {} MiB of data ({} MiB of it zeros), to a new file on {}; median of {runs}; page cache {}",
        IMAGE_LEN / MIB,
        data / MIB,
        EXTENTS * 2,
        dir.path().display(),
        if cold { "dropped before every run" } else { "NOT dropped (not root)" }
    );
    println!(
        "{:<30} {:>9} {:>10} {:>16}",
        "tool", "time s", "vs dd", "MiB in target"
    );
    for (i, tool) in TOOLS.iter().enumerate() {
        println!(
            "{:<30} {:>9.2} {:>10.2} {:>16.1}",
            tool.name,
            medians[i],
            medians[i] / medians[0],
            allocated[i] as f64 / MIB as f64
        );
    }
    println!("bmaptool create (once per image, not in its row): {create:.2} s");
}
