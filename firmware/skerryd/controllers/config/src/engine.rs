//! The config's state machine over the store: what is in effect, staged and on try,
//! the generation counter and the history, and every transition between them. Each
//! transition writes the store first, in an order the next start can finish or undo
//! after a power cut, and changes memory only once the write that makes it real is
//! done. The caller serializes transitions (one lock around the engine).
//!
//! At start ([`Engine::open`]):
//! - an empty store takes the factory config (`DIR/config.yaml`) as generation 1;
//! - a config on try is reverted unless this is the same boot (the marker in `run/`,
//!   which a reboot loses, names it) and its time has not run out; then it is kept,
//!   with what is left of its time (never more than its timeout, whatever the clock
//!   did);
//! - a staged config becomes the config in effect.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use skerry_config::kinds::HumanDuration;
use skerry_config::persist::{ConfigHistory, HistoryEntry, StoredConfig};
use skerry_config::{ApplyMode, Config, Limits};
use skerryd_core::{EventLog, NewEvent};
use tokio::time::Instant;

use crate::problems::{self, Verdict};
use crate::resources::{ConfigStatus, TryStatus, STORE_ID};
use crate::store::{unix_ms, Store, StoreError, TrialRecord, STAGED_FILE, TRY_FILE};

/// The resource events name: the status resource.
const ABOUT: (&str, &str) = (
    skerryd_core::resources::CONFIG_NAMESPACE,
    <ConfigStatus as skerry_runtime::ResourceSpec>::TYPE,
);

/// The config in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// Its generation (0: none was ever applied).
    pub generation: u64,
    /// The config.
    pub config: Config,
}

/// The config on try.
#[derive(Debug)]
pub struct Trial {
    /// As stored.
    pub record: TrialRecord,
    /// The config it reverts to.
    pub previous: Config,
    /// When it reverts, on the runtime's clock.
    pub deadline: Instant,
}

/// Where the engine keeps its state, and what it starts from.
#[derive(Debug)]
pub struct Start {
    /// The store.
    pub store: Store,
    /// The factory config, used when the store is empty.
    pub factory: PathBuf,
    /// The marker that names the config on try in this boot (under `run/`).
    pub try_marker: PathBuf,
    /// Where events go.
    pub events: EventLog,
}

/// Why a confirmation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// Nothing is on try.
    #[error("no configuration is on try (it may have been reverted or confirmed already)")]
    NothingOnTry,
    /// Another generation is on try.
    #[error("generation {pending} is on try, not generation {asked}")]
    OtherGeneration {
        /// The generation on try.
        pending: u64,
        /// The generation named.
        asked: u64,
    },
    /// The store could not be written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The config's state, over its store.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    try_marker: PathBuf,
    events: EventLog,
    effective: Effective,
    staged: Option<(u64, Config)>,
    trial: Option<Trial>,
    history: ConfigHistory,
    last_generation: u64,
    revision: u64,
}

/// The most bytes of the try marker read.
const MAX_MARKER: u64 = 64;

