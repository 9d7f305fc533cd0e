//! The repository operations: `init`, `add`, root rotation, timestamp re-signing.
//!
//! Each operation writes new immutable files first and replaces `timestamp.json` last,
//! so a client sees either the old repository or the new one, never a mix.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use skerry_chunks::ChunkParams;
use skerry_tuf::image::{
    consistent_path, index_target, pack_target, patch_index_target, patch_pack_target, ImageCustom,
    ImageRelease, PatchSet, PatchSetCustom,
};
use skerry_tuf::{
    Expiry, MetaFile, Role, RoleKeys, Root, SecretKey, Signed, Snapshot, TargetFile, Targets,
    Timestamp, TufError, SPEC_VERSION,
};

use crate::delta::{build_patches, DEFAULT_PATCH_LEVEL};
use crate::error::ReleaseError;
use crate::keys::KeySet;
use crate::pack::pack_image;
use crate::published::PublishedRelease;
use crate::repo::{tmp_name, write_atomic, Repository};
use crate::stage::Staging;

/// How long each role's metadata stays valid.
#[derive(Debug, Clone, Copy)]
pub struct Expiries {
    pub root: Duration,
    pub targets: Duration,
    pub snapshot: Duration,
    pub timestamp: Duration,
}

impl Default for Expiries {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            root: Duration::from_secs(365 * DAY),
            targets: Duration::from_secs(90 * DAY),
            snapshot: Duration::from_secs(30 * DAY),
            timestamp: Duration::from_secs(7 * DAY),
        }
    }
}

/// Writes root version 1 and an empty first release.
pub fn init(
    keys: &KeySet,
    repo: &Repository,
    threshold: u32,
    exp: &Expiries,
    now: SystemTime,
) -> Result<(), ReleaseError> {
    let first = repo.metadata_dir().join("1.root.json");
    if first.exists() {
        return Err(ReleaseError::Exists { path: first });
    }
    let root = make_root(keys, threshold, 1, Expiry::after(now, exp.root))?;
    let signed = Signed::sign(root.clone(), &keys.require_root()?)?;
    let mut staging = Staging::new();
    staging.create_dirs(&repo.targets_dir())?;
    staging.create_dirs(&repo.metadata_dir())?;
    staging.atomic_file(&first);
    repo.write_new_metadata("1.root.json", &signed.to_bytes()?)?;
    publish(
        keys,
        repo,
        &root,
        BTreeMap::new(),
        [1, 1, 1],
        exp,
        now,
        &mut staging,
    )?;
    staging.commit();
    Ok(())
}

/// One image to release.
#[derive(Debug, Clone)]
pub struct AddImage<'a> {
    pub board: &'a str,
    pub version: &'a str,
    pub channel: &'a str,
    pub image: &'a Path,
    pub params: ChunkParams,
    pub level: i32,
}

/// The earlier releases of the same board to publish patches against
/// (`--delta-from 1.0.0,1.1.0`), and the zstd level of the patches.
#[derive(Debug, Clone)]
pub struct Deltas<'a> {
    pub from: &'a [String],
    pub level: i32,
}

impl Deltas<'_> {
    /// No patches.
    pub const NONE: Deltas<'static> = Deltas {
        from: &[],
        level: DEFAULT_PATCH_LEVEL,
    };
}

/// The least a patch set must save (beyond its own patches and index) to be published:
/// its two entries in the targets metadata, which every device fetches.
pub const MIN_SET_SAVING: u64 = 1024;

/// One patch set `add` published.
#[derive(Debug, Clone)]
pub struct AddedPatches {
    pub base_version: String,
    pub index_target: String,
    pub pack_target: String,
    pub patched_chunks: u64,
    pub patch_bytes: u64,
    pub index_len: u64,
    /// Compressed bytes of the full chunks the patches stand in for.
    pub replaced_bytes: u64,
}

/// What `add` published.
#[derive(Debug, Clone)]
pub struct AddedRelease {
    pub index_target: String,
    pub pack_target: String,
    pub image_len: u64,
    pub pack_len: u64,
    pub index_len: u64,
    pub chunks: u64,
    pub targets_version: u64,
    pub patches: Vec<AddedPatches>,
}

