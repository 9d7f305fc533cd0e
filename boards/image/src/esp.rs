//! The EFI system partition, built as a FAT image of the partition's size and copied
//! into the disk: standalone GRUB (`grub-mkimage -O x86_64-efi`, its modules built in,
//! the early config embedded), the environment block and its second copy written by
//! `GrubEnvStore` (slot A good, B bad), the boot script, and optionally the device's
//! PKI. Reproducible: fixed volume id, `mkfs.vfat --invariant`, every file's time and
//! mtools' own directory times from `SOURCE_DATE_EPOCH`.

use std::path::{Path, PathBuf};

use skerry_boot_state::grub::store::SECOND_COPY_SUFFIX;
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{BootState, BootStore, FileMedium};

use crate::error::ImageError;
use crate::tools::{need_grub_efi_modules, run, GRUB_MKIMAGE, MCOPY, MKFS_VFAT, MMD};

/// The modules built into GRUB: what the boot script and the menu entries use.
pub const GRUB_MODULES: [&str; 11] = [
    "part_gpt", "fat", "ext2", "linux", "normal", "loadenv", "test", "echo", "serial", "terminal",
    "regexp",
];
/// `configfile` too (the early config runs the boot script with it).
pub const GRUB_CONFIGFILE: &str = "configfile";

/// The device PKI files `--pki DIR` copies to `/skerry/pki/` on the ESP.
pub const PKI_FILES: [&str; 3] = ["ca.crt", "node.crt", "node.key"];
/// The biggest PKI file taken.
const MAX_PKI_BYTES: u64 = 64 << 10;

/// What goes on the ESP.
#[derive(Debug)]
pub struct EspContents<'a> {
    pub boot_script: &'a str,
    pub early_config: &'a str,
    pub seed: &'a BootState,
    /// Variables beside the boot state (`SKERRY_VERITY_A`, the slot's verity parameters).
    pub variables: &'a [(String, String)],
    pub pki: Option<&'a Path>,
    pub volume_id: u32,
}

/// Builds standalone GRUB into `dir/BOOTX64.EFI`.
pub fn grub_efi(dir: &Path, early_config: &str) -> Result<PathBuf, ImageError> {
    need_grub_efi_modules()?;
    let early = dir.join("early.cfg");
    std::fs::write(&early, early_config).map_err(ImageError::io("writing", &early))?;
    let efi = dir.join("BOOTX64.EFI");
    run(GRUB_MKIMAGE
        .command()?
        .args(["-O", "x86_64-efi", "-p", "/EFI/BOOT", "-c"])
        .arg(&early)
        .arg("-o")
        .arg(&efi)
        .args(GRUB_MODULES)
        .arg(GRUB_CONFIGFILE))?;
    Ok(efi)
}

/// Builds the ESP image `image` of `size` bytes in `work`.
pub fn build(
    work: &Path,
    image: &Path,
    size: u64,
    c: &EspContents<'_>,
    epoch: u64,
) -> Result<(), ImageError> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    files.push((
        grub_efi(work, c.early_config)?,
        "/EFI/BOOT/BOOTX64.EFI".into(),
    ));
    let env = work.join("grubenv");
    let env_error = |e: skerry_boot_state::StoreError| ImageError::Input {
        what: "the GRUB environment".into(),
        reason: e.to_string(),
    };
    let mut store = GrubEnvStore::new(FileMedium::create(&env));
    store.commit(c.seed).map_err(env_error)?;
    if !c.variables.is_empty() {
        let changes: Vec<(&str, Option<&str>)> = c
            .variables
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        store.commit_variables(&changes).map_err(env_error)?;
    }
    files.push((env.clone(), "/EFI/BOOT/grubenv".into()));
    files.push((
        work.join(format!("grubenv{SECOND_COPY_SUFFIX}")),
        format!("/EFI/BOOT/grubenv{SECOND_COPY_SUFFIX}"),
    ));
    let cfg = work.join("grub.cfg");
    std::fs::write(&cfg, c.boot_script).map_err(ImageError::io("writing", &cfg))?;
    files.push((cfg, "/EFI/BOOT/grub.cfg".into()));
    let mut dirs = vec!["/EFI", "/EFI/BOOT"];
    if let Some(pki) = c.pki {
        dirs.extend(["/skerry", "/skerry/pki"]);
        for name in PKI_FILES {
            let src = pki.join(name);
            let m = std::fs::metadata(&src).map_err(|e| ImageError::Input {
                what: format!("--pki {}", pki.display()),
                reason: format!(
                    "{name}: {e} (the directory must hold {})",
                    PKI_FILES.join(", ")
                ),
            })?;
            if !m.is_file() || m.len() > MAX_PKI_BYTES {
                return Err(ImageError::Input {
                    what: format!("--pki {}", src.display()),
                    reason: format!("not a file of at most {MAX_PKI_BYTES} bytes"),
                });
            }
            files.push((src, format!("/skerry/pki/{name}")));
        }
    }
    let file = std::fs::File::create(image).map_err(ImageError::io("creating", image))?;
    file.set_len(size)
        .map_err(ImageError::io("sizing", image))?;
    drop(file);
    run(MKFS_VFAT
        .command()?
        .args(["-F", "32", "-n", "ESP", "--invariant", "-i"])
        .arg(format!("{:08X}", c.volume_id))
        .arg(image))?;
    let img = image.as_os_str().to_string_lossy().into_owned();
    let epoch_s = epoch.to_string();
    let mut mmd = MMD.command()?;
    mmd.env("SOURCE_DATE_EPOCH", &epoch_s)
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-i")
        .arg(&img);
    for d in &dirs {
        mmd.arg(format!("::{d}"));
    }
    run(&mut mmd)?;
    let stamp = tempfile::tempdir().map_err(ImageError::io(
        "creating a temporary directory in",
        std::env::temp_dir(),
    ))?;
    for (src, dst) in files {
        // mcopy -m keeps the file's time: copy to a file stamped with the epoch first.
        let staged = stamp.path().join("f");
        std::fs::copy(&src, &staged).map_err(ImageError::io("copying", &src))?;
        crate::tree::Tree::new(stamp.path())?.set_times(epoch)?;
        run(MCOPY
            .command()?
            .env("SOURCE_DATE_EPOCH", &epoch_s)
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-m", "-o", "-i"])
            .arg(&img)
            .arg(&staged)
            .arg(format!("::{dst}")))?;
    }
    Ok(())
}