fn read_marker(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    // Never opened unless a regular file: opening a FIFO waits for a writer.
    if !meta.is_file() || meta.len() > MAX_MARKER {
        return None;
    }
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads and checks the factory config; `None` when there is none.
fn factory_config(path: &Path) -> anyhow::Result<Option<Config>> {
    let limits = Limits::DEFAULT;
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    // Opening a FIFO for reading waits for a writer: the start would hang.
    if !meta.is_file() {
        anyhow::bail!(
            "the factory config {} is not a regular file (a directory, a FIFO or a device); remove it or put the config's YAML there",
            path.display()
        );
    }
    if meta.len() > limits.max_bytes as u64 {
        anyhow::bail!(
            "the factory config {} is {} bytes, more than the limit of {} bytes",
            path.display(),
            meta.len(),
            limits.max_bytes
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = problems::bounded_text(&bytes, &limits)
        .map_err(|s| anyhow::anyhow!("the factory config {}: {}", path.display(), s.message()))?;
    match problems::check(text, &limits) {
        Verdict::Valid(config) => Ok(Some(config)),
        Verdict::Invalid { problems, .. } => anyhow::bail!(
            "the factory config {} is not valid: {}",
            path.display(),
            problems::describe(&problems)
        ),
    }
}

impl Engine {
    /// Loads the store and carries out what a start does (module docs).
    pub fn open(start: Start) -> anyhow::Result<Engine> {
        let Start {
            store,
            factory,
            try_marker,
            events,
        } = start;
        let loaded = store
            .load()
            .with_context(|| format!("reading the config store in {}", store.dir().display()))?;
        let empty = loaded.is_empty();
        let last_generation = [
            loaded.last_generation,
            loaded.effective.as_ref().map_or(0, |(s, _)| s.generation),
            loaded.staged.as_ref().map_or(0, |(s, _)| s.generation),
            loaded.trial.as_ref().map_or(0, |(t, _)| t.generation),
            loaded
                .history
                .entries()
                .map(|e| e.generation)
                .max()
                .unwrap_or(0),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let mut engine = Engine {
            store,
            try_marker,
            events,
            effective: loaded
                .effective
                .map(|(stored, config)| Effective {
                    generation: stored.generation,
                    config,
                })
                .unwrap_or(Effective {
                    generation: 0,
                    config: Config::default(),
                }),
            staged: None,
            trial: None,
            history: loaded.history,
            last_generation,
            revision: 0,
        };
        if empty {
            if let Some(config) = factory_config(&factory)? {
                engine.take_factory(config, &factory)?;
            }
        }
        let staged = loaded.staged;
        if let Some((record, previous)) = loaded.trial {
            let generation = record.generation;
            let same_boot = read_marker(&engine.try_marker) == Some(generation);
            let left = record
                .revert_at()
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .min(record.timeout());
            engine.trial = Some(Trial {
                record,
                previous,
                deadline: Instant::now() + left,
            });
            let reason = if staged.is_some() {
                Some("a staged configuration takes effect at this start")
            } else if !same_boot {
                Some("the machine restarted before it was confirmed")
            } else if left.is_zero() {
                Some("its time ran out while the daemon was stopped")
            } else {
                None
            };
            match reason {
                Some(reason) => engine.revert(reason)?,
                None => tracing::info!(
                    generation,
                    left_secs = left.as_secs(),
                    "the configuration on try is kept until it is confirmed or its time runs out"
                ),
            }
        }
        if let Some((stored, config)) = staged {
            engine.promote_staged(stored, config)?;
        }
        if engine.trial.is_none() {
            engine.clear_marker();
        }
        Ok(engine)
    }

    fn take_factory(&mut self, config: Config, path: &Path) -> anyhow::Result<()> {
        let generation = self.next_generation()?;
        self.store
            .write_config(&StoredConfig::new(&config, generation))?;
        self.record(generation, ApplyMode::Staged, &config);
        self.effective = Effective { generation, config };
        self.event(
            NewEvent::new(
                "config.applied",
                format!(
                    "the factory configuration {} is in effect as generation {generation}",
                    path.display()
                ),
            )
            .with("generation", generation)
            .with("source", "factory"),
        );
        Ok(())
    }

    fn promote_staged(&mut self, stored: StoredConfig, config: Config) -> anyhow::Result<()> {
        let generation = stored.generation;
        self.store.write_config(&stored)?;
        self.store.remove(STAGED_FILE)?;
        self.effective = Effective { generation, config };
        self.event(
            NewEvent::new(
                "config.applied",
                format!("the staged configuration generation {generation} took effect at start"),
            )
            .with("generation", generation)
            .with("mode", "staged"),
        );
        Ok(())
    }

    fn event(&self, event: NewEvent) {
        self.events.push(event.about(ABOUT.0, ABOUT.1, STORE_ID));
    }

    fn next_generation(&mut self) -> Result<u64, StoreError> {
        let generation = self.last_generation + 1;
        self.store.write_generation(generation)?;
        self.last_generation = generation;
        Ok(generation)
    }

    /// Adds to the history; a failure is logged, the config stands (the history only
    /// informs).
    fn record(&mut self, generation: u64, mode: ApplyMode, config: &Config) {
        self.history.push(HistoryEntry {
            generation,
            mode,
            accepted_at: unix_ms(SystemTime::now()) / 1000,
            yaml: config.to_yaml(),
        });
        if let Err(e) = self.store.write_history(&self.history) {
            tracing::warn!(error = %anyhow::Error::from(e), "could not write the config history");
        }
    }

    fn write_marker(&self, generation: u64) {
        let written = self
            .try_marker
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(skerry_medium::MediumError::io("create", &self.try_marker))
            .and_then(|()| {
                skerry_medium::write_atomic(&self.try_marker, format!("{generation}\n").as_bytes())
            });
        // Without the marker the try is reverted at the next start even within its
        // time: the safe side.
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not record the configuration on try for this boot");
        }
    }

    fn clear_marker(&self) {
        match std::fs::remove_file(&self.try_marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                file = %self.try_marker.display(),
                error = %e,
                "could not remove the try marker"
            ),
        }
    }

    /// The config in effect.
    pub fn effective(&self) -> &Effective {
        &self.effective
    }

    /// The staged config and its generation.
    pub fn staged(&self) -> Option<(u64, &Config)> {
        self.staged.as_ref().map(|(g, c)| (*g, c))
    }

    /// The config on try.
    pub fn trial(&self) -> Option<&Trial> {
        self.trial.as_ref()
    }

    /// The history.
    pub fn history(&self) -> &ConfigHistory {
        &self.history
    }

    /// Bumped at every change; the publisher's status carries the one it reflects.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The status resource's spec.
    pub fn status(&self) -> ConfigStatus {
        ConfigStatus {
            generation: self.effective.generation,
            pending_try: self.trial.as_ref().map(|t| TryStatus {
                generation: t.record.generation,
                revert_at: t.record.revert_at(),
                reverts_to: t.record.previous.generation,
            }),
            staged_generation: self.staged.as_ref().map(|(g, _)| *g),
            revision: self.revision,
        }
    }

    /// Makes `config` the config in effect now (modes no-reboot and reboot); a staged
    /// config is dropped (the newer word wins). Returns its generation.
    pub fn commit(&mut self, config: Config, mode: ApplyMode) -> Result<u64, StoreError> {
        let generation = self.next_generation()?;
        self.store.remove(STAGED_FILE)?;
        self.staged = None;
        self.store
            .write_config(&StoredConfig::new(&config, generation))?;
        self.record(generation, mode, &config);
        self.effective = Effective { generation, config };
        self.revision += 1;
        self.event(
            NewEvent::new(
                "config.applied",
                format!("configuration generation {generation} is in effect ({mode})"),
            )
            .with("generation", generation)
            .with("mode", mode),
        );
        Ok(generation)
    }

    /// Stores `config` for the next start. Returns its generation.
    pub fn stage(&mut self, config: Config) -> Result<u64, StoreError> {
        let generation = self.next_generation()?;
        self.store
            .write_staged(&StoredConfig::new(&config, generation))?;
        self.record(generation, ApplyMode::Staged, &config);
        self.staged = Some((generation, config));
        self.revision += 1;
        self.event(
            NewEvent::new(
                "config.staged",
                format!("configuration generation {generation} takes effect at the next start"),
            )
            .with("generation", generation),
        );
        Ok(generation)
    }

    /// Puts `config` in effect on try for `timeout`. Returns its generation and when
    /// it reverts.
    pub fn begin_try(
        &mut self,
        config: Config,
        timeout: Duration,
    ) -> Result<(u64, SystemTime), StoreError> {
        let generation = self.next_generation()?;
        let revert_at = SystemTime::now() + timeout;
        let record = TrialRecord {
            generation,
            revert_at_ms: unix_ms(revert_at),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            previous: StoredConfig::new(&self.effective.config, self.effective.generation),
        };
        // try.json first: until config.json is replaced it reverts to what is in
        // effect anyway, so a power cut in between changes nothing.
        self.store.write_trial(&record)?;
        self.write_marker(generation);
        self.store.remove(STAGED_FILE)?;
        self.staged = None;
        if let Err(e) = self
            .store
            .write_config(&StoredConfig::new(&config, generation))
        {
            let _ = self.store.remove(TRY_FILE);
            self.clear_marker();
            return Err(e);
        }
        let mode = ApplyMode::Try {
            timeout: HumanDuration(timeout),
        };
        self.record(generation, mode, &config);
        let previous = std::mem::replace(&mut self.effective, Effective { generation, config });
        self.trial = Some(Trial {
            record,
            previous: previous.config,
            deadline: Instant::now() + timeout,
        });
        self.revision += 1;
        self.event(
            NewEvent::new(
                "config.try",
                format!(
                    "configuration generation {generation} is on try; it reverts to generation {} in {} unless confirmed",
                    previous.generation,
                    HumanDuration(timeout)
                ),
            )
            .with("generation", generation)
            .with("reverts_to", previous.generation)
            .with("revert_at_unix_ms", unix_ms(revert_at)),
        );
        Ok((generation, revert_at))
    }

    /// Confirms the config on try, which must be `generation`.
    pub fn confirm(&mut self, generation: u64) -> Result<(), ConfirmError> {
        let pending = match &self.trial {
            None => return Err(ConfirmError::NothingOnTry),
            Some(t) => t.record.generation,
        };
        if pending != generation {
            return Err(ConfirmError::OtherGeneration {
                pending,
                asked: generation,
            });
        }
        self.store.remove(TRY_FILE)?;
        self.trial = None;
        self.clear_marker();
        self.revision += 1;
        self.event(
            NewEvent::new(
                "config.confirmed",
                format!("configuration generation {generation} was confirmed"),
            )
            .with("generation", generation),
        );
        Ok(())
    }

    /// Reverts the config on try if its deadline is at or before `now`. Returns
    /// whether it did.
    pub fn revert_if_due(&mut self, now: Instant) -> Result<bool, StoreError> {
        match &self.trial {
            Some(t) if t.deadline <= now => {
                self.revert("its time ran out before it was confirmed")?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Puts the config the try replaced back in effect.
    fn revert(&mut self, reason: &str) -> Result<(), StoreError> {
        let Some(trial) = self.trial.take() else {
            return Ok(());
        };
        if let Err(e) = self.store.write_config(&trial.record.previous) {
            self.trial = Some(trial);
            return Err(e);
        }
        // config.json is back; a try.json left behind reverts to the same config at
        // the next start.
        if let Err(e) = self.store.remove(TRY_FILE) {
            tracing::warn!(error = %anyhow::Error::from(e), "could not remove the try record");
        }
        self.clear_marker();
        let generation = trial.record.generation;
        let back = trial.record.previous.generation;
        self.effective = Effective {
            generation: back,
            config: trial.previous,
        };
        self.revision += 1;
        self.event(
            NewEvent::new(
                "config.reverted",
                format!(
                    "configuration generation {generation} was reverted to generation {back}: {reason}"
                ),
            )
            .with("generation", generation)
            .with("reverted_to", back)
            .with("reason", reason),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(hostname: &str) -> Config {
        skerry_config::decode(&format!(
            "apiVersion: skerry.dev/v1alpha1\nkind: MachineConfig\nhostname: {hostname}\n"
        ))
        .unwrap()
    }

    fn open(dir: &Path) -> Engine {
        Engine::open(Start {
            store: Store::at(dir.join("config")),
            factory: dir.join("config.yaml"),
            try_marker: dir.join("run/config-try"),
            events: EventLog::new(1),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_power_cut_between_the_try_record_and_the_config_reverts_to_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("config"));
        let before = StoredConfig::new(&machine("pump-7"), 1);
        store.write_config(&before).unwrap();
        // try.json is written first; the cut came before config.json was replaced.
        store
            .write_trial(&TrialRecord {
                generation: 2,
                revert_at_ms: unix_ms(SystemTime::now()) + 60_000,
                timeout_ms: 60_000,
                previous: before.clone(),
            })
            .unwrap();
        store.write_generation(2).unwrap();
        let engine = open(dir.path());
        assert_eq!(engine.effective().config, machine("pump-7"));
        assert_eq!(engine.effective().generation, 1);
        assert!(engine.trial().is_none());
        assert!(!store.path(TRY_FILE).exists());
        assert_eq!(engine.last_generation, 2);
    }

    #[tokio::test]
    async fn a_staged_config_wins_over_a_try_left_by_a_power_cut() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("config"));
        let before = StoredConfig::new(&machine("pump-7"), 1);
        store
            .write_config(&StoredConfig::new(&machine("pump-try"), 3))
            .unwrap();
        store
            .write_staged(&StoredConfig::new(&machine("pump-staged"), 2))
            .unwrap();
        store
            .write_trial(&TrialRecord {
                generation: 3,
                revert_at_ms: unix_ms(SystemTime::now()) + 60_000,
                timeout_ms: 60_000,
                previous: before,
            })
            .unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("run/config-try"), "3\n").unwrap();
        let engine = open(dir.path());
        assert_eq!(engine.effective().config, machine("pump-staged"));
        assert!(engine.trial().is_none());
        assert!(engine.staged().is_none());
        assert!(!dir.path().join("run/config-try").exists());
        // The next generation is past every one seen.
        assert_eq!(engine.last_generation, 3);
    }

    #[tokio::test]
    async fn a_kept_try_never_waits_longer_than_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::at(dir.path().join("config"));
        let before = StoredConfig::new(&machine("pump-7"), 1);
        store
            .write_config(&StoredConfig::new(&machine("pump-try"), 2))
            .unwrap();
        // A clock that went back (no RTC): the revert time looks a year away.
        store
            .write_trial(&TrialRecord {
                generation: 2,
                revert_at_ms: unix_ms(SystemTime::now()) + 365 * 24 * 3600 * 1000,
                timeout_ms: 30_000,
                previous: before,
            })
            .unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        std::fs::write(dir.path().join("run/config-try"), "2\n").unwrap();
        let engine = open(dir.path());
        let trial = engine.trial().expect("kept in the same boot");
        let left = trial.deadline.saturating_duration_since(Instant::now());
        assert!(left <= Duration::from_secs(30), "{left:?}");
        assert_eq!(engine.status().pending_try.unwrap().reverts_to, 1);
    }
}
