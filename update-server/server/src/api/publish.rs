//! Publishing an uploaded release into the served repository, after verifying it
//! against the root the server already trusts: every new root is signed by the one
//! before it (and by itself), the upload's timestamp, snapshot and targets chain under
//! the final root (thresholds, expiry, length and sha256 pins), versions only move
//! forward, and every target's length and sha256 match its file. Nothing in the served
//! repository changes until all of that passed; then new files are renamed in and
//! `timestamp.json` is replaced last (the one commit point), under the repository lock
//! the timestamp re-signer also takes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use skerry_tuf::{
    Expiry, RememberedVersions, Role, SecretKey, Signed, Timestamp, TrustedRoot, TufError,
    SPEC_VERSION,
};

use super::staged::{MetadataName, StagedFile};
use crate::repo_path::RepoPath;

/// Why an upload was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the server trusts no root yet: copy the release repository's 1.root.json to DIR/repository/metadata/ on the server (the trust anchor is never taken over the network)")]
    NoTrustedRoot,
    #[error("the served root {file} cannot be trusted")]
    ServedRoot {
        file: String,
        #[source]
        source: TufError,
    },
    #[error("the served repository cannot be read")]
    Served(#[source] skerry_release::ReleaseError),
    #[error("{file} differs from the served root of that version (roots are never replaced)")]
    RootConflict { file: String },
    #[error("the upload's roots skip version {missing} (each new root must be signed by the one before it)")]
    RootGap { missing: u64 },
    #[error("the upload does not chain to the server's root: {what}")]
    Untrusted {
        what: String,
        #[source]
        source: TufError,
    },
    #[error("the upload carries no metadata/timestamp.json (it pins the new snapshot)")]
    NoTimestamp,
    #[error("the upload lacks {file}, which its metadata pins")]
    Missing { file: String },
    #[error("{role} version {offered} is not newer than the served {served}: versions only move forward")]
    Rollback {
        role: &'static str,
        served: u64,
        offered: u64,
    },
    #[error("{path} is in the upload but not in its signed metadata")]
    Unlisted { path: String },
    #[error("target {name:?}: {reason}")]
    BadTarget { name: String, reason: String },
    #[error(
        "target {name:?}: the uploaded file {what} does not match the signed targets metadata"
    )]
    TargetMismatch { name: String, what: &'static str },
    #[error("signing the new timestamp")]
    Sign(#[source] TufError),
    #[error("publishing {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PublishError {
    /// The HTTP status the refusal is answered with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::NoTrustedRoot | Self::RootConflict { .. } | Self::Rollback { .. } => S::CONFLICT,
            Self::ServedRoot { .. } | Self::Served(_) | Self::Sign(_) | Self::Io { .. } => {
                S::INTERNAL_SERVER_ERROR
            }
            _ => S::UNPROCESSABLE_ENTITY,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io {
        path: path.into(),
        source,
    }
}

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub root_version: u64,
    pub targets_version: u64,
    pub snapshot_version: u64,
    pub timestamp_version: u64,
    /// Whether the server's online key signed the new timestamp (else the upload's own
    /// verified timestamp was published).
    pub server_signed: bool,
    /// Target files that were new to the repository.
    pub new_targets: Vec<String>,
}

/// The served repository's versions (0 where nothing is published yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServedVersions {
    pub root: u64,
    pub timestamp: u64,
    pub snapshot: u64,
    pub targets: u64,
}

/// The newest served root, trusted as the anchor, and the served versions.
pub fn served(repo: &Path) -> Result<(TrustedRoot, ServedVersions), PublishError> {
    let metadata = repo.join("metadata");
    let mut version = 0;
    while metadata.join(format!("{}.root.json", version + 1)).exists() {
        version += 1;
    }
    if version == 0 {
        return Err(PublishError::NoTrustedRoot);
    }
    let file = format!("{version}.root.json");
    let bytes = std::fs::read(metadata.join(&file)).map_err(io(&metadata.join(&file)))?;
    let root = TrustedRoot::from_bytes(&bytes)
        .map_err(|source| PublishError::ServedRoot { file, source })?;
    let mut v = ServedVersions {
        root: version,
        ..Default::default()
    };
    if metadata.join("timestamp.json").exists() {
        let current = skerry_release::Repository::new(repo)
            .current()
            .map_err(PublishError::Served)?;
        v.timestamp = current.timestamp.signed.version;
        v.snapshot = current.snapshot.signed.version;
        v.targets = current.targets.signed.version;
    }
    Ok((root, v))
}

/// The server's timestamp signing: its key and how long a timestamp lasts.
#[derive(Debug)]
pub struct OnlineTimestamp<'a> {
    pub key: &'a SecretKey,
    pub validity: Duration,
}

