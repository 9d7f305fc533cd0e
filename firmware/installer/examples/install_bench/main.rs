//! `install-bench`: the installer against the floor of this machine, RAUC, casync and
//! zstd, printed as one table. Run it by hand (it needs the tools of
//! `scripts/install-deps bench` and a few GB of disk):
//!
//! ```text
//! cargo run --release -p skerry-installer --example install-bench
//! ```
//!
//! - full install of a 512 MiB ext4 image: ours vs a minimal decompress-hash-write loop
//!   vs RAUC 1.8 installing a plain bundle into a file slot;
//! - delta: a 256 MiB ext4 image and the same with 8 random 512 KiB overwrites: bytes we
//!   fetch with v1 as seed vs casync (new chunks + index) vs `zstd --patch-from`;
//! - peak RSS of the installer process during the full install.
//!
//! Layout: `images` builds the images, `floor` is the minimal loop, `peers` drives RAUC,
//! casync and zstd, `child` runs one install in a child process so its RSS is its own.

#[path = "../bench_common/mod.rs"]
mod bench_common;
mod child;
mod floor;
mod images;
mod peers;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use skerry_chunks::ChunkParams;
use skerry_release::{AddImage, Expiries, KeySet, Repository};

type Error = Box<dyn std::error::Error>;

const MIB: u64 = 1024 * 1024;
const RUNS: usize = 3;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(child::FLAG) {
        return child::run(&args[2..]);
    }
    peers::check_tools()?;
    let base = std::env::var_os("SKERRY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("install-bench")
        .tempdir_in(base)?;
    let keep = std::env::var_os("SKERRY_BENCH_KEEP").is_some();
    let (_cleanup, w) = if keep {
        (None, work.keep())
    } else {
        let path = work.path().to_path_buf();
        (Some(work), path)
    };
    let w = w.as_path();
    eprintln!("install-bench: working in {}", w.display());

    let full = full_install(w)?;
    let delta = delta_install(w)?;
    print_table(&full, &delta);
    Ok(())
}

struct Full {
    image_len: u64,
    ours: f64,
    floor: f64,
    rauc: f64,
    peak_rss_kib: u64,
}

struct Delta {
    changed: u64,
    ours: u64,
    ours_index: u64,
    casync: u64,
    zstd: u64,
}

/// Flushes everyone's dirty pages so each measurement starts from the same state.
fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn release(w: &Path, name: &str) -> Result<(KeySet, Repository), Error> {
    let keys = KeySet::generate(&w.join(format!("{name}-keys")), 1)?;
    let repo = Repository::new(&w.join(format!("{name}-repo")));
    skerry_release::init(&keys, &repo, 1, &Expiries::default(), SystemTime::now())?;
    Ok((keys, repo))
}

