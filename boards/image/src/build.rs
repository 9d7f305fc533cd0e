//! One build, start to end: check the inputs, stage and pack the slot, build the ESP,
//! assemble the disk, write the metadata, and only then move the outputs into place (a
//! failed build leaves nothing at `--out`, `--slot-out` or `<out>.json`).

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use skerry_boards::{layout, BoardDefinition, BootloaderKind, Filesystem, Role};
use skerry_boot_state::{BootState, SlotName};

use crate::boot_script::{boot_script, early_config, verity_variable};
use crate::elf::{linkage, Linkage};
use crate::error::ImageError;
use crate::esp::{self, EspContents};
use crate::extension::{self, Budget, Extension};
use crate::gpt;
use crate::kernel::{self, sha256_file};
use crate::slot::{self, BaseInputs};
use crate::tree::Tree;
use crate::verity::{self, VerityParams};
use crate::{ext4, FaultHook};

/// The build epoch when `SOURCE_DATE_EPOCH` is not set: 2025-01-01T00:00:00Z.
pub const DEFAULT_EPOCH: u64 = 1_735_689_600;
/// The biggest skerryd taken.
pub const MAX_SKERRYD_BYTES: u64 = 256 << 20;
/// The biggest factory config taken.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Attempts a trial gets on a fresh disk.
pub const TRIES: u8 = 3;

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub board: BoardDefinition,
    /// The definition's text, as it goes to `/etc/skerry/board.toml`.
    pub board_toml: String,
    pub version: String,
    pub out: PathBuf,
    pub slot_out: PathBuf,
    pub skerryd: PathBuf,
    pub config: Option<PathBuf>,
    pub extensions: Vec<Extension>,
    pub fault: Option<FaultHook>,
    pub pki: Option<PathBuf>,
    pub kernel_cache: PathBuf,
    pub epoch: u64,
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    pub disk: PathBuf,
    pub slot: PathBuf,
    pub metadata: PathBuf,
    pub slot_sha256: String,
    pub slot_bytes: u64,
    pub initramfs_bytes: u64,
    pub tree_bytes: u64,
    pub disk_bytes: u64,
    /// The slot's verity tree: where it is and its root hash.
    pub verity: VerityParams,
}

/// `<out>.json` beside the disk.
pub fn metadata_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// `<out without .img>.slot.img`.
pub fn default_slot_out(out: &Path) -> PathBuf {
    let s = out.to_string_lossy();
    PathBuf::from(format!("{}.slot.img", s.strip_suffix(".img").unwrap_or(&s)))
}

fn board_error(board: &BoardDefinition, reason: impl Into<String>) -> ImageError {
    ImageError::Board {
        board: board.name.clone(),
        reason: reason.into(),
    }
}

/// Checks a file input: a regular file of at most `max` bytes.
fn input_file(what: &str, path: &Path, max: u64) -> Result<(), ImageError> {
    let m = std::fs::metadata(path).map_err(|e| ImageError::Input {
        what: format!("{what} {}", path.display()),
        reason: e.to_string(),
    })?;
    if !m.is_file() || m.len() > max {
        return Err(ImageError::Input {
            what: format!("{what} {}", path.display()),
            reason: format!("not a file of at most {max} bytes"),
        });
    }
    Ok(())
}