/// Cuts and publishes an image as a new release of its board.
pub fn add_image(
    keys: &KeySet,
    repo: &Repository,
    add: &AddImage<'_>,
    exp: &Expiries,
    now: SystemTime,
) -> Result<AddedRelease, ReleaseError> {
    add_image_with_deltas(keys, repo, add, &Deltas::NONE, exp, now)
}

/// Cuts and publishes an image as a new release of its board, with a patch set against
/// each release in `deltas.from` (earlier releases of the same board, cut with the same
/// chunk sizes). Each set is two more targets, `from-BASE.patch.idx` and
/// `from-BASE.patch.pack`; the release's own index and pack are the same as without.
pub fn add_image_with_deltas(
    keys: &KeySet,
    repo: &Repository,
    add: &AddImage<'_>,
    deltas: &Deltas<'_>,
    exp: &Expiries,
    now: SystemTime,
) -> Result<AddedRelease, ReleaseError> {
    crate::check_board(add.board)?;
    crate::check_board(add.channel).map_err(|_| ReleaseError::BadName {
        what: "channel",
        value: add.channel.into(),
    })?;
    let version =
        semver::Version::parse(add.version).map_err(|source| ReleaseError::BadVersion {
            value: add.version.into(),
            source,
        })?;
    let version = version.to_string();
    let current = repo.current()?;
    let idx_name = index_target(add.board, &version);
    let pack_name = pack_target(add.board, &version);
    if current.targets.signed.targets.contains_key(&idx_name) {
        return Err(ReleaseError::AlreadyReleased {
            board: add.board.into(),
            version,
        });
    }
    // Everything that can be checked is checked before the first write.
    check_publishing_keys(&current.root.signed, keys)?;
    check_image(add.image)?;
    let verity = crate::verity::for_image(add.image)?;
    let bases = delta_bases(repo, &current.targets.signed, add, &version, deltas)?;
    let mut staging = Staging::new();
    let dir = repo.targets_dir().join(add.board).join(&version);
    staging.create_dirs(&dir)?;
    let pack_tmp = tmp_name(&dir.join("image.pack"));
    staging.file(&pack_tmp);
    let packed = pack_image(add.image, &pack_tmp, add.params, add.level)?;
    let pack_hex = hex::encode(packed.pack_sha256);
    let index_hex = hex::encode(Sha256::digest(&packed.index));
    let head_bytes = packed.head.encode();
    let pack_path = repo
        .targets_dir()
        .join(consistent_path(&pack_name, &pack_hex));
    staging.file(&pack_path);
    std::fs::rename(&pack_tmp, &pack_path).map_err(ReleaseError::io(&pack_path))?;
    let index_path = repo
        .targets_dir()
        .join(consistent_path(&idx_name, &index_hex));
    staging.atomic_file(&index_path);
    write_atomic(&index_path, &packed.index)?;

    let custom = ImageCustom {
        skerry: ImageRelease {
            board: add.board.into(),
            version: version.clone(),
            channel: add.channel.into(),
            image_length: packed.image_len,
            image_sha256: hex::encode(packed.image_sha256),
            image_blake3: Some(hex::encode(packed.image_blake3)),
            head_length: head_bytes.len() as u64,
            head_sha256: hex::encode(Sha256::digest(&head_bytes)),
            pack: pack_name.clone(),
            verity: verity.map(|v| v.to_string()),
        },
    };
    let custom = serde_json::to_value(custom).map_err(|source| TufError::Json {
        what: "image release fields".into(),
        source,
    })?;
    let mut targets = current.targets.signed.targets.clone();
    targets.insert(
        idx_name.clone(),
        target_file(packed.index.len() as u64, &index_hex, Some(custom)),
    );
    targets.insert(
        pack_name.clone(),
        target_file(packed.pack_len, &pack_hex, None),
    );
    let mut added_patches = Vec::new();
    for base in &bases {
        let tmp = tmp_name(&dir.join(format!("from-{}.patch.pack", base.version)));
        staging.file(&tmp);
        let built = build_patches(add.image, &packed.entries, base, &tmp, deltas.level)?;
        // A set costs every device its two entries in the targets metadata (about
        // 600 bytes) and a device on the base its index: it must save more than that.
        let cost = built.pack_len + built.index_bytes.len() as u64 + MIN_SET_SAVING;
        if built.index.entries.is_empty() || built.replaced_bytes <= cost {
            std::fs::remove_file(&tmp).map_err(ReleaseError::io(&tmp))?;
            continue;
        }
        let pidx_name = patch_index_target(add.board, &version, &base.version);
        let ppack_name = patch_pack_target(add.board, &version, &base.version);
        let ppack_hex = hex::encode(built.pack_sha256);
        let ppack_path = repo
            .targets_dir()
            .join(consistent_path(&ppack_name, &ppack_hex));
        staging.file(&ppack_path);
        std::fs::rename(&tmp, &ppack_path).map_err(ReleaseError::io(&ppack_path))?;
        let pidx_hex = hex::encode(Sha256::digest(&built.index_bytes));
        let pidx_path = repo
            .targets_dir()
            .join(consistent_path(&pidx_name, &pidx_hex));
        staging.atomic_file(&pidx_path);
        write_atomic(&pidx_path, &built.index_bytes)?;
        let custom = PatchSetCustom {
            skerry_patches: PatchSet {
                board: add.board.into(),
                version: version.clone(),
                base_version: base.version.clone(),
                pack: ppack_name.clone(),
                entries: built.index.entries.len() as u64,
            },
        };
        let custom = serde_json::to_value(custom).map_err(|source| TufError::Json {
            what: "patch set fields".into(),
            source,
        })?;
        targets.insert(
            pidx_name.clone(),
            target_file(built.index_bytes.len() as u64, &pidx_hex, Some(custom)),
        );
        targets.insert(
            ppack_name.clone(),
            target_file(built.pack_len, &ppack_hex, None),
        );
        added_patches.push(AddedPatches {
            base_version: base.version.clone(),
            index_target: pidx_name,
            pack_target: ppack_name,
            patched_chunks: built.index.entries.len() as u64,
            patch_bytes: built.pack_len,
            index_len: built.index_bytes.len() as u64,
            replaced_bytes: built.replaced_bytes,
        });
    }
    let versions = next_versions(&current);
    publish(
        keys,
        repo,
        &current.root.signed,
        targets,
        versions,
        exp,
        now,
        &mut staging,
    )?;
    staging.commit();
    Ok(AddedRelease {
        index_target: idx_name,
        pack_target: pack_name,
        image_len: packed.image_len,
        pack_len: packed.pack_len,
        index_len: packed.index.len() as u64,
        chunks: packed.head.chunk_count,
        targets_version: versions[0],
        patches: added_patches,
    })
}

