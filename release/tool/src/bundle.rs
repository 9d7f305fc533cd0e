//! Cutting an offline bundle: one file holding the signed metadata of the repository (the
//! whole root chain, the current snapshot and targets, and a timestamp re-signed with an
//! expiry chosen now, since the site may stay offline for weeks) and exactly the release
//! objects a device on a base version lacks, or the whole image.
//!
//! The device installs from it through the same TUF chain as from a server (see
//! `skerry-bundle` for the format and the installer's `bundle:` transport).
//!
//! Which objects a device on the base needs (the index, the chunks the base lacks and
//! the patches against it) is [`objects_needed`], the same answer the installer's plan
//! reaches; the bundle carries exactly those, each file as the ranges it needs.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use skerry_bundle::toc::FilePlan;
use skerry_bundle::{BundleError, Toc, DESCRIPTION};
use skerry_tuf::image::{index_target, ImageCustom};
use skerry_tuf::{Expiry, Role, Signed, TargetFile};

use crate::error::ReleaseError;
use crate::keys::KeySet;
use crate::needs::{objects_needed, NeededObjects};
use crate::repo::{tmp_name, Current, Repository};

/// Why a bundle could not be cut. Nothing is left at the output path.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error("the repository has no release {board} {version}{offered}")]
    NoRelease {
        board: String,
        version: String,
        offered: String,
    },
    #[error("the base {board} {base} is not older than the bundled version {version}")]
    BaseNotOlder {
        board: String,
        base: String,
        version: String,
    },
    #[error("{} does not match its signed {what}", path.display())]
    Mismatch { path: PathBuf, what: &'static str },
    #[error(transparent)]
    Format(#[from] BundleError),
    #[error("cannot write the bundle {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What to cut.
#[derive(Debug, Clone)]
pub struct BundleRequest<'a> {
    pub board: &'a str,
    pub version: &'a str,
    /// The version the device runs; `None`: the whole image.
    pub from: Option<&'a str>,
    /// How long the bundle's timestamp stays valid.
    pub expires: Duration,
    pub out: &'a Path,
}

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleReport {
    pub out: PathBuf,
    pub board: String,
    pub version: String,
    pub from: Option<String>,
    pub bundle_len: u64,
    /// Bytes of chunks and patches in the bundle.
    pub payload_bytes: u64,
    /// Chunks the base holds (or repeats), chunks bundled whole, chunks bundled as patches.
    pub chunks_reused: u64,
    pub chunks_full: u64,
    pub chunks_patched: u64,
    pub timestamp_version: u64,
    /// When the bundle's timestamp expires.
    pub timestamp_expires: String,
    /// When the bundle stops installing: the earliest expiry of its metadata.
    pub valid_until: String,
}

/// Cuts the bundle described by `req` from `repo`, re-signing its timestamp with the
/// online timestamp key of `keys`.
pub fn cut_bundle(
    keys: &KeySet,
    repo: &Repository,
    req: &BundleRequest<'_>,
    now: SystemTime,
) -> Result<BundleReport, CutError> {
    crate::check_board(req.board)?;
    let version = parse_version(req.version)?;
    let current = repo.current()?;
    check_timestamp_key(keys, &current)?;
    signed_file(
        &current,
        &index_target(req.board, &version.to_string()),
        req.board,
        &version,
    )?;
    let from = match req.from {
        Some(from) => {
            let from = parse_version(from)?;
            if from >= version {
                return Err(CutError::BaseNotOlder {
                    board: req.board.into(),
                    base: from.to_string(),
                    version: version.to_string(),
                });
            }
            signed_file(
                &current,
                &index_target(req.board, &from.to_string()),
                req.board,
                &from,
            )?;
            Some(from.to_string())
        }
        None => None,
    };
    let needed = objects_needed(repo, req.board, &version.to_string(), from.as_deref())?;

    // The timestamp, re-signed for the bundle: same version and snapshot as online (so
    // the device takes the online timestamp again afterwards), a longer expiry.
    let mut ts = current.timestamp.signed.clone();
    ts.expires = Expiry::after(now, req.expires);
    let ts_bytes = Signed::sign(ts.clone(), &[&keys.timestamp])
        .and_then(|s| s.to_bytes())
        .map_err(ReleaseError::from)?;
    let valid_until = [
        ts.expires,
        current.snapshot.signed.expires,
        current.targets.signed.expires,
        current.root.signed.expires,
    ]
    .into_iter()
    .min()
    .unwrap_or(ts.expires);

    let description = serde_json::json!({
        "board": req.board,
        "version": version.to_string(),
        "from": from,
    })
    .to_string()
    .into_bytes();

    let mut sources = metadata_files(repo, &current, description, ts_bytes)?;
    for (path, ranges) in objects_by_file(&needed) {
        let len = std::fs::metadata(&path)
            .map_err(ReleaseError::io(&path))?
            .len();
        sources.push((
            FilePlan {
                name: repo_path(repo, &path),
                len,
                ranges,
            },
            Source::File(path),
        ));
    }
    let plan: Vec<FilePlan> = sources.iter().map(|(p, _)| p.clone()).collect();
    let (head, toc) = Toc::encode(&plan)?;
    write_bundle(req.out, &head, &sources)?;
    Ok(BundleReport {
        out: req.out.into(),
        board: req.board.into(),
        version: version.to_string(),
        from,
        bundle_len: toc.header.bundle_len(),
        payload_bytes: needed.payload_bytes(),
        chunks_reused: needed.chunks_reused,
        chunks_full: needed.chunks_full,
        chunks_patched: needed.chunks_patched,
        timestamp_version: ts.version,
        timestamp_expires: ts.expires.to_string(),
        valid_until: valid_until.to_string(),
    })
}

/// Refuses keys whose timestamp key the repository's root does not name.
fn check_timestamp_key(keys: &KeySet, current: &Current) -> Result<(), ReleaseError> {
    let id = keys.timestamp.key_id()?;
    if current
        .root
        .signed
        .role(Role::Timestamp)?
        .keyids
        .contains(&id)
    {
        return Ok(());
    }
    Err(ReleaseError::WrongKeys {
        dir: keys.dir.clone(),
        role: "timestamp".into(),
    })
}

/// The bundle's description and metadata, whole: every root (a device may trust any
/// of them), the current snapshot and targets, and the bundle's timestamp.
fn metadata_files(
    repo: &Repository,
    current: &Current,
    description: Vec<u8>,
    timestamp: Vec<u8>,
) -> Result<Vec<(FilePlan, Source)>, ReleaseError> {
    let whole = |name: String, bytes: Vec<u8>| {
        let len = bytes.len() as u64;
        let plan = FilePlan {
            name,
            len,
            ranges: vec![(0, len)],
        };
        (plan, Source::Bytes(bytes))
    };
    let mut files = vec![whole(DESCRIPTION.into(), description)];
    let names = (1..=current.root.signed.version)
        .map(|v| format!("{v}.root.json"))
        .chain([
            format!("{}.snapshot.json", current.snapshot.signed.version),
            format!("{}.targets.json", current.targets.signed.version),
        ]);
    for name in names {
        let bytes = read_metadata(repo, &name)?;
        files.push(whole(format!("metadata/{name}"), bytes));
    }
    files.push(whole("metadata/timestamp.json".into(), timestamp));
    Ok(files)
}

/// The needed objects as files, each with its sorted ranges, adjacent ones merged (the
/// format wants separate extents).
fn objects_by_file(needed: &NeededObjects) -> BTreeMap<PathBuf, Vec<(u64, u64)>> {
    let mut files: BTreeMap<PathBuf, Vec<(u64, u64)>> = BTreeMap::new();
    for r in needed
        .whole
        .iter()
        .chain(&needed.chunks)
        .chain(&needed.patches)
    {
        if r.len > 0 {
            files
                .entry(r.path.clone())
                .or_default()
                .push((r.offset, r.len));
        }
    }
    for ranges in files.values_mut() {
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges.iter() {
            match merged.last_mut() {
                Some((o, l)) if offset <= *o + *l => *l = (*l).max(offset + len - *o),
                _ => merged.push((offset, len)),
            }
        }
        *ranges = merged;
    }
    files
}

fn parse_version(raw: &str) -> Result<semver::Version, ReleaseError> {
    semver::Version::parse(raw).map_err(|source| ReleaseError::BadVersion {
        value: raw.into(),
        source,
    })
}

fn signed_file<'c>(
    current: &'c Current,
    name: &str,
    board: &str,
    version: &semver::Version,
) -> Result<&'c TargetFile, CutError> {
    current
        .targets
        .signed
        .targets
        .get(name)
        .ok_or_else(|| no_release(current, board, version))
}

