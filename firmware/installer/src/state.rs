//! What a device remembers between installs, in a state directory:
//! `root.json` (the newest trusted root) and `state.json` (metadata versions seen, the
//! time floor, and the version installed per board). Both are replaced atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use skerry_tuf::{RememberedVersions, Role, RoleKeys, Root};

use crate::error::InstallError;

/// The persisted part of the device's trust.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceState {
    #[serde(default)]
    pub versions: RememberedVersions,
    /// Seconds since the epoch: no clock reading before this is believed, so expired
    /// metadata stays expired even if the device's clock is set back.
    #[serde(default)]
    pub time_floor: u64,
    /// The last version installed per board (downgrade protection).
    #[serde(default)]
    pub installed: BTreeMap<String, String>,
    /// The length of the image last written to each slot (by path), so using that slot
    /// as a seed later cuts only the image, not the whole partition.
    #[serde(default)]
    pub slot_images: BTreeMap<String, u64>,
    /// The timestamp, snapshot and targets keys `versions` were verified under. The root
    /// and this state are saved one after the other, so a power cut between the two can
    /// leave a rotated root beside versions the rotation should have reset: comparing
    /// these keys with the trusted root's on load catches that (TUF 1.0 §5.3.11).
    #[serde(default)]
    pub verified_under: Option<BTreeMap<String, RoleKeys>>,
}

impl DeviceState {
    fn state_path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    /// Loads the state of `dir`, or a fresh one when none was saved yet.
    pub fn load(dir: &Path) -> Result<Self, InstallError> {
        let path = Self::state_path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| InstallError::BadState {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(InstallError::io("read", path)(e)),
        }
    }

    /// The trusted time: the clock, but never earlier than the floor.
    pub fn trusted_now(&self, clock: SystemTime) -> SystemTime {
        let floor = SystemTime::UNIX_EPOCH + Duration::from_secs(self.time_floor);
        clock.max(floor)
    }

    /// Raises the floor to `now`.
    pub fn raise_floor(&mut self, now: SystemTime) {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.time_floor = self.time_floor.max(secs);
    }

    /// Forgets the versions whose role keys `root` no longer names, as a rotation does.
    pub fn forget_rotated(&mut self, root: &Root) {
        let Some(seen) = &self.verified_under else {
            return;
        };
        let changed = |role: Role| seen.get(role.name()) != root.roles.get(role.name());
        self.versions.forget_rotated(changed);
    }

    /// Records the role keys of `root`, under which `versions` were just verified.
    pub fn record_keys(&mut self, root: &Root) {
        let roles = [Role::Timestamp, Role::Snapshot, Role::Targets]
            .into_iter()
            .filter_map(|role| {
                let keys = root.roles.get(role.name())?;
                Some((role.name().to_string(), keys.clone()))
            })
            .collect();
        self.verified_under = Some(roles);
    }

    /// Saves the state atomically.
    pub fn save(&self, dir: &Path) -> Result<(), InstallError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| InstallError::BadState {
            path: Self::state_path(dir),
            reason: e.to_string(),
        })?;
        write_atomic(&Self::state_path(dir), &bytes)
    }
}

/// The newest root this device trusts: `dir/root.json` if it is newer than `given`.
pub fn load_root(dir: &Path, given: &[u8]) -> Result<skerry_tuf::TrustedRoot, InstallError> {
    let given_root =
        skerry_tuf::TrustedRoot::from_bytes(given).map_err(|source| InstallError::Metadata {
            what: "the trusted root".into(),
            source,
        })?;
    let path = dir.join("root.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let saved = skerry_tuf::TrustedRoot::from_bytes(&bytes).map_err(|source| {
                InstallError::Metadata {
                    what: format!("the saved root {}", path.display()),
                    source,
                }
            })?;
            Ok(if saved.version() > given_root.version() {
                saved
            } else {
                given_root
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(given_root),
        Err(e) => Err(InstallError::io("read", path)(e)),
    }
}

/// Saves the trusted root.
pub fn save_root(dir: &Path, root: &skerry_tuf::TrustedRoot) -> Result<(), InstallError> {
    write_atomic(&dir.join("root.json"), root.bytes())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), InstallError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(InstallError::io("create", dir))?;
    // The rename is durable only once the directory entry is (the helper syncs it):
    // without that, a power cut can bring back the previous state file and move the
    // time floor back.
    skerry_medium::write_atomic(path, bytes)
        .map_err(|e| InstallError::io("replace", e.path().to_owned())(e.into_io()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_never_moves_back() {
        let mut s = DeviceState::default();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        s.raise_floor(t);
        s.raise_floor(SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(s.time_floor, 1000);
        assert_eq!(s.trusted_now(SystemTime::UNIX_EPOCH), t);
    }
}