/// Verifies the staged upload `files` (its inventory, from [`super::staged`]) against the
/// repository at `repo` and publishes it. The caller holds the repository lock.
pub fn verify_and_publish(
    repo: &Path,
    files: &BTreeMap<String, StagedFile>,
    online: Option<&OnlineTimestamp<'_>>,
    now: SystemTime,
) -> Result<Published, PublishError> {
    let (mut trusted, served) = served(repo)?;
    let mut remembered = RememberedVersions::default();
    let mut used: Vec<&str> = Vec::new();
    // Roots: the served ones must be untouched, new ones follow one by one.
    let mut roots = BTreeMap::new();
    for (path, f) in files {
        if let Some(MetadataName::Root(v)) = &f.metadata {
            roots.insert(*v, path.as_str());
        }
    }
    let mut new_roots = Vec::new();
    for (&v, &path) in &roots {
        let bytes = read_all(&f_path(files, path))?;
        used.push(path);
        if v <= served.root {
            let served_bytes = std::fs::read(repo.join(path)).map_err(io(&repo.join(path)))?;
            if served_bytes != bytes {
                return Err(PublishError::RootConflict { file: path.into() });
            }
            continue;
        }
        if v != trusted.version() + 1 {
            return Err(PublishError::RootGap {
                missing: trusted.version() + 1,
            });
        }
        trusted
            .rotate(&bytes, &mut remembered)
            .map_err(|source| PublishError::Untrusted {
                what: path.into(),
                source,
            })?;
        new_roots.push((path.to_string(), bytes));
    }
    let untrusted = |what: &str| {
        let what = what.to_string();
        move |source| PublishError::Untrusted { what, source }
    };
    trusted.check_expiry(now).map_err(untrusted("root"))?;
    // Timestamp → snapshot → targets, as a device would check them.
    let ts_path = "metadata/timestamp.json";
    let ts_bytes = match files.get(ts_path) {
        Some(f) => read_all(&f.path)?,
        None => return Err(PublishError::NoTimestamp),
    };
    used.push(ts_path);
    let ts = trusted
        .verify_timestamp(&ts_bytes, &remembered, now)
        .map_err(untrusted(ts_path))?;
    let snap_pin = ts.snapshot_pin().map_err(untrusted(ts_path))?;
    let snap_path = format!("metadata/{}", snap_pin.file);
    let snap_bytes = read_pinned(files, &snap_path, snap_pin.length)?;
    used.push(
        files
            .get_key_value(&snap_path)
            .map_or("", |(k, _)| k.as_str()),
    );
    let snap = trusted
        .verify_snapshot(&snap_bytes, &ts, &remembered, now)
        .map_err(untrusted(&snap_path))?;
    let targets_pin = snap.targets_pin().map_err(untrusted(&snap_path))?;
    let targets_path = format!("metadata/{}", targets_pin.file);
    let targets_bytes = read_pinned(files, &targets_path, targets_pin.length)?;
    used.push(
        files
            .get_key_value(&targets_path)
            .map_or("", |(k, _)| k.as_str()),
    );
    let targets = trusted
        .verify_targets(&targets_bytes, &snap, now)
        .map_err(untrusted(&targets_path))?;
    forward("snapshot", served.snapshot, snap.version)?;
    forward("targets", served.targets, targets.version)?;
    // Every target: a confined path, and either uploaded with its exact bytes or
    // already served under its content-addressed name.
    let mut moves: Vec<(PathBuf, String)> = Vec::new();
    for (name, tf) in &targets.targets {
        let bad = |reason: &str| PublishError::BadTarget {
            name: name.clone(),
            reason: reason.into(),
        };
        let hex = tf
            .hashes
            .get("sha256")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| bad("no sha256 of 64 hex digits"))?;
        let rel = format!(
            "targets/{}",
            skerry_tuf::image::consistent_path(name, &hex.to_ascii_lowercase())
        );
        RepoPath::new(&rel).map_err(|e| bad(&format!("its path {rel:?}: {e}")))?;
        if let Some(f) = files.get(&rel) {
            used.push(files.get_key_value(&rel).map_or("", |(k, _)| k.as_str()));
            let mismatch = |what| PublishError::TargetMismatch {
                name: name.clone(),
                what,
            };
            if f.length != tf.length {
                return Err(mismatch("length"));
            }
            if hex::encode(sha256_file(&f.path)?) != hex.to_ascii_lowercase() {
                return Err(mismatch("sha256"));
            }
            if !repo.join(&rel).exists() {
                moves.push((f.path.clone(), rel));
            }
        } else {
            let served_len = std::fs::metadata(repo.join(&rel)).map(|m| m.len()).ok();
            match served_len {
                Some(len) if len == tf.length => {}
                Some(_) => return Err(bad("the served file's length differs from the metadata")),
                None => return Err(PublishError::Missing { file: rel }),
            }
        }
    }
    if let Some(extra) = files.keys().find(|k| !used.contains(&k.as_str())) {
        return Err(PublishError::Unlisted {
            path: extra.clone(),
        });
    }
    // The timestamp devices will see: the server's own, re-signed over the new
    // snapshot when it holds a key the (new) root trusts, else the verified upload's.
    let (ts_out, timestamp_version, server_signed) =
        match online.filter(|o| signs_for(&trusted, o.key)) {
            Some(o) => {
                let t = Timestamp {
                    kind: "timestamp".into(),
                    spec_version: SPEC_VERSION.into(),
                    version: served.timestamp.max(ts.version) + 1,
                    expires: Expiry::after(now, o.validity),
                    meta: ts.meta.clone(),
                };
                let signed = Signed::sign(t, &[o.key]).map_err(PublishError::Sign)?;
                let bytes = signed.to_bytes().map_err(PublishError::Sign)?;
                (bytes, signed.signed.version, true)
            }
            None => {
                forward("timestamp", served.timestamp, ts.version)?;
                (ts_bytes.clone(), ts.version, false)
            }
        };
    // All checked: rename in. The metadata comes after the targets it names, roots
    // before the timestamp, the timestamp last.
    let mut metadata: Vec<(String, Vec<u8>)> = vec![
        (targets_path.clone(), targets_bytes),
        (snap_path.clone(), snap_bytes),
    ];
    metadata.extend(new_roots);
    let new_targets = moves.iter().map(|(_, rel)| rel.clone()).collect();
    let mut done: Vec<PathBuf> = Vec::new();
    let result = commit(repo, &moves, &metadata, &ts_out, &mut done);
    if result.is_err() {
        // Put the served repository back as it was: what was added is unreferenced.
        for p in done.iter().rev() {
            let _ = std::fs::remove_file(p);
        }
    }
    result?;
    Ok(Published {
        root_version: trusted.version(),
        targets_version: targets.version,
        snapshot_version: snap.version,
        timestamp_version,
        server_signed,
        new_targets,
    })
}