/// Reads and checks each base of `deltas` before anything is written: a release of the
/// same board in the repository, older than the new version, cut with the same chunk
/// sizes (the device cuts its seed with the new release's sizes).
fn delta_bases(
    repo: &Repository,
    targets: &Targets,
    add: &AddImage<'_>,
    version: &str,
    deltas: &Deltas<'_>,
) -> Result<Vec<PublishedRelease>, ReleaseError> {
    let new = semver::Version::parse(version).map_err(|source| ReleaseError::BadVersion {
        value: version.into(),
        source,
    })?;
    let mut bases: Vec<PublishedRelease> = Vec::new();
    for raw in deltas.from {
        let bad = |reason: &str| ReleaseError::BadDeltaBase {
            version: version.into(),
            base: raw.clone(),
            reason: reason.into(),
        };
        let base = semver::Version::parse(raw).map_err(|source| ReleaseError::BadVersion {
            value: raw.clone(),
            source,
        })?;
        if base >= new {
            return Err(bad("a base must be an earlier release"));
        }
        let base = base.to_string();
        if bases.iter().any(|b| b.version == base) {
            return Err(bad("named twice"));
        }
        let release = match PublishedRelease::read(repo, targets, add.board, &base) {
            Err(ReleaseError::NoSuchRelease { .. }) => {
                return Err(bad("no such release of this board in the repository"))
            }
            other => other?,
        };
        if release.head.params != add.params {
            return Err(bad("it was cut with other chunk sizes"));
        }
        bases.push(release);
    }
    Ok(bases)
}