fn no_release(current: &Current, board: &str, version: &semver::Version) -> CutError {
    let mut versions: Vec<semver::Version> = current
        .targets
        .signed
        .targets
        .values()
        .filter_map(|f| serde_json::from_value::<ImageCustom>(f.custom.clone()?).ok())
        .filter(|c| c.skerry.board == board)
        .filter_map(|c| semver::Version::parse(&c.skerry.version).ok())
        .collect();
    versions.sort();
    let offered = if versions.is_empty() {
        format!("; it has no releases of {board}")
    } else {
        let list: Vec<String> = versions.iter().map(ToString::to_string).collect();
        format!("; {board} has {}", list.join(", "))
    };
    CutError::NoRelease {
        board: board.into(),
        version: version.to_string(),
        offered,
    }
}

fn read_metadata(repo: &Repository, name: &str) -> Result<Vec<u8>, ReleaseError> {
    let path = repo.metadata_dir().join(name);
    std::fs::read(&path).map_err(ReleaseError::io(&path))
}

/// `REPO/targets/…` as the repository-relative path a device asks for.
fn repo_path(repo: &Repository, path: &Path) -> String {
    path.strip_prefix(&repo.dir)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Where a bundled file's bytes come from.
enum Source {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// Streams header, table of contents and data into a temporary file beside `out`,
/// flushes it, renames it over `out` and flushes the directory; any failure removes the
/// temporary file, so a refused bundle leaves nothing behind.
fn write_bundle(out: &Path, head: &[u8], sources: &[(FilePlan, Source)]) -> Result<(), CutError> {
    let tmp = tmp_name(out);
    let result = write_to(&tmp, head, sources).and_then(|()| {
        std::fs::rename(&tmp, out).map_err(|source| CutError::Write {
            path: out.into(),
            source,
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| CutError::Write {
            path: dir.into(),
            source,
        })
}

fn write_to(tmp: &Path, head: &[u8], sources: &[(FilePlan, Source)]) -> Result<(), CutError> {
    let werr = |source| CutError::Write {
        path: tmp.into(),
        source,
    };
    let mut file = File::create(tmp).map_err(werr)?;
    file.write_all(head).map_err(werr)?;
    for (plan, source) in sources {
        match source {
            Source::Bytes(bytes) => {
                for &(offset, len) in &plan.ranges {
                    let part = bytes.get(offset as usize..(offset + len) as usize);
                    file.write_all(part.unwrap_or_default()).map_err(werr)?;
                }
            }
            Source::File(path) => {
                let mut src = File::open(path).map_err(ReleaseError::io(path))?;
                for &(offset, len) in &plan.ranges {
                    src.seek(SeekFrom::Start(offset))
                        .map_err(ReleaseError::io(path))?;
                    let copied =
                        std::io::copy(&mut (&mut src).take(len), &mut file).map_err(werr)?;
                    if copied != len {
                        return Err(CutError::Mismatch {
                            path: path.clone(),
                            what: "length",
                        });
                    }
                }
            }
        }
    }
    file.sync_all().map_err(werr)
}
