//! Interop of the GPT store with the real tools, both directions: `cgpt` (Debian package
//! `cgpt`) and `sgdisk` (package `gdisk`). Disks are sparse image files made by `sgdisk`
//! with the ChromeOS kernel type on the slot partitions, so `cgpt show` prints `Attr:`.

use std::path::Path;
use std::process::Command;

use skerry_boot_state::gpt::GptStore;
use skerry_boot_state::sim::Simulated;
use skerry_boot_state::{
    BootState, BootStore, FileMedium, Medium, SlotName, SlotState, SlotStatus,
};

fn name(s: &str) -> SlotName {
    SlotName::new(s).unwrap()
}

fn slots() -> Vec<(SlotName, u32)> {
    vec![(name("A"), 2), (name("B"), 3)]
}

/// Runs a tool; a missing tool fails the test naming the package to install.
fn run(tool: &str, package: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}); install it: apt-get install -y {package}")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool} {args:?} failed: {text}");
    text
}

fn cgpt(args: &[&str]) -> String {
    run("cgpt", "cgpt", args)
}

fn sgdisk(args: &[&str]) -> String {
    run("sgdisk", "gdisk", args)
}

/// An 8 MiB sparse disk: partition 1 Linux data, 2 and 3 ChromeOS kernels (KERN-A/B).
fn sgdisk_disk(dir: &Path) -> String {
    let path = dir.join("disk.img");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let p = path.to_str().unwrap().to_owned();
    sgdisk(&[
        "-o",
        "-a",
        "8",
        "-n",
        "1:0:+256K",
        "-t",
        "1:8300",
        "-n",
        "2:0:+256K",
        "-t",
        "2:7F00",
        "-c",
        "2:KERN-A",
        "-n",
        "3:0:+256K",
        "-t",
        "3:7F00",
        "-c",
        "3:KERN-B",
        &p,
    ]);
    p
}

fn open(path: &str) -> GptStore<FileMedium> {
    GptStore::new(FileMedium::open(path).unwrap(), slots())
}

/// One field as `cgpt show -i N -P|-T|-S|-A` prints it (first line; warnings follow).
fn field(path: &str, part: &str, flag: &str) -> String {
    let out = cgpt(&["show", "-i", part, flag, path]);
    out.lines().next().unwrap_or_default().trim().to_owned()
}

/// The bits `sgdisk -A N:show` lists as set, e.g. `[48, 52, 53]`.
fn sgdisk_bits(path: &str, part: u32) -> Vec<u32> {
    let out = sgdisk(&["-A", &format!("{part}:show"), path]);
    out.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let (p, bit, val) = (f.next()?, f.next()?, f.next()?);
            (p == part.to_string() && val.starts_with('1')).then(|| bit.parse().ok())?
        })
        .collect()
}

/// A disk made by [`sgdisk_disk`] in `dir` with our state committed: A good, B on trial
/// with 3 tries.
fn disk_with_b_on_trial(dir: &Path) -> (String, GptStore<FileMedium>, BootState) {
    let disk = sgdisk_disk(dir);
    let mut store = open(&disk);
    let mut state = BootState::new(&[name("A"), name("B")], 3).unwrap();
    state.begin_trial(&name("B")).unwrap();
    store.commit(&state).unwrap();
    (disk, store, state)
}

fn assert_verified(path: &str) {
    let out = sgdisk(&["-v", path]);
    assert!(out.contains("No problems found"), "sgdisk -v: {out}");
    assert!(
        !out.contains("Caution") && !out.contains("invalid"),
        "sgdisk -v: {out}"
    );
}

#[test]
fn gpt_interop_cgpt_attributes_load_into_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sgdisk_disk(dir.path());
    cgpt(&["add", "-i", "2", "-P", "1", "-T", "3", "-S", "0", &disk]);
    cgpt(&["add", "-i", "3", "-P", "2", "-S", "1", &disk]);
    assert_eq!(field(&disk, "2", "-A"), "0x31");
    let loaded = open(&disk).load().unwrap();
    let expected = BootState::from_parts(
        vec![
            SlotState {
                name: name("B"),
                status: SlotStatus::Good,
            },
            SlotState {
                name: name("A"),
                status: SlotStatus::Trial { tries_left: 3 },
            },
        ],
        3,
    )
    .unwrap();
    assert_eq!(loaded, expected);
}

#[test]
fn gpt_interop_our_writes_read_back_by_cgpt_and_sgdisk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sgdisk_disk(dir.path());
    let mut store = open(&disk);
    assert!(
        store.load().is_err(),
        "zeroed attributes are not a boot state"
    );
    let mut state = BootState::new(&[name("A"), name("B")], 3).unwrap();
    store.commit(&state).unwrap();
    // A good on the lower partition: priority 1, successful; B bad: priority 0, not
    // successful, and tries 1 (the place mark of a bad slot we write is never 0, so the
    // tries 0 vboot leaves on a trial it gave up sorts behind it).
    assert_eq!(field(&disk, "2", "-P"), "1");
    assert_eq!(field(&disk, "2", "-S"), "1");
    assert_eq!(field(&disk, "3", "-P"), "0");
    assert_eq!(field(&disk, "3", "-S"), "0");
    assert_eq!(field(&disk, "3", "-T"), "1");
    assert_verified(&disk);

    state.begin_trial(&name("B")).unwrap();
    store.commit(&state).unwrap();
    assert_eq!(field(&disk, "3", "-P"), "2");
    assert_eq!(field(&disk, "3", "-T"), "3");
    assert_eq!(field(&disk, "3", "-S"), "0");
    // priority 2 (bit 49), tries 3 (bits 52, 53), not successful.
    assert_eq!(field(&disk, "3", "-A"), "0x32");
    assert_eq!(sgdisk_bits(&disk, 3), vec![49, 52, 53]);
    assert_eq!(sgdisk_bits(&disk, 2), vec![48, 52, 53, 56]);
    assert_verified(&disk);
    // The whole table as cgpt prints it carries no warning.
    let shown = cgpt(&["show", &disk]);
    assert!(!shown.to_uppercase().contains("INVALID"), "{shown}");
    assert!(shown.contains("priority=2 tries=3 successful=0"), "{shown}");
}