/// Re-signs `timestamp.json` alone with a new version and expiry.
pub fn resign_timestamp(
    keys: &KeySet,
    repo: &Repository,
    exp: &Expiries,
    now: SystemTime,
) -> Result<u64, ReleaseError> {
    let current = repo.current()?;
    check_role(
        &current.root.signed,
        Role::Timestamp,
        &keys.timestamp,
        &keys.dir,
    )?;
    let mut ts = current.timestamp.signed;
    ts.version += 1;
    ts.expires = Expiry::after(now, exp.timestamp);
    let signed = Signed::sign(ts, &[&keys.timestamp])?;
    write_atomic(
        &repo.metadata_dir().join("timestamp.json"),
        &signed.to_bytes()?,
    )?;
    Ok(signed.signed.version)
}

/// Publishes root `N+1` with `new`'s keys, signed by the old root keys and the new ones,
/// then re-publishes the current targets under the new keys.
pub fn rotate_root(
    old: &KeySet,
    new: &KeySet,
    repo: &Repository,
    threshold: u32,
    exp: &Expiries,
    now: SystemTime,
) -> Result<u64, ReleaseError> {
    let current = repo.current()?;
    let old_root = &current.root.signed;
    let old_ids = &old_root.role(Role::Root)?.keyids;
    let mut signers: Vec<&SecretKey> = Vec::new();
    for key in old.require_root()? {
        if old_ids.contains(&key.key_id()?) {
            signers.push(key);
        }
    }
    if signers.is_empty() {
        return Err(ReleaseError::WrongKeys {
            dir: old.dir.clone(),
            role: "root".into(),
        });
    }
    let version = old_root.version + 1;
    let root = make_root(new, threshold, version, Expiry::after(now, exp.root))?;
    for key in new.require_root()? {
        let id = key.key_id()?;
        if !signers
            .iter()
            .any(|k| k.key_id().ok().as_ref() == Some(&id))
        {
            signers.push(key);
        }
    }
    let signed = Signed::sign(root.clone(), &signers)?;
    let mut staging = Staging::new();
    let root_name = format!("{version}.root.json");
    staging.atomic_file(&repo.metadata_dir().join(&root_name));
    repo.write_new_metadata(&root_name, &signed.to_bytes()?)?;
    let versions = next_versions(&current);
    publish(
        new,
        repo,
        &root,
        current.targets.signed.targets,
        versions,
        exp,
        now,
        &mut staging,
    )?;
    staging.commit();
    Ok(version)
}

fn next_versions(current: &crate::repo::Current) -> [u64; 3] {
    [
        current.targets.signed.version + 1,
        current.snapshot.signed.version + 1,
        current.timestamp.signed.version + 1,
    ]
}

fn target_file(length: u64, sha256_hex: &str, custom: Option<serde_json::Value>) -> TargetFile {
    TargetFile {
        length,
        hashes: BTreeMap::from([("sha256".to_string(), sha256_hex.to_string())]),
        custom,
    }
}

fn make_root(
    keys: &KeySet,
    threshold: u32,
    version: u64,
    expires: Expiry,
) -> Result<Root, ReleaseError> {
    let root_keys = keys.require_root()?;
    if threshold == 0 || threshold as usize > root_keys.len() {
        return Err(TufError::BadThreshold {
            threshold,
            keys: root_keys.len(),
        }
        .into());
    }
    let mut all = BTreeMap::new();
    let mut ids = |ks: &[&SecretKey]| -> Result<Vec<String>, ReleaseError> {
        let mut out = Vec::new();
        for k in ks {
            let id = k.key_id()?;
            all.insert(id.clone(), k.public());
            out.push(id);
        }
        Ok(out)
    };
    let roles = BTreeMap::from([
        (
            "root".to_string(),
            RoleKeys {
                keyids: ids(&root_keys)?,
                threshold,
            },
        ),
        ("targets".to_string(), one(ids(&[&keys.targets])?)),
        ("snapshot".to_string(), one(ids(&[&keys.snapshot])?)),
        ("timestamp".to_string(), one(ids(&[&keys.timestamp])?)),
    ]);
    Ok(Root {
        kind: "root".into(),
        spec_version: SPEC_VERSION.into(),
        version,
        expires,
        consistent_snapshot: true,
        keys: all,
        roles,
    })
}

fn one(keyids: Vec<String>) -> RoleKeys {
    RoleKeys {
        keyids,
        threshold: 1,
    }
}

