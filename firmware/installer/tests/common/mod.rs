//! Test fixtures: a release repository in a temp dir, images, and install options.
#![allow(dead_code)]

pub mod server;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_chunks::ChunkParams;
use skerry_installer::transport::FileTransport;
use skerry_installer::{Downgrade, InstallOptions, RetryPolicy, Transport};
use skerry_release::{AddImage, Expiries, KeySet, Repository};

/// A repository with keys, in a temp dir.
pub struct TestRepo {
    pub tmp: tempfile::TempDir,
    pub keys: KeySet,
    pub repo: Repository,
}

impl TestRepo {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let keys = KeySet::generate(&tmp.path().join("keys"), 1).unwrap();
        let repo = Repository::new(&tmp.path().join("repo"));
        skerry_release::init(&keys, &repo, 1, &Expiries::default(), SystemTime::now()).unwrap();
        Self { tmp, keys, repo }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The state directory of this repository inside the state dir `opts` names.
    pub fn repo_state(&self, opts: &InstallOptions) -> PathBuf {
        skerry_installer::state::repository_dir(&opts.state_dir, &opts.trusted_root).unwrap()
    }

    pub fn root_bytes(&self) -> Vec<u8> {
        std::fs::read(self.repo.metadata_dir().join("1.root.json")).unwrap()
    }

    /// Releases `image` for `board` at `version`.
    pub fn add(&self, board: &str, version: &str, image: &[u8]) {
        self.add_at(board, version, image, SystemTime::now());
    }

    /// Releases with metadata signed as if at `now` (in the past: already expired).
    pub fn add_at(&self, board: &str, version: &str, image: &[u8], now: SystemTime) {
        self.add_full(board, version, "stable", image, now);
    }

    /// Releases `image` on `channel`.
    pub fn add_on(&self, board: &str, version: &str, channel: &str, image: &[u8]) {
        self.add_full(board, version, channel, image, SystemTime::now());
    }

    fn add_full(&self, board: &str, version: &str, channel: &str, image: &[u8], now: SystemTime) {
        let path = self.path().join(format!("{board}-{version}.img"));
        std::fs::write(&path, image).unwrap();
        let add = AddImage {
            board,
            version,
            channel,
            image: &path,
            params: ChunkParams::DEFAULT,
            level: 3,
        };
        skerry_release::add_image(&self.keys, &self.repo, &add, &Expiries::default(), now).unwrap();
    }

    /// Releases `image` with patches against each of `from` (earlier releases).
    pub fn add_delta(&self, board: &str, version: &str, image: &[u8], from: &[&str]) {
        let path = self.path().join(format!("{board}-{version}.img"));
        std::fs::write(&path, image).unwrap();
        let add = AddImage {
            board,
            version,
            channel: "stable",
            image: &path,
            params: ChunkParams::DEFAULT,
            level: 3,
        };
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        let deltas = skerry_release::Deltas {
            from: &from,
            level: skerry_release::delta::DEFAULT_PATCH_LEVEL,
        };
        skerry_release::add_image_with_deltas(
            &self.keys,
            &self.repo,
            &add,
            &deltas,
            &Expiries::default(),
            SystemTime::now(),
        )
        .unwrap();
    }

    pub fn file_transport(&self) -> Arc<dyn Transport> {
        Arc::new(FileTransport::new(self.repo.dir.clone()))
    }

    /// Options to install `board` into `slot` with a fresh state dir `state`.
    pub fn options(
        &self,
        transport: Arc<dyn Transport>,
        board: &str,
        slot: &Path,
    ) -> InstallOptions {
        InstallOptions {
            transport,
            trusted_root: self.root_bytes(),
            state_dir: self.path().join("state"),
            board: board.into(),
            channel: None,
            version: None,
            slot: slot.into(),
            slot_size: None,
            slot_name: None,
            seed: None,
            booted: None,
            downgrade: Downgrade::Refuse,
            retry: fast_retry(),
            retry_log: skerry_installer::RetryLog::default(),
            min_progress: Default::default(),
            clock: SystemTime::now(),
        }
    }