fn commit(
    repo: &Path,
    moves: &[(PathBuf, String)],
    metadata: &[(String, Vec<u8>)],
    timestamp: &[u8],
    done: &mut Vec<PathBuf>,
) -> Result<(), PublishError> {
    for (from, rel) in moves {
        let to = repo.join(rel);
        let dir = to.parent().unwrap_or(repo);
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::rename(from, &to).map_err(io(&to))?;
        done.push(to.clone());
        sync_dir(dir)?;
    }
    for (rel, bytes) in metadata {
        let to = repo.join(rel);
        match std::fs::read(&to) {
            Ok(existing) if existing == *bytes => continue,
            Ok(_) => {
                return Err(PublishError::Io {
                    path: to,
                    source: std::io::Error::other("a different file of that version exists"),
                })
            }
            Err(_) => {}
        }
        skerry_release::repo::write_atomic(&to, bytes).map_err(|e| PublishError::Io {
            path: to.clone(),
            source: std::io::Error::other(crate::timestamp::chain(&e)),
        })?;
        done.push(to);
    }
    let ts = repo.join("metadata/timestamp.json");
    skerry_release::repo::write_atomic(&ts, timestamp).map_err(|e| PublishError::Io {
        path: ts.clone(),
        source: std::io::Error::other(crate::timestamp::chain(&e)),
    })
}

fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// Whether the root lets this one key sign timestamps alone.
fn signs_for(root: &TrustedRoot, key: &SecretKey) -> bool {
    let (Ok(role), Ok(id)) = (root.root().role(Role::Timestamp), key.key_id()) else {
        return false;
    };
    role.threshold == 1 && role.keyids.contains(&id)
}

fn forward(role: &'static str, served: u64, offered: u64) -> Result<(), PublishError> {
    if offered <= served {
        return Err(PublishError::Rollback {
            role,
            served,
            offered,
        });
    }
    Ok(())
}

fn f_path(files: &BTreeMap<String, StagedFile>, path: &str) -> PathBuf {
    files.get(path).map(|f| f.path.clone()).unwrap_or_default()
}

/// A staged metadata file the parent pins at `length` bytes; its length is checked
/// before it is read, so a pin bounds what is read.
fn read_pinned(
    files: &BTreeMap<String, StagedFile>,
    path: &str,
    length: u64,
) -> Result<Vec<u8>, PublishError> {
    let f = files
        .get(path)
        .ok_or_else(|| PublishError::Missing { file: path.into() })?;
    if f.length != length {
        return Err(PublishError::Untrusted {
            what: path.into(),
            source: TufError::LengthMismatch {
                what: path.into(),
                expected: length,
                found: f.length,
            },
        });
    }
    read_all(&f.path)
}

/// Metadata files were bounded by kind when they were uploaded.
fn read_all(path: &Path) -> Result<Vec<u8>, PublishError> {
    std::fs::read(path).map_err(io(path))
}

fn sha256_file(path: &Path) -> Result<[u8; 32], PublishError> {
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}
