//! `skerryctl release …`: keys and the signed release repository (see `release/README.md`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Subcommand;
use skerry_chunks::ChunkParams;
use skerry_release::{AddImage, Expiries, KeySet, Repository};

use crate::output::{emit, Done, Output};

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Create ed25519 keys for the four TUF roles (writes the key directory).
    #[command(after_help = "Example:\n  skerryctl release keygen --out keys --root-keys 3")]
    Keygen {
        /// Directory to create the keys in (must not hold keys yet).
        #[arg(long)]
        out: PathBuf,
        /// How many root keys to make.
        #[arg(long, default_value_t = 1)]
        root_keys: usize,
    },
    /// Write the initial root metadata and an empty first release (writes the repository).
    #[command(
        after_help = "Example:\n  skerryctl release init --keys keys --repo repo --threshold 2 --expires 365d"
    )]
    Init {
        /// The directory of signing keys (from `release keygen`).
        #[arg(long)]
        keys: PathBuf,
        /// The repository directory (metadata/ and targets/), served as is.
        #[arg(long)]
        repo: PathBuf,
        /// Root signatures required (at most the number of root keys).
        #[arg(long, default_value_t = 1)]
        threshold: u32,
        /// How long the root stays valid, like 365d.
        #[arg(long, default_value = "365d")]
        expires: String,
    },
    /// Cut an image into chunks and publish it as a new release of a board (writes the
    /// repository).
    #[command(
        after_help = "Example:\n  skerryctl release add --keys keys --repo repo --board rpi4 --version 1.1.0 --image rootfs.img"
    )]
    Add {
        /// The directory of signing keys (from `release keygen`).
        #[arg(long)]
        keys: PathBuf,
        /// The repository directory (metadata/ and targets/), served as is.
        #[arg(long)]
        repo: PathBuf,
        /// The board the image is for, like rpi4.
        #[arg(long)]
        board: String,
        /// Semantic version, like 1.4.0.
        #[arg(long)]
        version: String,
        /// The slot image to publish (what the installer writes into a slot).
        #[arg(long)]
        image: PathBuf,
        /// The channel devices follow to get this release.
        #[arg(long, default_value = "stable")]
        channel: String,
        /// How long targets and snapshot stay valid.
        #[arg(long, default_value = "90d")]
        expires: String,
        /// How long the timestamp stays valid.
        #[arg(long, default_value = "7d")]
        timestamp_expires: String,
        /// zstd level of the chunks.
        #[arg(long, default_value_t = skerry_release::pack::DEFAULT_LEVEL)]
        level: i32,
        /// Earlier releases of the board to publish patches against (comma-separated,
        /// like 1.0.0,1.1.0): a device on one of them fetches a changed chunk as a
        /// small patch against what it holds, when that is smaller than the chunk.
        #[arg(long, value_delimiter = ',')]
        delta_from: Vec<String>,
        /// zstd level of the patches.
        #[arg(long, default_value_t = skerry_release::delta::DEFAULT_PATCH_LEVEL)]
        patch_level: i32,
    },
    /// Publish a new root with new keys, signed by the old root keys and the new (writes
    /// the repository).
    #[command(
        after_help = "Example:\n  skerryctl release rotate-root --keys keys --new-keys keys-2027 --repo repo"
    )]
    RotateRoot {
        /// The current keys.
        #[arg(long)]
        keys: PathBuf,
        /// The new keys (from `keygen`).
        #[arg(long)]
        new_keys: PathBuf,
        /// The repository directory (metadata/ and targets/), served as is.
        #[arg(long)]
        repo: PathBuf,
        /// Root signatures required for the new root (at most its number of root keys).
        #[arg(long, default_value_t = 1)]
        threshold: u32,
        /// How long the new root stays valid, like 365d.
        #[arg(long, default_value = "365d")]
        expires: String,
    },
    /// Re-sign timestamp.json alone; run it more often than it expires (writes the
    /// repository).
    /// Upload the repository's newest release (and any new root) to an update server,
    /// which verifies it against the root it trusts and publishes it (writes the
    /// server's repository).
    #[command(
        after_help = "Example:\n  skerryctl release push --repo repo --server http://127.0.0.1:8470 --token-file operator.token"
    )]
    Push(crate::release_push::PushArgs),
    /// Write a release as an SWUpdate `.swu` (its description CMS-signed by the swu key)
    /// for hawkBit DDI devices that cannot verify TUF (writes DIR/VERSION.swu).
    #[command(
        after_help = "Example:\n  skerryctl release swu --version 1.1.0 --board rpi4 --image rootfs.img \\\n      --device /dev/mmcblk0p3 --key swu.key --cert swu.crt --out /var/lib/skerry-server/swu/rpi4"
    )]
    Swu(crate::release_swu::SwuArgs),
    #[command(
        after_help = "Example:\n  skerryctl release timestamp --keys keys --repo repo --expires 7d"
    )]
    Timestamp {
        /// The directory of signing keys (from `release keygen`).
        #[arg(long)]
        keys: PathBuf,
        /// The repository directory (metadata/ and targets/), served as is.
        #[arg(long)]
        repo: PathBuf,
        /// How long the timestamp stays valid, like 7d.
        #[arg(long, default_value = "7d")]
        expires: String,
    },
    /// Cut an offline bundle: the signed metadata, a timestamp re-signed to last while the
    /// site is offline, and the chunks a device on --from lacks (or the whole image)
    /// (writes FILE; reads the repository).
    #[command(
        after_help = "Example:\n  skerryctl release bundle --keys keys --repo repo --board rpi4 --version 1.1.0 \\\n      --from 1.0.0 --expires 60d --out rpi4-1.1.0-from-1.0.0.skb\nThen on the device: skerryctl install --repo bundle:/mnt/usb/rpi4-1.1.0-from-1.0.0.skb …"
    )]
    Bundle {
        /// The directory of signing keys; only the online timestamp key is used.
        #[arg(long)]
        keys: PathBuf,
        /// The repository directory (metadata/ and targets/) to cut from.
        #[arg(long)]
        repo: PathBuf,
        /// The board of the release, like rpi4.
        #[arg(long)]
        board: String,
        /// The release to bundle, like 1.1.0.
        #[arg(long)]
        version: String,
        /// The version the devices run: only the chunks it lacks are bundled (default:
        /// the whole image).
        #[arg(long, value_name = "BASE")]
        from: Option<String>,
        /// How long the bundle's timestamp stays valid (the snapshot, targets and root
        /// keep their own expiries; the report says when the bundle stops installing).
        #[arg(long, value_name = "DURATION", default_value = "30d")]
        expires: String,
        /// The bundle file to write (replaced atomically; nothing is left on failure).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// Parses a validity period given on the command line, like `30d`.
fn dur(value: &str) -> anyhow::Result<Duration> {
    skerry_tuf::parse_duration(value).context("bad --expires")
}

/// The expiries for signing a new root valid for `expires`; the other roles keep theirs.
fn root_expiries(expires: &str) -> anyhow::Result<Expiries> {
    Ok(Expiries {
        root: dur(expires)?,
        ..Expiries::default()
    })
}

/// The signing keys in `keys` and the repository at `repo` that a command publishes with.
fn keys_and_repo(keys: &Path, repo: &Path) -> anyhow::Result<(KeySet, Repository)> {
    Ok((KeySet::load(keys)?, Repository::new(repo)))
}

pub fn run(cmd: ReleaseCommand, output: Output) -> anyhow::Result<()> {
    let now = SystemTime::now();
    match cmd {
        ReleaseCommand::Push(args) => crate::release_push::run(args, output)?,
        ReleaseCommand::Swu(args) => crate::release_swu::run(args, output)?,
        ReleaseCommand::Keygen { out, root_keys } => {
            KeySet::generate(&out, root_keys)?;
            let words = format!(
                "wrote {root_keys} root key(s) and targets, snapshot, timestamp keys to {}",
                out.display()
            );
            let fields = serde_json::json!({ "keys": out, "root_keys": root_keys });
            emit(output, &Done { words, fields })?;
        }
        ReleaseCommand::Init {
            keys,
            repo,
            threshold,
            expires,
        } => {
            let exp = root_expiries(&expires)?;
            let (keys, repository) = keys_and_repo(&keys, &repo)?;
            skerry_release::init(&keys, &repository, threshold, &exp, now)?;
            let words = format!(
                "initialized {} (root version 1, threshold {threshold})",
                repo.display()
            );
            let fields =
                serde_json::json!({ "repo": repo, "root_version": 1, "threshold": threshold });
            emit(output, &Done { words, fields })?;
        }
        ReleaseCommand::Add {
            keys,
            repo,
            board,
            version,
            image,
            channel,
            expires,
            timestamp_expires,
            level,
            delta_from,
            patch_level,
        } => {
            let exp = Expiries {
                targets: dur(&expires)?,
                snapshot: dur(&expires)?,
                timestamp: dur(&timestamp_expires)?,
                ..Expiries::default()
            };
            let add = AddImage {
                board: &board,
                version: &version,
                channel: &channel,
                image: &image,
                params: ChunkParams::DEFAULT,
                level,
            };
            let (keys, repo) = keys_and_repo(&keys, &repo)?;
            let deltas = skerry_release::Deltas {
                from: &delta_from,
                level: patch_level,
            };
            let added =
                skerry_release::add_image_with_deltas(&keys, &repo, &add, &deltas, &exp, now)?;
            let mut words = format!(
                "released {board} {version}: {} bytes in {} chunks, pack {} bytes, index {} bytes (targets v{})",
                added.image_len, added.chunks, added.pack_len, added.index_len, added.targets_version
            );
            for p in &added.patches {
                words += &format!(
                    "\n  patches from {}: {} chunks in {} bytes (instead of {}), index {} bytes",
                    p.base_version, p.patched_chunks, p.patch_bytes, p.replaced_bytes, p.index_len
                );
            }
            let patches: Vec<_> = added
                .patches
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "base_version": p.base_version,
                        "patched_chunks": p.patched_chunks,
                        "patch_bytes": p.patch_bytes,
                        "replaced_bytes": p.replaced_bytes,
                        "index_len": p.index_len,
                    })
                })
                .collect();
            let fields = serde_json::json!({
                "board": board,
                "version": version,
                "channel": channel,
                "image_len": added.image_len,
                "chunks": added.chunks,
                "pack_len": added.pack_len,
                "index_len": added.index_len,
                "targets_version": added.targets_version,
                "patches": patches,
            });
            emit(output, &Done { words, fields })?;
        }
        ReleaseCommand::RotateRoot {
            keys,
            new_keys,
            repo,
            threshold,
            expires,
        } => {
            let exp = root_expiries(&expires)?;
            let (keys, repo) = keys_and_repo(&keys, &repo)?;
            let new_keys = KeySet::load(&new_keys)?;
            let v = skerry_release::rotate_root(&keys, &new_keys, &repo, threshold, &exp, now)?;
            let words = format!("published root version {v}");
            let fields = serde_json::json!({ "root_version": v, "threshold": threshold });
            emit(output, &Done { words, fields })?;
        }
        ReleaseCommand::Timestamp {
            keys,
            repo,
            expires,
        } => {
            let exp = Expiries {
                timestamp: dur(&expires)?,
                ..Expiries::default()
            };
            let (keys, repo) = keys_and_repo(&keys, &repo)?;
            let v = skerry_release::resign_timestamp(&keys, &repo, &exp, now)?;
            let words = format!("published timestamp version {v}");
            let fields = serde_json::json!({ "timestamp_version": v });
            emit(output, &Done { words, fields })?;
        }
        ReleaseCommand::Bundle {
            keys,
            repo,
            board,
            version,
            from,
            expires,
            out,
        } => {
            let req = skerry_release::bundle::BundleRequest {
                board: &board,
                version: &version,
                from: from.as_deref(),
                expires: dur(&expires)?,
                out: &out,
            };
            let (keys, repo) = keys_and_repo(&keys, &repo)?;
            let r = skerry_release::bundle::cut_bundle(&keys, &repo, &req, now)?;
            let base = match &r.from {
                Some(from) => format!("for devices on {from}"),
                None => "whole image".into(),
            };
            let words = format!(
                "wrote {}: {board} {} ({base}), {} bytes: {} chunk and patch bytes ({} chunks \
                 whole, {} as patches, {} already on the device); timestamp v{} expires {}, \
                 installs until {}",
                r.out.display(),
                r.version,
                r.bundle_len,
                r.payload_bytes,
                r.chunks_full,
                r.chunks_patched,
                r.chunks_reused,
                r.timestamp_version,
                r.timestamp_expires,
                r.valid_until
            );
            let fields = serde_json::to_value(&r)?;
            emit(output, &Done { words, fields })?;
        }
    }
    Ok(())
}