fn add(keys: &KeySet, repo: &Repository, version: &str, image: &Path) -> Result<(), Error> {
    let started = Instant::now();
    let add = AddImage {
        board: "bench",
        version,
        channel: "stable",
        image,
        params: ChunkParams::DEFAULT,
        level: skerry_release::pack::DEFAULT_LEVEL,
    };
    let r = skerry_release::add_image(keys, repo, &add, &Expiries::default(), SystemTime::now())?;
    eprintln!(
        "install-bench: released {version}: {} chunks, pack {:.1} MB, index {:.1} kB in {:.1}s",
        r.chunks,
        r.pack_len as f64 / 1e6,
        r.index_len as f64 / 1e3,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn full_install(w: &Path) -> Result<Full, Error> {
    let image = w.join("full.img");
    images::ext4_image(&image, 512 * MIB, &w.join("stage-full"))?;
    let (keys, repo) = release(w, "full")?;
    add(&keys, &repo, "1.0.0", &image)?;
    let (mut ours, mut floors, mut raucs, mut rss) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let rauc = peers::Rauc::prepare(w, &image)?;
    for run in 0..RUNS {
        let slot = w.join("slot-full");
        let _ = std::fs::remove_file(&slot);
        let state = w.join(format!("state-full-{run}"));
        settle();
        let measured = child::install(&repo.dir, &slot, None, &state)?;
        images::assert_same(&image, &slot)?;
        ours.push(measured.seconds);
        rss = rss.max(measured.peak_rss_kib);
        std::fs::remove_file(&slot)?;

        let out = w.join("floor-out");
        settle();
        floors.push(floor::run(&repo, &out)?);
        std::fs::remove_file(&out)?;

        settle();
        raucs.push(rauc.install()?);
        eprintln!(
            "install-bench: run {run}: ours {:.2}s floor {:.2}s rauc {:.2}s",
            ours[run], floors[run], raucs[run]
        );
    }
    rauc.stop();
    Ok(Full {
        image_len: std::fs::metadata(&image)?.len(),
        ours: median(ours),
        floor: median(floors),
        rauc: median(raucs),
        peak_rss_kib: rss,
    })
}

fn delta_install(w: &Path) -> Result<Delta, Error> {
    let v1 = w.join("v1.img");
    let v2 = w.join("v2.img");
    images::ext4_image(&v1, 256 * MIB, &w.join("stage-delta"))?;
    let changed = images::overwrite(&v1, &v2, 8, 512 * 1024, 0x5eed)?;
    let (keys, repo) = release(w, "delta")?;
    add(&keys, &repo, "1.0.0", &v1)?;
    add(&keys, &repo, "2.0.0", &v2)?;
    let state = w.join("state-delta");
    let slot_a = w.join("slot-a");
    let slot_b = w.join("slot-b");
    child::install_version(&repo.dir, &slot_a, None, &state, Some("1.0.0"))?;
    let delta = child::install(&repo.dir, &slot_b, Some(&slot_a), &state)?;
    images::assert_same(&v2, &slot_b)?;
    Ok(Delta {
        changed,
        ours: delta.bytes_fetched,
        ours_index: delta.index_pages_fetched,
        casync: peers::casync_delta(w, &v1, &v2)?,
        zstd: peers::zstd_patch(w, &v1, &v2)?,
    })
}

fn print_table(f: &Full, d: &Delta) {
    let mb = |b: u64| format!("{:.2} MB", b as f64 / 1e6);
    let yes = |ok: bool| if ok { "yes" } else { "NO" };
    let rows: Vec<[String; 4]> = vec![
        [
            format!("full install, {} MiB ext4 image", f.image_len / MIB),
            String::new(),
            String::new(),
            String::new(),
        ],
        [
            "  ours (skerry-installer, file://)".into(),
            format!("{:.2} s", f.ours),
            format!(
                "{:.2}x floor, {:.2}x RAUC",
                f.ours / f.floor,
                f.ours / f.rauc
            ),
            format!(
                "<=1.2x floor {}, <=0.5x RAUC {}",
                yes(f.ours <= 1.2 * f.floor),
                yes(f.ours <= 0.5 * f.rauc)
            ),
        ],
        [
            "  floor (decompress+hash+write+fsync+uncached read-back)".into(),
            format!("{:.2} s", f.floor),
            String::new(),
            String::new(),
        ],
        [
            "  RAUC 1.8, plain bundle, file slot".into(),
            format!("{:.2} s", f.rauc),
            String::new(),
            String::new(),
        ],
        [
            format!(
                "delta, 256 MiB ext4, 8 x 512 KiB overwrites ({} changed)",
                mb(d.changed)
            ),
            String::new(),
            String::new(),
            String::new(),
        ],
        [
            format!("  ours: all bytes fetched ({} index pages)", d.ours_index),
            mb(d.ours),
            format!(
                "{:.2}x casync, {:.2}x zstd",
                d.ours as f64 / d.casync as f64,
                d.ours as f64 / d.zstd as f64
            ),
            format!(
                "<casync {}, <=1.1x zstd {}",
                yes(d.ours < d.casync),
                yes(d.ours as f64 <= 1.1 * d.zstd as f64)
            ),
        ],
        [
            "  casync (new chunks + .caibx)".into(),
            mb(d.casync),
            String::new(),
            String::new(),
        ],
        [
            "  zstd -3 --long=28 --patch-from".into(),
            mb(d.zstd),
            String::new(),
            String::new(),
        ],
        [
            "peak RSS of the installer, full install".into(),
            format!("{:.1} MiB", f.peak_rss_kib as f64 / 1024.0),
            String::new(),
            format!("<=64 MiB {}", yes(f.peak_rss_kib <= 64 * 1024)),
        ],
    ];
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0).max(6))
        .collect();
    let header = ["measurement", "value", "ratio", "target met"];
    let line = |r: &[&str]| {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", cells.join(" | "));
    };
    line(&header);
    println!(
        "|{}|",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("|")
    );
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
