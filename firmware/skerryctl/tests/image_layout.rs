//! A built disk read back with tools other than the ones that wrote it: the GPT (our own
//! reader and `sgdisk -p`) against the board definition; the ESP's files (mtools), its
//! environment block (our GRUB store and `grub-editenv`); the slot (`debugfs`): the tree
//! docs/os-image.md lays down, `image.json`, the initramfs (GNU cpio), an extension
//! laid in, no shell; the disk's slot A holds the slot image, B and state are zeros;
//! and `skerryctl release add --image` publishes exactly that slot image.

mod image_support;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use image_support::{
    build_ok, fake_skerryd_with_fault_hooks, need_build_tools, need_tool, skerryctl, tool,
};
use sha2::Digest;
use skerry_boards::{layout, shipped};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootStore, FileMedium, SlotName, SlotStatus};
use skerry_image::gpt;

/// One build shared by the tests of this file: with a factory config, device PKI, an
/// extension directory, and a fault hook (a test build: its stand-in skerryd lists
/// `fault-hooks`).
struct Built {
    dir: PathBuf,
    disk: PathBuf,
    slot: PathBuf,
    skerryd: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        need_build_tools();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("image_layout");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("pki")).unwrap();
        for f in ["ca.crt", "node.crt", "node.key"] {
            std::fs::write(dir.join("pki").join(f), format!("{f} of this device\n")).unwrap();
        }
        std::fs::write(dir.join("config.yaml"), "version: v1alpha1\n").unwrap();
        let app = dir.join("app");
        std::fs::create_dir_all(app.join("usr/share/app")).unwrap();
        std::fs::write(
            app.join("usr/share/app/hello.txt"),
            "hello from an extension\n",
        )
        .unwrap();
        let skerryd = fake_skerryd_with_fault_hooks(&dir);
        let disk = dir.join("disk.img");
        let s = |p: &Path| p.to_str().unwrap().to_owned();
        build_ok(
            &disk,
            &skerryd,
            &[
                "--pki",
                &s(&dir.join("pki")),
                "--config",
                &s(&dir.join("config.yaml")),
                "--extension",
                &s(&app),
                "--fault",
                "hang-daemon",
            ],
        );
        Built {
            slot: dir.join("disk.slot.img"),
            dir,
            disk,
            skerryd,
        }
    })
}

fn read_at(path: &Path, start: u64, len: u64) -> Vec<u8> {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).unwrap();
    buf
}

fn debugfs(image: &Path, request: &str) -> String {
    tool(Command::new("debugfs").arg("-R").arg(request).arg(image))
}

#[test]
fn the_gpt_is_the_board_definitions() {
    let b = built();
    let board = shipped("qemu-x86_64").unwrap().unwrap();
    let (disk_guid, entries) = gpt::read_table(&b.disk).unwrap();
    assert_eq!(disk_guid, gpt::disk_guid("qemu-x86_64").to_uppercase());
    let placed = layout::place(&board.disk);
    assert_eq!(entries.len(), placed.len());
    for (e, p) in entries.iter().zip(&placed) {
        assert_eq!(e.number, p.number);
        assert_eq!(e.name, p.partition.name);
        assert_eq!((e.start, e.end), (p.start, p.end), "{}", e.name);
        assert_eq!(e.type_guid, gpt::type_guid(p.partition.kind));
        assert_eq!(
            e.unique_guid,
            gpt::partition_guid("qemu-x86_64", &p.partition.name).to_uppercase()
        );
    }
    assert_eq!(
        std::fs::metadata(&b.disk).unwrap().len(),
        board.disk.min_size.bytes()
    );
    let printed = tool(Command::new("sgdisk").arg("-p").arg(&b.disk));
    for (n, code, name) in [
        (1, "EF00", "esp"),
        (2, "8300", "root-a"),
        (3, "8300", "root-b"),
        (4, "8300", "var"),
    ] {
        assert!(
            printed
                .lines()
                .any(|l| l.split_whitespace().next() == Some(&n.to_string())
                    && l.contains(code)
                    && l.ends_with(name)),
            "partition {n} {name} in\n{printed}"
        );
    }
}

