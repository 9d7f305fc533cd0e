//! The verified root on the QEMU board (docs/os-image.md, "Verified root"): slot A boots
//! through dm-verity, its root hash from the boot environment (`SKERRY_VERITY_A`); an
//! upgrade through the device API installs 1.1.0 into slot B and carries the release's
//! signed verity parameters into `SKERRY_VERITY_B`, and B boots verified too. Then, with
//! B still on trial, the power is cut and one byte of the installed slot B is flipped on
//! the disk: B's next boots read the corrupt block, dm-verity restarts the machine
//! (`restart_on_corruption`), GRUB spends B's attempts and falls back to A, and the
//! device reports 1.1.0 rolled back by the bootloader.
//!
//! The scenario steps are the scenario format's own (`hil-tests/scenarios/README.md`),
//! run in two parts around the byte flip, which is done here, host-side, on the powered-off
//! board's disk: the format has no step that edits a slot yet (so there is no
//! `scenarios/09-*.toml`; on the simulated board, whose slots are files checked by
//! digest, a flipped byte would be a different story).
//!
//! Slow by nature (TCG): building the images and booting 5–6 times take minutes.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use skerry_hil::plan::{self, Verdict};
use skerry_hil::qemu::files::need_tool;
use skerry_hil::rig::qemu::artifacts::static_programs;
use skerry_hil::rig::qemu::{QemuBoard, Site};
use skerry_hil::rig::Board;

/// Up to the moment B runs verified, on trial; the power is cut right there, long
/// before its probation could commit it.
const BEFORE_FLIP: &str = r#"
name = "verity-before-flip"
summary = "A and then B boot through dm-verity"
[[step]]
power_on = {}
[[step]]
expect_console = { text = "SKERRY-VERITY mapped slot=A", timeout = "300s" }
[[step]]
wait_running = { slot = "A" }
[[step]]
publish = { version = "1.1.0", release = "good" }
[[step]]
install = { version = "1.1.0" }
[[step]]
expect_console = { text = "SKERRY-VERITY mapped slot=B", timeout = "300s" }
[[step]]
power_cut = {}
"#;

/// After one byte of slot B was flipped.
const AFTER_FLIP: &str = r#"
name = "verity-corrupt-root"
summary = "a flipped byte in B: the read fails, the machine restarts, GRUB falls back to A"
[[step]]
power_on = {}
[[step]]
expect_console = { text = "SKERRY-BOOT slot=B", timeout = "300s" }
[[step]]
expect_console = { text = "is corrupted", timeout = "300s" }
[[step]]
wait_running = { slot = "A", timeout = "900s" }
[[step]]
expect_boots = { slot = "B", at_least = 2 }
[[step]]
expect_rolled_back = { version = "1.1.0", by = "bootloader", within = "120s" }
"#;

/// Where slot B's partition starts on the board's disk.
fn slot_b_start() -> u64 {
    let board = skerry_boards::shipped("qemu-x86_64").unwrap().unwrap();
    let placed = skerry_boards::layout::place(&board.disk);
    placed
        .iter()
        .find(|p| p.partition.slot.as_deref() == Some("B"))
        .expect("the board has a slot B")
        .start
}

/// Flips (XOR 0xff) the byte at `offset` of `disk`; returns what it was.
fn flip_byte(disk: &Path, offset: u64) -> u8 {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .unwrap();
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&[byte[0] ^ 0xff]).unwrap();
    f.sync_all().unwrap();
    byte[0]
}

fn run(text: &str, board: &mut QemuBoard) -> plan::ScenarioReport {
    let scenario = plan::format::parse("verity_qemu.rs", text).unwrap();
    let report = plan::run(&scenario, board);
    println!("{}", plan::steps_text(&report));
    if report.verdict != Verdict::Passed {
        let tail = report.transcript.as_deref().unwrap_or("");
        let start = tail.len().saturating_sub(8000);
        let start = (start..tail.len())
            .find(|&i| tail.is_char_boundary(i))
            .unwrap_or(tail.len());
        panic!("{}\n{}", plan::steps_text(&report), &tail[start..]);
    }
    report
}

#[test]
fn a_flipped_byte_in_the_verified_root_of_b_rolls_back_to_a() {
    need_tool(
        "qemu-system-x86_64",
        "qemu-system-x86 (from bookworm-backports)",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let programs = static_programs().unwrap();
    let site =
        Arc::new(Site::provision(dir.path(), programs, &semver::Version::new(1, 0, 0)).unwrap());
    let mut board = QemuBoard::from_site(&site).unwrap();
    let started = Instant::now();

    let before = run(BEFORE_FLIP, &mut board);
    // Byte 512 of the slot: in the filesystem's first block, which the kernel reads
    // (through the mapping) to mount the root; GRUB reads the slot's files without it.
    let offset = slot_b_start() + 512;
    let was = flip_byte(board.disk(), offset);
    println!(
        "flipped the byte at disk offset {offset} (slot B + 512): {was:#04x} -> {:#04x}",
        was ^ 0xff
    );
    let after = run(AFTER_FLIP, &mut board);

    let transcript = board.transcript();
    let verity_lines: Vec<&str> = transcript
        .lines()
        .filter(|l| l.contains("SKERRY-VERITY") || l.contains("verity"))
        .collect();
    println!("{}", verity_lines.join("\n"));
    assert!(
        transcript.contains("SKERRY-VERITY mapped slot=B device=/dev/dm-0"),
        "{verity_lines:#?}"
    );
    println!("{}", plan::table(&[before, after]));
    println!("total {:.1} s", started.elapsed().as_secs_f64());
}
