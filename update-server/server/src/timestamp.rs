//! Re-signing `timestamp.json` with the online key before it expires. Only the
//! timestamp key is on the server; the root, targets and snapshot keys stay offline
//! with the release tooling, so the server can keep the repository fresh but can never
//! publish a release. With several instances on one database (and one shared data
//! directory), only the holder of the timestamp lease re-signs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_fleet_store::{LeaseStore, TIMESTAMP_LEASE};
use skerry_rollout::UnixTime;

use skerry_release::Repository;
use skerry_tuf::{Expiry, Role, SecretKey, Signed, Timestamp};

/// Why a re-signing round did nothing or failed.
#[derive(Debug, thiserror::Error)]
pub enum ResignError {
    #[error("cannot load the timestamp key {path}")]
    Key {
        path: PathBuf,
        #[source]
        source: skerry_tuf::TufError,
    },
    #[error("reading the repository")]
    Repository(#[source] skerry_release::ReleaseError),
    #[error("the repository's root does not list this server's timestamp key ({key_id}); install the key the root names")]
    Untrusted { key_id: String },
    #[error(
        "the root asks for {threshold} timestamp signatures; one online key can give only one"
    )]
    Threshold { threshold: u32 },
    #[error("signing the timestamp")]
    Sign(#[source] skerry_tuf::TufError),
    #[error("writing timestamp.json")]
    Write(#[source] skerry_release::ReleaseError),
    #[error("checking the re-signing lease")]
    Lease(#[source] skerry_fleet_store::StoreError),
}

/// When and how long the re-signed timestamp lasts.
#[derive(Debug, Clone, Copy)]
pub struct ResignPolicy {
    /// Re-sign when the current timestamp expires within this.
    pub renew_before: Duration,
    /// How long a new timestamp is valid.
    pub validity: Duration,
}

impl Default for ResignPolicy {
    fn default() -> Self {
        Self {
            renew_before: Duration::from_secs(86_400),
            validity: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Whether a timestamp expiring at `expires` is due at `now`.
pub fn is_due(expires: SystemTime, now: SystemTime, renew_before: Duration) -> bool {
    expires
        .duration_since(now)
        .ok()
        .is_none_or(|left| left <= renew_before)
}

/// The online signer of one repository.
#[derive(Debug)]
pub struct TimestampSigner {
    repo: Repository,
    key: SecretKey,
    policy: ResignPolicy,
}

impl TimestampSigner {
    pub fn load(repo: &Path, key: &Path, policy: ResignPolicy) -> Result<Self, ResignError> {
        let key_loaded = SecretKey::load(key).map_err(|source| ResignError::Key {
            path: key.into(),
            source,
        })?;
        Ok(Self {
            repo: Repository::new(repo),
            key: key_loaded,
            policy,
        })
    }

    /// Re-signs if due; returns the new version, or `None` if nothing was due (or the
    /// repository is still empty).
    pub fn resign_if_due(&self, now: SystemTime) -> Result<Option<u64>, ResignError> {
        self.resign_if_due_confirmed(now, &|| Ok(true))
    }

    /// As [`Self::resign_if_due`], asking `still_mine` just before writing whether this
    /// instance may still sign (its lease was not taken over meanwhile).
    pub fn resign_if_due_confirmed(
        &self,
        now: SystemTime,
        still_mine: &dyn Fn() -> Result<bool, ResignError>,
    ) -> Result<Option<u64>, ResignError> {
        let ts_path = self.repo.metadata_dir().join("timestamp.json");
        let Ok(before) = std::fs::read(&ts_path) else {
            return Ok(None); // nothing published yet
        };
        let current = self.repo.current().map_err(ResignError::Repository)?;
        if !is_due(
            current.timestamp.signed.expires.0,
            now,
            self.policy.renew_before,
        ) {
            return Ok(None);
        }
        let role = current
            .root
            .signed
            .role(Role::Timestamp)
            .map_err(ResignError::Sign)?;
        let key_id = self.key.key_id().map_err(ResignError::Sign)?;
        if !role.keyids.contains(&key_id) {
            return Err(ResignError::Untrusted {
                key_id: key_id.to_string(),
            });
        }
        if role.threshold != 1 {
            return Err(ResignError::Threshold {
                threshold: role.threshold,
            });
        }
        let mut ts: Timestamp = current.timestamp.signed;
        ts.version += 1;
        ts.expires = Expiry::after(now, self.policy.validity);
        let signed = Signed::sign(ts, &[&self.key]).map_err(ResignError::Sign)?;
        let bytes = signed.to_bytes().map_err(ResignError::Sign)?;
        // A release may have been published meanwhile: never overwrite its newer
        // timestamp with one pinning the older snapshot. A push through the server holds
        // the same lock while it publishes, so nothing changes between check and rename.
        let _lock = lock_repository(&self.repo.dir).map_err(|source| {
            ResignError::Write(skerry_release::ReleaseError::Io {
                path: self.repo.dir.join(LOCK_FILE),
                source,
            })
        })?;
        if std::fs::read(&ts_path).ok().as_deref() != Some(before.as_slice()) || !still_mine()? {
            return Ok(None);
        }
        skerry_release::repo::write_atomic(&ts_path, &bytes).map_err(ResignError::Write)?;
        Ok(Some(signed.signed.version))
    }
}

/// The lock file (in the repository directory, outside the served `metadata/` and
/// `targets/`) that publishing and re-signing hold while they change `timestamp.json`.
pub const LOCK_FILE: &str = ".publish.lock";

/// Takes the repository's exclusive lock (an `flock`, so instances sharing a data
/// directory exclude each other too); it is held until the returned file is dropped.
pub fn lock_repository(repo: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo.join(LOCK_FILE))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(file)
}

/// How long the re-signing lease lasts after each renewal: a few rounds, so a holder
/// that stopped is replaced within a minute or so, yet a slow round does not lose it.
pub fn lease_length(every: Duration) -> Duration {
    (every * 3).max(Duration::from_secs(10))
}

/// One instance's re-signing duty: the signer, the store holding the lease, this
/// instance's holder id, and where each re-signed version is also reported.
pub struct ResignDuty<L: LeaseStore> {
    pub signer: TimestampSigner,
    pub leases: Arc<L>,
    pub holder: String,
    pub every: Duration,
    pub resigned: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
}

impl<L: LeaseStore> std::fmt::Debug for ResignDuty<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResignDuty")
            .field("holder", &self.holder)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> UnixTime {
    UnixTime::from_system(t)
}

impl<L: LeaseStore> ResignDuty<L> {
    /// One round: take or renew the lease; only its holder re-signs, and only if the
    /// lease is still its own (same generation, not expired) just before writing.
    pub fn round(&self, now: SystemTime) -> Result<Option<u64>, ResignError> {
        let length = lease_length(self.every);
        let take = |at| {
            self.leases
                .take_lease(TIMESTAMP_LEASE, &self.holder, unix(at), length)
                .map_err(ResignError::Lease)
        };
        let Some(lease) = take(now)? else {
            return Ok(None); // another instance holds it
        };
        self.signer.resign_if_due_confirmed(now, &|| {
            Ok(take(SystemTime::now())?.is_some_and(|l| l.generation == lease.generation))
        })
    }
}

/// Re-signs every `every` until `shutdown`, logging each outcome; gives the lease up on
/// the way out so another instance takes over at once.
pub async fn run<L: LeaseStore>(duty: ResignDuty<L>, shutdown: tokio::sync::watch::Receiver<bool>) {
    let duty = Arc::new(duty);
    let mut shutdown = shutdown;
    loop {
        let d = Arc::clone(&duty);
        match tokio::task::spawn_blocking(move || d.round(SystemTime::now())).await {
            Ok(Ok(Some(version))) => {
                tracing::info!(version, holder = %duty.holder, "re-signed timestamp.json");
                if let Some(tx) = &duty.resigned {
                    let _ = tx.send(version);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::error!(error = %chain(&e), "timestamp not re-signed"),
            Err(e) => tracing::error!(error = %e, "the timestamp task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(duty.every) => {}
            _ = shutdown.changed() => break,
        }
    }
    let d = Arc::clone(&duty);
    if let Ok(Err(e)) =
        tokio::task::spawn_blocking(move || d.leases.release_lease(TIMESTAMP_LEASE, &d.holder))
            .await
    {
        tracing::warn!(error = %chain(&e), "could not give the timestamp lease up");
    }
}

/// An error with its sources, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
