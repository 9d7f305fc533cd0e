//! The boot script a committed release carries, put on the ESP.
//!
//! A release carries a boot script when its slot holds [`SLOT_SCRIPT`]
//! (`/boot/esp/grub.cfg`) and its [`IMAGE_JSON`] names the script's version
//! (`"boot_script_version": N`, a whole number that only goes up). Once the booted slot
//! is committed (right after probation commits it, and at every start on a committed
//! slot, which finishes an update a power cut interrupted), a carried script newer than
//! the ESP's is written there by [`BootScriptUpdate`] (beside the old one, then one
//! switch of the environment: see `skerry_boot_state::grub::boot_script`). A script older
//! than the ESP's (a rollback to an older release) leaves the newer one in place. Only a
//! GRUB boot store has a boot script; other stores are left alone.

use std::io::Read;
use std::path::{Path, PathBuf};

use skerry_boot_state::grub::boot_script::{
    Applied, BootScriptError, BootScriptUpdate, ENV_FILE, MAX_SCRIPT_SIZE,
};
use skerry_boot_state::StoreSpec;
use skerry_medium::dir::HostDir;

/// The boot script in the slot, relative to its root.
pub const SLOT_SCRIPT: &str = "boot/esp/grub.cfg";
/// What went into the slot, relative to its root (written by the image builder).
pub const IMAGE_JSON: &str = "etc/skerry/image.json";
/// The key of [`IMAGE_JSON`] holding the boot script's version.
pub const VERSION_KEY: &str = "boot_script_version";
/// The most bytes of [`IMAGE_JSON`] read.
const MAX_IMAGE_JSON: u64 = 64 << 10;

/// What became of the release's boot script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The boot store is not a GRUB environment: there is no boot script to update.
    NotGrub,
    /// The release carries no boot script.
    NotCarried,
    /// Written, or already there.
    Applied(Applied),
    /// The ESP's script is newer than the release's (after a rollback): kept.
    KeptNewer { offered: u32, installed: u32 },
}

/// Why the release's boot script could not be put on the ESP.
#[derive(Debug, thiserror::Error)]
pub enum CarryError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("the boot script: {0}")]
    Update(#[from] BootScriptError),
}

fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, CarryError> {
    let file = match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|source| CarryError::Read {
            path: path.to_owned(),
            source,
        })?,
    };
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| CarryError::Read {
            path: path.to_owned(),
            source,
        })?;
    Ok(Some(bytes))
}

/// The boot script version `image.json` names, if any.
fn carried_version(root: &Path) -> Result<Option<u32>, CarryError> {
    let path = root.join(IMAGE_JSON);
    let Some(bytes) = read_bounded(&path, MAX_IMAGE_JSON)? else {
        return Ok(None);
    };
    let invalid = |reason: String| CarryError::Invalid {
        path: path.clone(),
        reason,
    };
    if bytes.len() as u64 > MAX_IMAGE_JSON {
        return Err(invalid(format!("more than {MAX_IMAGE_JSON} bytes")));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    match json.get(VERSION_KEY) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("{VERSION_KEY} is {v}, not a whole number"))),
    }
}

/// Puts the boot script the slot mounted at `root` carries on the ESP of the GRUB boot
/// store `spec` (its environment block's directory), when it is newer.
pub fn apply_carried(root: &Path, spec: &StoreSpec) -> Result<Outcome, CarryError> {
    let StoreSpec::Grub { path: env } = spec else {
        return Ok(Outcome::NotGrub);
    };
    let Some(version) = carried_version(root)? else {
        return Ok(Outcome::NotCarried);
    };
    let script_path = root.join(SLOT_SCRIPT);
    let script =
        read_bounded(&script_path, MAX_SCRIPT_SIZE as u64)?.ok_or_else(|| CarryError::Invalid {
            path: script_path.clone(),
            reason: format!("missing, but {IMAGE_JSON} names boot script version {version}"),
        })?;
    if env.file_name().and_then(|n| n.to_str()) != Some(ENV_FILE) {
        return Err(CarryError::Invalid {
            path: env.clone(),
            reason: format!(
                "a boot script update needs the environment block named {ENV_FILE} beside the scripts"
            ),
        });
    }
    let esp = match env.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    match BootScriptUpdate::new(HostDir::new(esp)).apply(&script, version) {
        Ok(applied) => Ok(Outcome::Applied(applied)),
        Err(BootScriptError::Older { offered, installed }) => {
            Ok(Outcome::KeptNewer { offered, installed })
        }
        Err(e) => Err(e.into()),
    }
}
