//! Picking a board's release from verified targets metadata.
//!
//! Channels: a device with no channel configured takes only [`DEFAULT_CHANNEL`] and
//! never a pre-release (`1.2.0-rc.1`), unless that exact version is asked for; a device
//! on a channel takes that channel's releases, pre-releases included.

use skerry_tuf::image::{consistent_path, index_target, pack_target, ImageCustom, ImageRelease};
use skerry_tuf::{TargetFile, Targets};

use crate::error::InstallError;

/// A release chosen for installation, with the repository paths of its files.
#[derive(Debug, Clone)]
pub struct SelectedRelease {
    pub release: ImageRelease,
    pub version: semver::Version,
    pub index_target: String,
    /// `targets/BOARD/VERSION/<sha256>.image.idx`
    pub index_path: String,
    pub index_len: u64,
    pub pack_path: String,
    pub pack_len: u64,
    /// The signed BLAKE3 of the whole image.
    pub image_blake3: [u8; 32],
}

/// The channel of a device that names none.
pub const DEFAULT_CHANNEL: &str = "stable";

/// Which release to pick.
#[derive(Debug, Clone, Default)]
pub struct Selector<'a> {
    pub board: &'a str,
    pub channel: Option<&'a str>,
    pub version: Option<&'a semver::Version>,
}

/// The newest release of the board (on the channel, or exactly the version asked for).
pub fn select(targets: &Targets, want: &Selector<'_>) -> Result<SelectedRelease, InstallError> {
    let mut best: Option<(semver::Version, &String, ImageRelease)> = None;
    for (name, file) in &targets.targets {
        let Some(custom) = &file.custom else { continue };
        let Ok(custom) = serde_json::from_value::<ImageCustom>(custom.clone()) else {
            continue;
        };
        let release = custom.skerry;
        let channel = want.channel.unwrap_or(DEFAULT_CHANNEL);
        if release.board != want.board || release.channel != channel {
            continue;
        }
        let Ok(version) = semver::Version::parse(&release.version) else {
            continue;
        };
        if want.version.is_some_and(|v| *v != version) {
            continue;
        }
        let pre_release_allowed = want.channel.is_some() || want.version.is_some();
        if !version.pre.is_empty() && !pre_release_allowed {
            continue;
        }
        if best.as_ref().is_none_or(|(v, _, _)| version > *v) {
            best = Some((version, name, release));
        }
    }
    let Some((version, name, release)) = best else {
        let mut detail = format!(" on channel {}", want.channel.unwrap_or(DEFAULT_CHANNEL));
        if want.channel.is_none() && want.version.is_none() {
            detail += " (pre-releases only on a channel named with --channel)";
        }
        if let Some(v) = want.version {
            detail += &format!(" at version {v}");
        }
        detail += &offered(targets);
        return Err(InstallError::NoRelease {
            board: want.board.into(),
            detail,
        });
    };
    let bad = |reason: &str| InstallError::BadRelease {
        target: name.clone(),
        reason: reason.into(),
    };
    if *name != index_target(&release.board, &release.version) || !safe_name(&release.board) {
        return Err(bad("its name does not match its board and version"));
    }
    let index = &targets.targets[name];
    let pack = targets
        .targets
        .get(&release.pack)
        .ok_or_else(|| bad("its pack is not a target"))?;
    // The pack name becomes a repository path: only the one name the release tool
    // writes is accepted, so `..` or extra directories cannot lead outside the release.
    if release.pack != pack_target(&release.board, &release.version) {
        return Err(bad("its pack is not the release's image.pack"));
    }
    if release.head_length > index.length {
        return Err(bad("its index head is longer than its index"));
    }
    let Some(blake3_hex) = &release.image_blake3 else {
        return Err(InstallError::NoImageHash {
            target: name.clone(),
        });
    };
    let mut image_blake3 = [0u8; 32];
    hex::decode_to_slice(blake3_hex, &mut image_blake3)
        .map_err(|_| bad("its image_blake3 is not 64 hex digits"))?;
    Ok(SelectedRelease {
        index_path: target_path(name, index).ok_or_else(|| bad("its index has no sha256"))?,
        index_len: index.length,
        pack_path: target_path(&release.pack, pack).ok_or_else(|| bad("its pack has no sha256"))?,
        pack_len: pack.length,
        index_target: name.clone(),
        image_blake3,
        version,
        release,
    })
}

/// The most releases an error lists; a repository may hold thousands.
const MAX_LISTED: usize = 12;

/// What the repository does offer, for an error that found nothing: `; it has rpi4
/// 1.0.0 (stable), …`, newest first per board.
fn offered(targets: &Targets) -> String {
    let mut releases: Vec<(String, semver::Version, String)> = targets
        .targets
        .values()
        .filter_map(|file| {
            let custom = serde_json::from_value::<ImageCustom>(file.custom.clone()?).ok()?;
            let release = custom.skerry;
            let version = semver::Version::parse(&release.version).ok()?;
            Some((release.board, version, release.channel))
        })
        .collect();
    if releases.is_empty() {
        return "; it has no releases at all".into();
    }
    releases.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut listed: Vec<String> = releases
        .iter()
        .take(MAX_LISTED)
        .map(|(board, version, channel)| format!("{board} {version} ({channel})"))
        .collect();
    if releases.len() > MAX_LISTED {
        listed.push(format!("and {} more", releases.len() - MAX_LISTED));
    }
    format!("; it has {}", listed.join(", "))
}

pub(crate) fn target_path(name: &str, file: &TargetFile) -> Option<String> {
    let sha = file.hashes.get("sha256")?;
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(format!("targets/{}", consistent_path(name, sha)))
}

pub(crate) fn safe_name(board: &str) -> bool {
    !board.is_empty()
        && !board.starts_with('.')
        && board
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}