    /// Every file under the repository, relative.
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else {
                    out.push(p.strip_prefix(base).unwrap().to_path_buf());
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.repo.dir, &self.repo.dir, &mut out);
        out.sort();
        out
    }

    /// The pack file of a release.
    pub fn find(&self, suffix: &str) -> PathBuf {
        self.files()
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .map(|p| self.repo.dir.join(p))
            .unwrap()
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
    }
}

/// A deterministic image of `len` bytes: text-like runs, zeros and noise, like a
/// filesystem with binaries.
pub fn image(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let run = 512 + (rng.next() % 8192) as usize;
        match rng.next() % 4 {
            0 => out.extend((0..run).map(|_| rng.next() as u8)),
            1 => out.extend(std::iter::repeat_n(0u8, run)),
            _ => {
                let word = rng.next();
                out.extend(
                    (0..run).map(|i| b"abcdefgh"[((word >> (i % 8 * 8)) as usize + i / 7) % 8]),
                );
            }
        }
    }
    out.truncate(len);
    out
}

/// `base` with `count` random overwrites of `size` bytes.
pub fn edit(base: &[u8], count: usize, size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed | 1);
    let mut out = base.to_vec();
    for _ in 0..count {
        let at = (rng.next() as usize) % (out.len() - size);
        for b in &mut out[at..at + size] {
            *b = rng.next() as u8;
        }
    }
    out
}

/// xorshift64: deterministic test randomness.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Lets `edit` change the current signed targets (and write whatever target files it
/// needs into the repository), then re-signs targets, snapshot and timestamp under their
/// current versions with the repository's own keys, each pinned by length and sha256 in
/// its parent, as a publisher holding every key would.
pub fn resign_targets<R>(repo: &TestRepo, edit: impl FnOnce(&mut skerry_tuf::Targets) -> R) -> R {
    use sha2::{Digest, Sha256};
    use skerry_tuf::{MetaFile, Signed, Snapshot, Targets, Timestamp};

    fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }
    fn pin(version: u64, bytes: &[u8]) -> MetaFile {
        MetaFile {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some([("sha256".to_string(), hex::encode(Sha256::digest(bytes)))].into()),
        }
    }
    let md = repo.repo.metadata_dir();
    let ts: Signed<Timestamp> = read(&md.join("timestamp.json"));
    let snap_v = ts.signed.meta["snapshot.json"].version;
    let snap: Signed<Snapshot> = read(&md.join(format!("{snap_v}.snapshot.json")));
    let targets_v = snap.signed.meta["targets.json"].version;
    let targets_path = md.join(format!("{targets_v}.targets.json"));
    let mut targets: Signed<Targets> = read(&targets_path);
    let result = edit(&mut targets.signed);

    let targets_bytes = Signed::sign(targets.signed, &[&repo.keys.targets])
        .and_then(|s| s.to_bytes())
        .unwrap();
    std::fs::write(&targets_path, &targets_bytes).unwrap();
    let mut snap = snap.signed;
    snap.meta
        .insert("targets.json".into(), pin(targets_v, &targets_bytes));
    let snap_bytes = Signed::sign(snap, &[&repo.keys.snapshot])
        .and_then(|s| s.to_bytes())
        .unwrap();
    std::fs::write(md.join(format!("{snap_v}.snapshot.json")), &snap_bytes).unwrap();
    let mut ts = ts.signed;
    ts.meta
        .insert("snapshot.json".into(), pin(snap_v, &snap_bytes));
    let ts_bytes = Signed::sign(ts, &[&repo.keys.timestamp])
        .and_then(|s| s.to_bytes())
        .unwrap();
    std::fs::write(md.join("timestamp.json"), ts_bytes).unwrap();
    result
}