/// Refuses a skerryd with a dynamic loader, and (with `--fault`) one without the hooks.
pub fn check_skerryd(path: &Path, fault: Option<FaultHook>) -> Result<String, ImageError> {
    let bad = |reason: String| ImageError::Skerryd {
        path: path.to_owned(),
        reason,
    };
    input_file("skerryd", path, MAX_SKERRYD_BYTES)?;
    let mut head = vec![0u8; 64 << 10];
    let mut f = std::fs::File::open(path).map_err(ImageError::io("reading", path))?;
    let n = f.read(&mut head).map_err(ImageError::io("reading", path))?;
    head.truncate(n);
    match linkage(&head).map_err(bad)? {
        Linkage::Static => {}
        Linkage::Dynamic => return Err(bad(
            "not static (it names a dynamic loader, PT_INTERP); build with scripts/build-static"
                .into(),
        )),
    }
    if let Some(hook) = fault {
        let out = std::process::Command::new(path)
            .arg("--version")
            .output()
            .map_err(|e| bad(format!("cannot run --version: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success()
            || !text
                .split(|c: char| !(c.is_alphanumeric() || c == '-'))
                .any(|w| w == "fault-hooks")
        {
            return Err(bad(format!(
                "--fault {} needs a skerryd built with the fault-hooks feature (`skerryd --version` lists it; scripts/build-static --fault-hooks), and this one says {:?}",
                hook.as_str(),
                text.trim()
            )));
        }
    }
    sha256_file(path)
}

/// Checks that the builder can make an image for `board`.
pub fn check_board(board: &BoardDefinition) -> Result<(), ImageError> {
    if board.bootloader.kind != BootloaderKind::GrubEfi {
        return Err(board_error(
            board,
            format!(
                "its bootloader is {:?}; image build makes GRUB-EFI disks only",
                board.bootloader.kind
            ),
        ));
    }
    if board.kernel.is_none() {
        return Err(board_error(
            board,
            "has no [kernel] table naming the Debian kernel package and version",
        ));
    }
    let esp = board
        .disk
        .partitions
        .iter()
        .filter(|p| p.role == Role::Boot && p.filesystem == Filesystem::Vfat)
        .count();
    if esp != 1 {
        return Err(board_error(
            board,
            "needs exactly one FAT boot partition (the ESP)",
        ));
    }
    for p in &board.disk.partitions {
        if p.role == Role::Slot
            && (p.filesystem != Filesystem::Ext4 || p.content.as_deref() != Some("root"))
        {
            return Err(board_error(
                board,
                format!("slot partition {} must be an ext4 root", p.name),
            ));
        }
    }
    Ok(())
}

/// Builds the image.
pub fn build(req: &BuildRequest) -> Result<Built, ImageError> {
    let board = &req.board;
    check_board(board)?;
    let kernel_pin = board
        .kernel
        .clone()
        .ok_or_else(|| board_error(board, "no [kernel]"))?;
    let skerryd_sha256 = check_skerryd(&req.skerryd, req.fault)?;
    if let Some(config) = &req.config {
        input_file("--config", config, MAX_CONFIG_BYTES)?;
    }
    let placed = layout::place(&board.disk);
    let slot_a = placed
        .iter()
        .find(|p| p.partition.role == Role::Slot)
        .ok_or_else(|| board_error(board, "has no slot partition"))?;
    let esp_part = placed
        .iter()
        .find(|p| p.partition.role == Role::Boot)
        .ok_or_else(|| board_error(board, "has no ESP"))?;
    let slot_size = slot_a.end - slot_a.start;

    let work = tempfile::Builder::new()
        .prefix("skerry-image-")
        .tempdir()
        .map_err(ImageError::io(
            "creating a temporary directory in",
            std::env::temp_dir(),
        ))?;
    let w = work.path();
    let deb = kernel::locate(&kernel_pin, "amd64", &req.kernel_cache)?;
    let unpacked = kernel::unpack(&deb, &w.join("kernel"))?;
    let module_files = kernel::resolve(&unpacked, &board.modules)?;
    let modules_dir = kernel::stage_modules(&unpacked, &module_files, &w.join("modules"))?;

    let tree = Tree::new(&w.join("slot"))?;
    let inputs = BaseInputs {
        vmlinuz: &unpacked.vmlinuz,
        skerryd: &req.skerryd,
        board_toml: &req.board_toml,
        config: req.config.as_deref(),
        fault: req.fault.map(FaultHook::as_str),
        modules: (&modules_dir, &unpacked.release),
    };
    let host_files = slot::base(&tree, &inputs)?;
    let mut budget = Budget::default();
    let mut extensions = Vec::new();
    for ext in &req.extensions {
        let entries = extension::apply(&tree, ext, &mut budget)?;
        let name = ext
            .source()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sha256 = match ext {
            Extension::Layer(p) => Some(sha256_file(p)?),
            Extension::Dir(_) => None,
        };
        extensions.push(
            json!({ "kind": ext.kind(), "name": name, "entries": entries, "sha256": sha256 }),
        );
    }
    let initramfs = slot::initramfs(&inputs, req.epoch)?;
    tree.file("boot/initrd.img", &initramfs, false)?;
    let modules: Vec<String> = module_files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap_or(f).to_owned())
        .collect();
    let image_json = json!({
        "board": board.name,
        "version": req.version,
        "kernel": { "package": deb.package, "version": deb.version, "release": unpacked.release, "sha256": deb.sha256 },
        "skerryd": { "sha256": skerryd_sha256 },
        "modules": modules,
        "extensions": extensions,
        "fault": req.fault.map(FaultHook::as_str),
        "host_files": host_files,
        "build_epoch": req.epoch,
    });
    let image_text = serde_json::to_string_pretty(&image_json).unwrap_or_default() + "\n";
    tree.file("etc/skerry/image.json", image_text.as_bytes(), false)?;
    tree.set_times(req.epoch)?;
    let tree_bytes = tree.blocks_bytes()?;
    // ext4's own metadata (inode tables, bitmaps) takes a few percent; leave an eighth.
    if tree_bytes.saturating_add(slot_size / 8) > slot_size {
        return Err(ImageError::SlotTooSmall {
            partition: slot_a.partition.name.clone(),
            needed: tree_bytes,
            size: slot_size,
        });
    }

    let slot_tmp = sibling_tmp(&req.slot_out);
    let out_tmp = sibling_tmp(&req.out);
    let meta_path = metadata_path(&req.out);
    let meta_tmp = sibling_tmp(&meta_path);
    let verity_path = verity_sidecar(&req.slot_out);
    let verity_tmp = sibling_tmp(&verity_path);
    let result = (|| {
        let uuid = gpt::name_uuid(&format!("slot-fs:{}", board.name));
        let seed = gpt::name_uuid(&format!("slot-hash-seed:{}", board.name));
        // The filesystem leaves room for its verity tree at the end of the partition.
        let data_blocks = verity::data_blocks_for(slot_size);
        let fs_bytes = data_blocks * verity::BLOCK;
        ext4::pack(tree.root(), &slot_tmp, fs_bytes, &uuid, &seed, req.epoch)?;
        let salt = verity::salt_for(&board.name, &req.version);
        let verity = verity::append_tree(&slot_tmp, data_blocks, &salt)?;
        // The slot image is the whole partition: zeros after the tree, so installing
        // it leaves no old bytes behind in the slot.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&slot_tmp)
            .and_then(|f| f.set_len(slot_size))
            .map_err(ImageError::io("padding the slot image", &slot_tmp))?;
        let slot_sha256 = sha256_file(&slot_tmp)?;
        let slot_name = slot_a.partition.slot.as_deref().unwrap_or("A");

        let names: Vec<SlotName> = board
            .disk
            .partitions
            .iter()
            .filter_map(|p| p.slot.as_deref())
            .map(|s| SlotName::new(s).map_err(|e| board_error(board, e.to_string())))
            .collect::<Result<_, _>>()?;
        let state = BootState::new(&names, TRIES).map_err(|e| board_error(board, e.to_string()))?;
        let script = boot_script(board, &state);
        let esp_img = w.join("esp.img");
        let volume_id =
            u32::from_str_radix(&gpt::name_uuid(&format!("esp:{}", board.name))[..8], 16)
                .unwrap_or(0);
        let esp_work = w.join("esp");
        std::fs::create_dir_all(&esp_work).map_err(ImageError::io("creating", &esp_work))?;
        esp::build(
            &esp_work,
            &esp_img,
            esp_part.end - esp_part.start,
            &EspContents {
                boot_script: &script,
                early_config: &early_config(),
                seed: &state,
                variables: &[(verity_variable(slot_name), verity.env_value())],
                pki: req.pki.as_deref(),
                volume_id,
            },
            req.epoch,
        )?;

        let disk_bytes = board.disk.min_size.bytes();
        let f = std::fs::File::create(&out_tmp).map_err(ImageError::io("creating", &out_tmp))?;
        f.set_len(disk_bytes)
            .map_err(ImageError::io("sizing", &out_tmp))?;
        drop(f);
        gpt::write_table(board, &out_tmp)?;
        copy_into(&esp_img, &out_tmp, esp_part.start)?;
        copy_into(&slot_tmp, &out_tmp, slot_a.start)?;

        let partitions: Vec<_> = placed
            .iter()
            .map(|p| {
                json!({
                    "number": p.number, "name": p.partition.name, "start": p.start, "size": p.end - p.start,
                    "guid": gpt::partition_guid(&board.name, &p.partition.name),
                    "content": match p.partition.role { Role::Boot => "esp", Role::Slot if p.start == slot_a.start => "slot image", Role::Slot => "zeros", Role::State => "zeros" },
                })
            })
            .collect();
        let meta = json!({
            "board": board.name, "version": req.version, "disk_bytes": disk_bytes,
            "disk_guid": gpt::disk_guid(&board.name), "partitions": partitions,
            "slot": { "file": req.slot_out.file_name().map(|n| n.to_string_lossy().into_owned()), "bytes": slot_size, "sha256": slot_sha256, "verity": verity, "kernel_arg": verity.kernel_arg() },
            "initramfs_bytes": initramfs.len(), "pki": req.pki.is_some(), "image": image_json,
        });
        let meta_text = serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n";
        std::fs::write(&meta_tmp, meta_text).map_err(ImageError::io("writing", &meta_tmp))?;
        std::fs::write(&verity_tmp, format!("{}\n", verity.env_value()))
            .map_err(ImageError::io("writing", &verity_tmp))?;
        Ok((slot_sha256, disk_bytes, verity))
    })();
    let (slot_sha256, disk_bytes, verity) = match result {
        Ok(v) => v,
        Err(e) => {
            for p in [&slot_tmp, &out_tmp, &meta_tmp, &verity_tmp] {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    for (from, to) in [
        (&slot_tmp, &req.slot_out),
        (&out_tmp, &req.out),
        (&meta_tmp, &meta_path),
        (&verity_tmp, &verity_path),
    ] {
        std::fs::rename(from, to).map_err(ImageError::io("moving the output into place at", to))?;
    }
    Ok(Built {
        disk: req.out.clone(),
        slot: req.slot_out.clone(),
        metadata: meta_path,
        slot_sha256,
        slot_bytes: slot_size,
        initramfs_bytes: initramfs.len() as u64,
        tree_bytes,
        disk_bytes,
        verity,
    })
}

/// `<slot image>.verity`: the slot's verity parameters on one line, which
/// `skerryctl release add` signs into the release beside the image digest.
pub fn verity_sidecar(slot: &Path) -> PathBuf {
    let mut s = slot.as_os_str().to_owned();
    s.push(".verity");
    PathBuf::from(s)
}

fn sibling_tmp(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Copies `src` into `disk` at `offset`, skipping 64 KiB blocks of zeros (the disk is
/// sparse and reads back zeros there).
fn copy_into(src: &Path, disk: &Path, offset: u64) -> Result<(), ImageError> {
    let mut from = std::fs::File::open(src).map_err(ImageError::io("reading", src))?;
    let mut to = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(ImageError::io("writing", disk))?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = offset;
    loop {
        let n = read_full(&mut from, &mut buf).map_err(ImageError::io("reading", src))?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            to.seek(SeekFrom::Start(at))
                .and_then(|_| to.write_all(&buf[..n]))
                .map_err(ImageError::io("writing", disk))?;
        }
        at += n as u64;
    }
    to.sync_all().map_err(ImageError::io("flushing", disk))
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
