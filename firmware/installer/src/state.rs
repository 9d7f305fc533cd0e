//! What a device remembers between installs, in a state directory.
//!
//! Each repository has its own directory, `repos/<id>/` (see [`repository_dir`]), so a
//! state directory used with one repository never refuses another's releases: there
//! `root.json` (the newest trusted root) and `state.json` (metadata versions seen, the
//! time floor, the committed version per board). `slots.json`, beside `repos/`, names
//! the release last written into each slot, so marking that slot good
//! ([`record_commit`]) can commit its version. All are replaced atomically.

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
    /// The last version installed per board (whether or not it was committed).
    #[serde(default)]
    pub installed: BTreeMap<String, String>,
    /// The version per board that booted and was marked good (downgrade protection: a
    /// release older than this is refused, but one older than a version installed and
    /// rolled back is not, so a fix published after a rollback is accepted).
    #[serde(default)]
    pub committed: BTreeMap<String, String>,
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
        match read_state_file(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| InstallError::BadState {
                path,
                reason: e.to_string(),
            }),
            None => Ok(Self::default()),
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

/// The release last written into a slot, by the slot's boot-state name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRelease {
    /// The repository's directory name under `repos/`.
    pub repository: String,
    pub board: String,
    pub version: String,
    /// Being written: an install started and has not been verified yet. A rerun of
    /// the same install reuses what the slot already holds; it is never committed.
    #[serde(default)]
    pub partial: bool,
}

fn slots_path(state_dir: &Path) -> PathBuf {
    state_dir.join("slots.json")
}

/// The release last written into each slot of `state_dir`.
pub fn load_slots(state_dir: &Path) -> Result<BTreeMap<String, SlotRelease>, InstallError> {
    let path = slots_path(state_dir);
    match read_state_file(&path)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| InstallError::BadState {
            path,
            reason: e.to_string(),
        }),
        None => Ok(BTreeMap::new()),
    }
}

/// Records that `slot` now holds `release` (after its install was verified).
pub fn record_slot(state_dir: &Path, slot: &str, release: SlotRelease) -> Result<(), InstallError> {
    let mut slots = load_slots(state_dir)?;
    slots.insert(slot.into(), release);
    let bytes = serde_json::to_vec_pretty(&slots).map_err(|e| InstallError::BadState {
        path: slots_path(state_dir),
        reason: e.to_string(),
    })?;
    write_atomic(&slots_path(state_dir), &bytes)
}

/// The booted `slot` was marked good: its release becomes the committed version of its
/// board in its repository's state. Returns that release; `None` when no install into
/// `slot` was recorded in `state_dir` (nothing to commit).
pub fn record_commit(state_dir: &Path, slot: &str) -> Result<Option<SlotRelease>, InstallError> {
    let Some(release) = load_slots(state_dir)?.remove(slot) else {
        return Ok(None);
    };
    if release.partial {
        return Err(InstallError::Unfinished {
            slot: slot.into(),
            board: release.board,
            version: release.version,
        });
    }
    if !safe_dir_name(&release.repository) {
        return Err(InstallError::BadState {
            path: slots_path(state_dir),
            reason: format!(
                "repository name \"{}\" is not a state directory name",
                release.repository
            ),
        });
    }
    let dir = state_dir.join("repos").join(&release.repository);
    let mut state = DeviceState::load(&dir)?;
    state
        .committed
        .insert(release.board.clone(), release.version.clone());
    state.save(&dir)?;
    Ok(Some(release))
}

fn safe_dir_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The directory, under `state_dir/repos/`, of the repository whose shipped root is
/// `trusted_root`: named by a hash of that root's root-role key ids (who controls the
/// repository), so a rotation of the other roles keeps it. A device whose new image
/// ships a root with new root keys finds its directory by the saved root it rotated to.
pub fn repository_dir(state_dir: &Path, trusted_root: &[u8]) -> Result<PathBuf, InstallError> {
    use sha2::{Digest, Sha256};
    let given = skerry_tuf::TrustedRoot::from_bytes(trusted_root).map_err(|source| {
        InstallError::Metadata {
            what: "the trusted root".into(),
            source,
        }
    })?;
    let mut ids: Vec<String> = given
        .root()
        .roles
        .get(Role::Root.name())
        .map(|keys| keys.keyids.clone())
        .unwrap_or_default();
    ids.sort();
    let id = hex::encode(&Sha256::digest(ids.join(",").as_bytes())[..16]);
    let repos = state_dir.join("repos");
    let keyed = repos.join(&id);
    if keyed.exists() {
        return Ok(keyed);
    }
    // A root learned by rotation, now shipped with the device: same repository.
    if let Ok(entries) = std::fs::read_dir(&repos) {
        for entry in entries.flatten() {
            let saved = std::fs::read(entry.path().join("root.json"));
            if saved.is_ok_and(|bytes| bytes == trusted_root) {
                return Ok(entry.path());
            }
        }
    }
    Ok(keyed)
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

/// The largest device-state file read (`state.json`, `slots.json`): they hold a few keys
/// and versions, so anything bigger is damage, not state.
pub const MAX_STATE_FILE: u64 = 1 << 20;

/// A state file's bytes, `None` when it does not exist; a directory, a FIFO or a file
/// over [`MAX_STATE_FILE`] is refused by name instead of being waited on or read whole.
fn read_state_file(path: &Path) -> Result<Option<Vec<u8>>, InstallError> {
    use skerry_medium::Medium as _;
    let medium = match skerry_medium::FileMedium::open(path) {
        Ok(medium) => medium,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(InstallError::BadState {
                path: path.to_owned(),
                reason: e.to_string(),
            })
        }
    };
    let bad = |e: skerry_medium::MediumError| InstallError::BadState {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let len = medium.len().map_err(bad)?;
    if len > MAX_STATE_FILE {
        return Err(InstallError::BadState {
            path: path.to_owned(),
            reason: format!(
                "{len} bytes, more than the {MAX_STATE_FILE} a device state file may hold"
            ),
        });
    }
    medium.read_all().map(Some).map_err(bad)
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
    fn a_fifo_a_directory_or_a_huge_file_in_place_of_a_state_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let slots = dir.path().join("slots.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&slots)
            .status()
            .unwrap();
        assert!(status.success());
        let err = load_slots(dir.path()).unwrap_err().to_string();
        assert!(err.contains("slots.json"), "{err}");
        std::fs::remove_file(&slots).unwrap();
        std::fs::create_dir(dir.path().join("state.json")).unwrap();
        let err = DeviceState::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
        std::fs::write(&slots, vec![b' '; (MAX_STATE_FILE + 1) as usize]).unwrap();
        let err = load_slots(dir.path()).unwrap_err().to_string();
        assert!(err.contains("more than"), "{err}");
    }

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