#[test]
fn slot_a_holds_the_slot_image_and_slot_b_and_state_are_zeros() {
    let b = built();
    let board = shipped("qemu-x86_64").unwrap().unwrap();
    let placed = layout::place(&board.disk);
    let slot = std::fs::read(&b.slot).unwrap();
    assert_eq!(slot.len() as u64, placed[1].end - placed[1].start);
    assert!(
        read_at(&b.disk, placed[1].start, slot.len() as u64) == slot,
        "slot A is not the slot image"
    );
    for p in &placed[2..] {
        let bytes = read_at(&b.disk, p.start, p.end - p.start);
        assert!(
            bytes.iter().all(|&x| x == 0),
            "{} is not zeros",
            p.partition.name
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.dir.join("disk.img.json")).unwrap()).unwrap();
    assert_eq!(
        meta["slot"]["sha256"],
        hex::encode(sha2::Sha256::digest(&slot))
    );
    assert_eq!(meta["partitions"][1]["name"], "root-a");
}

#[test]
fn the_esp_holds_grub_its_environment_the_boot_script_and_the_pki() {
    let b = built();
    need_tool("mcopy", "mtools");
    let board = shipped("qemu-x86_64").unwrap().unwrap();
    let esp = layout::place(&board.disk)[0].start;
    let out = b.dir.join("esp-read-back");
    std::fs::create_dir_all(&out).unwrap();
    let image = format!("{}@@{esp}", b.disk.display());
    for (from, to) in [
        ("/EFI/BOOT/BOOTX64.EFI", "BOOTX64.EFI"),
        ("/EFI/BOOT/grub.cfg", "grub.cfg"),
        ("/EFI/BOOT/grubenv", "grubenv"),
        ("/EFI/BOOT/grubenv.b", "grubenv.b"),
        ("/skerry/pki/node.key", "node.key"),
    ] {
        tool(
            Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .args(["-n", "-i", &image])
                .arg(format!("::{from}"))
                .arg(out.join(to)),
        );
    }
    assert_eq!(&std::fs::read(out.join("BOOTX64.EFI")).unwrap()[..2], b"MZ");
    assert_eq!(
        std::fs::read_to_string(out.join("node.key")).unwrap(),
        "node.key of this device\n"
    );
    let cfg = std::fs::read_to_string(out.join("grub.cfg")).unwrap();
    assert!(cfg.contains("load_env -f ${cmdpath}/grubenv"), "{cfg}");
    assert!(cfg.contains("echo \"SKERRY-BOOT slot=A\""), "{cfg}");
    assert!(cfg.contains("set root=\"(${skerry_disk},gpt3)\""), "{cfg}");

    let state = GrubEnvStore::new(FileMedium::open(out.join("grubenv")).unwrap())
        .load()
        .unwrap();
    let (a, bb) = (SlotName::new("A").unwrap(), SlotName::new("B").unwrap());
    assert_eq!(state.status(&a).unwrap(), SlotStatus::Good);
    assert_eq!(state.status(&bb).unwrap(), SlotStatus::Bad);
    let listed = tool(
        Command::new("grub-editenv")
            .arg(out.join("grubenv"))
            .arg("list"),
    );
    for line in ["ORDER=A B", "A_OK=1", "B_OK=0"] {
        assert!(listed.lines().any(|l| l == line), "{line} in {listed}");
    }
    let dirs = tool(Command::new("mdir").env("MTOOLS_SKIP_CHECK", "1").args([
        "-i",
        &image,
        "::/EFI/BOOT",
    ]));
    for name in ["BOOTX64  EFI", "grub     cfg", "grubenv"] {
        assert!(dirs.contains(name), "{name} in {dirs}");
    }
}