#[test]
fn gpt_interop_corrupt_primary_header_everyone_uses_backup() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, mut store, mut state) = disk_with_b_on_trial(dir.path());

    // Damage a byte of the primary header's disk GUID: its CRC no longer matches.
    let mut m = FileMedium::open(&disk).unwrap();
    let byte = m.read_at(512 + 60, 1).unwrap()[0];
    m.write_at(512 + 60, &[byte ^ 0xFF]).unwrap();

    assert_eq!(open(&disk).load().unwrap(), state);
    assert_eq!(field(&disk, "3", "-P"), "2", "cgpt reads the backup");
    let warned = cgpt(&["show", "-i", "3", "-P", &disk]);
    assert!(warned.contains("Primary GPT header is invalid"), "{warned}");
    let verify = sgdisk(&["-v", &disk]);
    assert!(
        verify.contains("invalid main GPT header, but valid backup"),
        "sgdisk missed the damage: {verify}"
    );
    assert_eq!(
        sgdisk_bits(&disk, 3),
        vec![49, 52, 53],
        "sgdisk reads the backup"
    );

    // Our next commit rewrites the damaged primary first, then the backup.
    state.power_on().unwrap();
    store.commit(&state).unwrap();
    assert_verified(&disk);
    assert_eq!(field(&disk, "3", "-T"), "2");
    assert_eq!(open(&disk).load().unwrap(), state);
}

#[test]
fn gpt_interop_cgpt_prioritize_sets_the_boot_order() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, store, _) = disk_with_b_on_trial(dir.path());
    assert_eq!(store.load().unwrap().order().next(), Some(&name("B")));

    // Put A first the ChromeOS way.
    cgpt(&["prioritize", "-i", "2", &disk]);
    let loaded = open(&disk).load().unwrap();
    assert_eq!(
        loaded.order().cloned().collect::<Vec<_>>(),
        vec![name("A"), name("B")]
    );
    assert_eq!(loaded.next_boot(), Some(&name("A")));
    assert_eq!(
        loaded.status(&name("B")).unwrap(),
        SlotStatus::Trial { tries_left: 3 }
    );
    assert_verified(&disk);
}

#[test]
fn gpt_interop_fresh_test_images_verify_with_sgdisk_and_cgpt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.img");
    let bytes = skerry_boot_state::gpt::image::chromeos_disk(512, 80, 3, 2).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let p = path.to_str().unwrap();
    assert_verified(p);
    let mut store = open(p);
    let state = BootState::new(&[name("A"), name("B")], 3).unwrap();
    store.commit(&state).unwrap();
    assert_verified(p);
    assert_eq!(field(p, "2", "-S"), "1");
    let shown = cgpt(&["show", p]);
    assert!(shown.contains("Label: \"KERN-B\""), "{shown}");
}

#[test]
fn gpt_interop_cgpt_marks_our_trial_good_and_counts_a_try() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, _, state) = disk_with_b_on_trial(dir.path());

    // The firmware used a try (tries 3 -> 2), as vboot does on the way to the kernel.
    cgpt(&["add", "-i", "3", "-T", "2", &disk]);
    let mut expected = state.clone();
    expected.power_on().unwrap();
    assert_eq!(open(&disk).load().unwrap(), expected);

    // The booted system marks itself good the ChromeOS way: successful, tries 0.
    cgpt(&["add", "-i", "3", "-S", "1", "-T", "0", &disk]);
    let loaded = open(&disk).load().unwrap();
    assert_eq!(loaded.status(&name("B")).unwrap(), SlotStatus::Good);
    assert_eq!(loaded.next_boot(), Some(&name("B")));
    assert_eq!(loaded.tries(), 3, "A still records the configured tries");
    assert_verified(&disk);
}

#[test]
fn gpt_interop_vboot_last_try_reads_zero_in_cgpt_and_mark_good_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, mut store, _) = disk_with_b_on_trial(dir.path());
    for left in ["2", "1"] {
        assert_eq!(store.simulate_boot().unwrap(), name("B"));
        assert_eq!(field(&disk, "3", "-T"), left);
        assert_eq!(field(&disk, "3", "-P"), "2");
    }
    // The last attempt: vboot clears priority and tries before the kernel starts.
    assert_eq!(store.simulate_boot().unwrap(), name("B"));
    for flag in ["-P", "-T", "-S"] {
        assert_eq!(field(&disk, "3", flag), "0", "cgpt show {flag}");
    }
    assert_verified(&disk);
    // The running B marks itself good through the store.
    let mut running = open(&disk).running(name("B"));
    let mut state = running.load().unwrap();
    state.mark_good(&name("B")).unwrap();
    running.commit(&state).unwrap();
    assert_eq!(field(&disk, "3", "-S"), "1");
    assert_eq!(field(&disk, "3", "-P"), "2", "B first again, above A's 1");
    assert_verified(&disk);
    assert_eq!(open(&disk).simulate_boot().unwrap(), name("B"));
}
