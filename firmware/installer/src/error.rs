//! Why an install failed. Every variant names what was wrong; the slot may hold a partial
//! image afterwards but the boot state was never touched, so the device keeps booting
//! its current slot.

use std::path::PathBuf;

use crate::transport::FetchError;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("fetching {what}")]
    Fetch {
        what: String,
        #[source]
        source: FetchError,
    },
    #[error("refusing {what}")]
    Metadata {
        what: String,
        #[source]
        source: skerry_tuf::TufError,
    },
    #[error("refusing the chunk index of {target}")]
    Index {
        target: String,
        #[source]
        source: skerry_chunks::IndexError,
    },
    #[error("{what} does not match its signed sha256 (tampered or corrupted)")]
    HashMismatch { what: String },
    #[error("chunk {chunk} at image offset {offset} does not match its signed hash after {attempts} attempt(s) (tampered or corrupted data)")]
    TamperedChunk {
        chunk: usize,
        offset: u64,
        attempts: u32,
    },
    #[error("chunk {chunk} does not decompress: {reason}")]
    BadChunk { chunk: usize, reason: String },
    #[error("the repository has no release for board {board}{}", detail)]
    NoRelease { board: String, detail: String },
    #[error(
        "release {board} {offered} is older than the committed {committed}; refusing a downgrade (allow it explicitly to install it)"
    )]
    Downgrade {
        board: String,
        offered: String,
        committed: String,
    },
    #[error("the targets metadata describes release {target} inconsistently: {reason}")]
    BadRelease { target: String, reason: String },
    #[error("slot {} holds {capacity} bytes, the image needs {needed}", path.display())]
    SlotTooSmall {
        path: PathBuf,
        capacity: u64,
        needed: u64,
    },
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("device state in {} is damaged: {reason}", path.display())]
    BadState { path: PathBuf, reason: String },
    #[error("slot {slot} holds an unfinished install of {board} {version}, which cannot be committed (rerun the install)")]
    Unfinished {
        slot: String,
        board: String,
        version: String,
    },
    #[error("read-back of slot {} found chunk {chunk} at offset {offset} different from what was written", path.display())]
    ReadBack {
        path: PathBuf,
        chunk: usize,
        offset: u64,
    },
    #[error("seed {} changed while installing (chunk at offset {offset})", path.display())]
    SeedChanged { path: PathBuf, offset: u64 },
    #[error(
        "the chunk index refers to chunk {chunk} as a repeat, but no earlier chunk has its hash"
    )]
    DanglingRepeat { chunk: usize },
    #[error("refusing to write slot {}: it is the seed {} (the slot being copied from)", slot.display(), seed.display())]
    SlotIsSeed { slot: PathBuf, seed: PathBuf },
    #[error("refusing to write slot {}: it is the booted slot {}", slot.display(), booted.display())]
    SlotIsBooted { slot: PathBuf, booted: PathBuf },
    #[error("refusing to write slot {}: it is mounted at {}", slot.display(), mount_point.display())]
    SlotMounted { slot: PathBuf, mount_point: PathBuf },
    #[error("cannot make slot {} unbootable before writing it", slot.display())]
    Deactivate {
        slot: PathBuf,
        #[source]
        source: crate::guard::ActivationError,
    },
    #[error("release {target} carries no whole-image BLAKE3 (published by an older release tool); republish it")]
    NoImageHash { target: String },
    #[error("slot {} as read back from the medium hashes to BLAKE3 {measured}, not the signed {signed}", path.display())]
    ImageMismatch {
        path: PathBuf,
        signed: String,
        measured: String,
    },
}

impl InstallError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| InstallError::Io {
            action,
            path,
            source,
        }
    }
}
