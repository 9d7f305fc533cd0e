//! The programs a QEMU image is built from, and building the image.
//!
//! `scripts/build-static --fault-hooks` builds skerryd (static, production), skerryctl
//! and `skerryd-fault-hooks` once per test process (the first build on a clean machine
//! takes about ten minutes; later ones only relink what changed). Set
//! `SKERRY_STATIC_DIR` to a directory that already holds them to skip the build.
//!
//! [`ImageBuild`] runs `skerryctl image build --board qemu-x86_64`, which writes the disk
//! image and, beside it, the slot image that `skerryctl release add` signs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context as _};

use super::BOARD_DEFINITION;

/// The static programs of one build.
#[derive(Debug, Clone)]
pub struct StaticPrograms {
    /// skerryd without fault hooks (what a production image holds).
    pub skerryd: PathBuf,
    /// skerryd built with the `fault-hooks` feature (test images only).
    pub skerryd_fault_hooks: PathBuf,
    /// skerryctl (it builds the images).
    pub skerryctl: PathBuf,
}

static PROGRAMS: OnceLock<Result<StaticPrograms, String>> = OnceLock::new();

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

/// The static programs, built on the first call of this process.
pub fn static_programs() -> anyhow::Result<&'static StaticPrograms> {
    PROGRAMS
        .get_or_init(|| build_static().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn build_static() -> anyhow::Result<StaticPrograms> {
    let dir = match std::env::var_os("SKERRY_STATIC_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = workspace_root().join("scripts/build-static");
            let out = Command::new(&script)
                .arg("--fault-hooks")
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "{} --fault-hooks failed ({}): {}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let Some(last) = stdout.lines().rev().find(|l| !l.trim().is_empty()) else {
                bail!("{} printed no directory", script.display());
            };
            PathBuf::from(last.trim())
        }
    };
    let programs = StaticPrograms {
        skerryd: dir.join("skerryd"),
        skerryd_fault_hooks: dir.join("skerryd-fault-hooks"),
        skerryctl: dir.join("skerryctl"),
    };
    for path in [
        &programs.skerryd,
        &programs.skerryd_fault_hooks,
        &programs.skerryctl,
    ] {
        if !path.is_file() {
            bail!(
                "{} is missing after the static build (scripts/build-static --fault-hooks)",
                path.display()
            );
        }
    }
    Ok(programs)
}

/// One `skerryctl image build` for the QEMU board.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    pub version: semver::Version,
    /// The disk image to write; the slot image goes beside it (`NAME.slot.img`).
    pub out: PathBuf,
    /// `--pki DIR`: the device's `ca.crt`, `node.crt`, `node.key`.
    pub pki: Option<PathBuf>,
    /// `--config FILE`: the factory machine config.
    pub config: Option<PathBuf>,
    /// `--extension DIR`, in order.
    pub extensions: Vec<PathBuf>,
    /// `--fault WORD` (then skerryd is the fault-hooks build).
    pub fault: Option<String>,
    /// The fault-hooks skerryd without a fault word (its on-demand trigger only).
    pub fault_hooks: bool,
}

/// What a build wrote.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub disk: PathBuf,
    pub slot: PathBuf,
}

impl ImageBuild {
    /// A build of `version` into `out`, with nothing else.
    pub fn new(version: semver::Version, out: &Path) -> ImageBuild {
        ImageBuild {
            version,
            out: out.to_owned(),
            pki: None,
            config: None,
            extensions: Vec::new(),
            fault: None,
            fault_hooks: false,
        }
    }

    /// The slot image this build writes beside the disk.
    pub fn slot_out(&self) -> PathBuf {
        let stem = self
            .out
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".img").to_owned())
            .unwrap_or_else(|| "disk".into());
        self.out.with_file_name(format!("{stem}.slot.img"))
    }

    /// Runs the build with `programs`.
    pub fn run(&self, programs: &StaticPrograms) -> anyhow::Result<BuiltImage> {
        let skerryd = if self.fault.is_some() || self.fault_hooks {
            &programs.skerryd_fault_hooks
        } else {
            &programs.skerryd
        };
        let slot = self.slot_out();
        let mut command = Command::new(&programs.skerryctl);
        command
            .args(["image", "build", "--board", BOARD_DEFINITION, "--version"])
            .arg(self.version.to_string())
            .arg("--out")
            .arg(&self.out)
            .arg("--slot-out")
            .arg(&slot)
            .arg("--skerryd")
            .arg(skerryd);
        if let Some(pki) = &self.pki {
            command.arg("--pki").arg(pki);
        }
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        for ext in &self.extensions {
            command.arg("--extension").arg(ext);
        }
        if let Some(fault) = &self.fault {
            command.arg("--fault").arg(fault);
        }
        let shown = format!("{command:?}");
        let out = command
            .output()
            .with_context(|| format!("running {shown}"))?;
        if !out.status.success() {
            bail!(
                "{shown} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for path in [&self.out, &slot] {
            if !path.is_file() {
                bail!("{shown} succeeded but wrote no {}", path.display());
            }
        }
        Ok(BuiltImage {
            disk: self.out.clone(),
            slot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_image_goes_beside_the_disk() {
        let build = ImageBuild::new(semver::Version::new(1, 0, 0), Path::new("/t/v1.img"));
        assert_eq!(build.slot_out(), Path::new("/t/v1.slot.img"));
    }
}