#[test]
fn the_slot_has_the_contracts_tree_and_no_shell() {
    let b = built();
    need_tool("cpio", "cpio");
    let root = debugfs(&b.slot, "ls -l /");
    for name in [
        "boot", "sbin", "etc", "lib", "usr", "proc", "sys", "dev", "run", "tmp", "var",
    ] {
        assert!(
            root.lines()
                .any(|l| l.trim_end().ends_with(&format!(" {name}"))),
            "/{name} in\n{root}"
        );
    }
    for path in ["/bin/sh", "/usr/bin/busybox", "/skerry/pki/node.key"] {
        let out = debugfs(&b.slot, &format!("stat {path}"));
        assert!(
            !out.contains("Inode:"),
            "{path} must not be in the slot: {out}"
        );
    }
    for path in [
        "/boot/vmlinuz",
        "/boot/initrd.img",
        "/sbin/skerryd",
        "/usr/sbin/mke2fs",
        "/etc/hostname",
        "/boot/efi",
        "/etc/skerry/config.yaml",
        "/usr/share/app/hello.txt",
    ] {
        assert!(
            debugfs(&b.slot, &format!("stat {path}")).contains("Inode:"),
            "{path} missing"
        );
    }
    assert_eq!(
        debugfs(&b.slot, "cat /usr/share/app/hello.txt"),
        "hello from an extension\n"
    );
    let image: serde_json::Value =
        serde_json::from_str(&debugfs(&b.slot, "cat /etc/skerry/image.json")).unwrap();
    assert_eq!(image["board"], "qemu-x86_64");
    assert_eq!(image["version"], "1.0.0");
    assert_eq!(image["kernel"]["package"], "linux-image-6.1.0-48-amd64");
    let deb = Path::new(skerry_image::kernel::DEFAULT_CACHE)
        .join("linux-image-6.1.0-48-amd64_6.1.172-1_amd64.deb");
    let deb = std::env::var_os("SKERRY_KERNEL_CACHE").map_or(deb, |c| {
        PathBuf::from(c).join("linux-image-6.1.0-48-amd64_6.1.172-1_amd64.deb")
    });
    assert_eq!(
        image["kernel"]["sha256"],
        hex::encode(sha2::Sha256::digest(std::fs::read(deb).unwrap()))
    );
    assert_eq!(
        image["skerryd"]["sha256"],
        hex::encode(sha2::Sha256::digest(std::fs::read(&b.skerryd).unwrap()))
    );
    assert_eq!(image["extensions"][0]["kind"], "directory");
    assert_eq!(image["fault"], "hang-daemon");
    assert_eq!(debugfs(&b.slot, "cat /etc/skerry/fault"), "hang-daemon\n");
    let release = image["kernel"]["release"].as_str().unwrap().to_owned();
    let ls = debugfs(&b.slot, &format!("ls -l /lib/modules/{release}"));
    assert!(ls.contains("modules.dep"), "{ls}");

    let initrd = b.dir.join("initrd.img");
    debugfs(
        &b.slot,
        &format!("dump /boot/initrd.img {}", initrd.display()),
    );
    let listing = tool(
        Command::new("sh")
            .arg("-c")
            .arg(format!("cpio -it --quiet < {}", initrd.display())),
    );
    let kdir = format!("lib/modules/{release}");
    for path in [
        "init".to_owned(),
        "dev/console".to_owned(),
        "etc/skerry/board.toml".to_owned(),
        "etc/skerry/fault".to_owned(),
        format!("{kdir}/modules.dep"),
        format!("{kdir}/kernel/drivers/watchdog/i6300esb.ko"),
        format!("{kdir}/kernel/drivers/watchdog/watchdog.ko"),
        format!("{kdir}/kernel/fs/ext4/ext4.ko"),
        format!("{kdir}/kernel/fs/nls/nls_iso8859-1.ko"),
        format!("{kdir}/kernel/crypto/crc32c_generic.ko"),
    ] {
        assert!(
            listing.lines().any(|l| l == path),
            "{path} in the initramfs:\n{listing}"
        );
    }
    let dep = b.dir.join("modules.dep");
    debugfs(
        &b.slot,
        &format!("dump /lib/modules/{release}/modules.dep {}", dep.display()),
    );
    let dep = std::fs::read_to_string(dep).unwrap();
    assert!(
        dep.contains("kernel/drivers/watchdog/i6300esb.ko: kernel/drivers/watchdog/watchdog.ko"),
        "{dep}"
    );
    assert!(
        !dep.contains("kernel/sound/"),
        "only the board's modules: {dep}"
    );
}

#[test]
fn release_add_publishes_the_slot_image() {
    let b = built();
    let (keys, repo) = (b.dir.join("keys"), b.dir.join("repo"));
    let run = |args: &[&str]| {
        let o = skerryctl().args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    run(&["release", "keygen", "--out", &s(&keys)]);
    run(&["release", "init", "--keys", &s(&keys), "--repo", &s(&repo)]);
    run(&[
        "release",
        "add",
        "--keys",
        &s(&keys),
        "--repo",
        &s(&repo),
        "--board",
        "qemu-x86_64",
        "--version",
        "1.0.0",
        "--image",
        &s(&b.slot),
    ]);
    let targets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.join("metadata/2.targets.json")).unwrap())
            .unwrap();
    let release = &targets["signed"]["targets"]["qemu-x86_64/1.0.0/image.idx"]["custom"]["skerry"];
    let slot = std::fs::read(&b.slot).unwrap();
    assert_eq!(
        release["image_sha256"],
        hex::encode(sha2::Sha256::digest(&slot))
    );
    assert_eq!(release["image_length"], slot.len());
}