fn check_role(root: &Root, role: Role, key: &SecretKey, dir: &Path) -> Result<(), ReleaseError> {
    if root.role(role)?.keyids.contains(&key.key_id()?) {
        Ok(())
    } else {
        Err(ReleaseError::WrongKeys {
            dir: dir.into(),
            role: role.name().into(),
        })
    }
}

/// A listing of a metadata file by version, length and sha256: devices refuse a file
/// listed by version alone, so the child role's key alone cannot swap it.
fn pinned(version: u64, bytes: &[u8]) -> MetaFile {
    MetaFile {
        version,
        length: Some(bytes.len() as u64),
        hashes: Some(BTreeMap::from([(
            "sha256".to_string(),
            hex::encode(Sha256::digest(bytes)),
        )])),
    }
}

/// Checks that `keys` may sign targets, snapshot and timestamp under `root`.
fn check_publishing_keys(root: &Root, keys: &KeySet) -> Result<(), ReleaseError> {
    check_role(root, Role::Targets, &keys.targets, &keys.dir)?;
    check_role(root, Role::Snapshot, &keys.snapshot, &keys.dir)?;
    check_role(root, Role::Timestamp, &keys.timestamp, &keys.dir)
}

/// Refuses a missing, unreadable or empty image before anything is written.
fn check_image(image: &Path) -> Result<(), ReleaseError> {
    let meta = std::fs::metadata(image).map_err(|source| ReleaseError::UnreadableImage {
        path: image.into(),
        source,
    })?;
    // A block device reports length 0 here; pack_image refuses it if it reads nothing.
    if meta.is_file() && meta.len() == 0 {
        return Err(ReleaseError::EmptyImage { path: image.into() });
    }
    Ok(())
}

/// Writes `V.targets.json`, `V.snapshot.json` and then `timestamp.json`, recording the
/// new files in `staging`.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per repository operation, each naming every part it publishes"
)]
fn publish(
    keys: &KeySet,
    repo: &Repository,
    root: &Root,
    targets: BTreeMap<String, TargetFile>,
    [targets_v, snapshot_v, timestamp_v]: [u64; 3],
    exp: &Expiries,
    now: SystemTime,
    staging: &mut Staging,
) -> Result<(), ReleaseError> {
    check_publishing_keys(root, keys)?;
    let targets = Targets {
        kind: "targets".into(),
        spec_version: SPEC_VERSION.into(),
        version: targets_v,
        expires: Expiry::after(now, exp.targets),
        targets,
    };
    let targets_bytes = Signed::sign(targets, &[&keys.targets])?.to_bytes()?;
    let targets_name = format!("{targets_v}.targets.json");
    staging.atomic_file(&repo.metadata_dir().join(&targets_name));
    repo.write_new_metadata(&targets_name, &targets_bytes)?;
    let snapshot = Snapshot {
        kind: "snapshot".into(),
        spec_version: SPEC_VERSION.into(),
        version: snapshot_v,
        expires: Expiry::after(now, exp.snapshot),
        meta: BTreeMap::from([(
            "targets.json".to_string(),
            pinned(targets_v, &targets_bytes),
        )]),
    };
    let snapshot_bytes = Signed::sign(snapshot, &[&keys.snapshot])?.to_bytes()?;
    let snapshot_name = format!("{snapshot_v}.snapshot.json");
    staging.atomic_file(&repo.metadata_dir().join(&snapshot_name));
    repo.write_new_metadata(&snapshot_name, &snapshot_bytes)?;
    let timestamp = Timestamp {
        kind: "timestamp".into(),
        spec_version: SPEC_VERSION.into(),
        version: timestamp_v,
        expires: Expiry::after(now, exp.timestamp),
        meta: BTreeMap::from([(
            "snapshot.json".to_string(),
            pinned(snapshot_v, &snapshot_bytes),
        )]),
    };
    let ts_bytes = Signed::sign(timestamp, &[&keys.timestamp])?.to_bytes()?;
    let ts_path = repo.metadata_dir().join("timestamp.json");
    staging.atomic_file(&ts_path);
    let written = write_atomic(&ts_path, &ts_bytes);
    if written.is_err() && std::fs::read(&ts_path).is_ok_and(|b| b == ts_bytes) {
        // The new timestamp is in place (only making it durable failed): the files it
        // names must stay, or the repository would point at nothing.
        staging.keep();
    }
    written
}
