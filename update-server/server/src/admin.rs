//! Operator commands on the fleet database: create, pause, resume, abort and list
//! rollouts, pin devices, add maintenance windows. The `skerry-server` commands and the
//! operator API both call these, on the embedded database or on PostgreSQL; every change
//! is one transaction, so the commands work with servers up.

use skerry_fleet_store::{RolloutAction, StoreError};
use skerry_rollout::{
    HealthGate, LabelSelector, MaintenanceWindow, Pin, Release, Rollout, RolloutState, UnixTime,
    Wave, WaveSchedule, Weekdays, BASIS_POINTS,
};

use crate::fleet_db::FleetDb;
use crate::releases::ReleaseCatalog;

/// Why an operator command was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Data(#[from] crate::data::DataError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("--waves {given:?}: {problem} (write OFFSET:PERCENT,… e.g. 0:5%,1h:25%,1d:100%)")]
    Waves { given: String, problem: String },
    #[error("--max-bad {given:?}: give a percentage from 0% to 100%, e.g. 20% or 2.5%")]
    Threshold { given: String },
    #[error("the repository holds no release {board} {version} in channel {channel}; publish it first (skerryctl release add)")]
    NoSuchRelease {
        board: String,
        version: String,
        channel: String,
    },
    #[error("{what}: {given:?} is not valid")]
    Window { what: &'static str, given: String },
    #[error("{given:?} is not a semantic version")]
    Version { given: String },
}

/// `25%`, `2.5%` or `100%` in basis points; at most two decimals.
pub fn parse_percent(text: &str) -> Option<u16> {
    let number = text.trim().strip_suffix('%')?;
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || whole.len() > 3 || frac.len() > 2 {
        return None;
    }
    if !whole
        .bytes()
        .chain(frac.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    let bp = whole * 100 + frac;
    (bp <= u32::from(BASIS_POINTS)).then_some(bp as u16)
}

/// `0:5%,1h:25%,1d:100%` into a schedule.
pub fn parse_waves(text: &str) -> Result<WaveSchedule, AdminError> {
    let bad = |problem: String| AdminError::Waves {
        given: text.into(),
        problem,
    };
    let mut waves = Vec::new();
    for part in text.split(',').take(64) {
        let (offset, percent) = part
            .split_once(':')
            .ok_or_else(|| bad(format!("{part:?} has no ':'")))?;
        let after_secs = if offset.trim() == "0" {
            0
        } else {
            humantime::parse_duration(offset.trim())
                .map_err(|e| bad(format!("{offset:?}: {e}")))?
                .as_secs()
        };
        let basis_points = parse_percent(percent)
            .ok_or_else(|| bad(format!("{percent:?} is not a percentage")))?;
        waves.push(Wave {
            after_secs,
            basis_points,
        });
    }
    WaveSchedule::new(waves).map_err(|e| bad(e.to_string()))
}

/// What `rollout create` asks for.
#[derive(Debug, Clone)]
pub struct NewRollout {
    pub id: String,
    pub board: String,
    pub version: String,
    pub channel: String,
    pub waves: String,
    pub max_bad: String,
    pub min_sample: u32,
    pub force: bool,
}

/// Creates a rollout of a release the repository holds, starting `now`.
pub fn create_rollout(
    db: &FleetDb,
    new: &NewRollout,
    now: UnixTime,
) -> Result<Rollout, AdminError> {
    let version = semver::Version::parse(&new.version).map_err(|_| AdminError::Version {
        given: new.version.clone(),
    })?;
    let release = Release {
        board: new.board.clone(),
        version,
        channel: new.channel.clone(),
    };
    if !ReleaseCatalog::new(&db.dir.repository())
        .releases()
        .contains(&release)
    {
        return Err(AdminError::NoSuchRelease {
            board: new.board.clone(),
            version: new.version.clone(),
            channel: new.channel.clone(),
        });
    }
    let max_bad = parse_percent(&new.max_bad).ok_or_else(|| AdminError::Threshold {
        given: new.max_bad.clone(),
    })?;
    let rollout = Rollout {
        id: new.id.clone(),
        release,
        started_at: now,
        waves: parse_waves(&new.waves)?,
        gate: HealthGate {
            // Basis points to per mille, rounding down (0.05 % steps are too fine to matter).
            max_bad_permille: max_bad / 10,
            min_sample: new.min_sample.max(1),
        },
        state: RolloutState::Active,
        force: new.force,
    };
    db.store.create_rollout(&rollout)?;
    Ok(rollout)
}

pub fn act(
    db: &FleetDb,
    id: &str,
    action: &RolloutAction,
    now: UnixTime,
) -> Result<(), AdminError> {
    Ok(db.store.act_on_rollout(id, action, now)?)
}

pub fn pin(db: &FleetDb, device: &str, pin: Option<(&str, bool)>) -> Result<(), AdminError> {
    let pin = pin
        .map(|(v, force)| {
            semver::Version::parse(v)
                .map(|version| Pin { version, force })
                .map_err(|_| AdminError::Version { given: v.into() })
        })
        .transpose()?;
    Ok(db.store.set_pin(device, pin.as_ref())?)
}

/// One line per rollout: id, release, state (with the pause reason), devices per wave.
pub fn list(db: &FleetDb) -> Result<Vec<String>, AdminError> {
    Ok(db
        .store
        .rollouts()?
        .into_iter()
        .map(|r| {
            let state = match &r.rollout.state {
                RolloutState::Active => "active".to_string(),
                RolloutState::Paused { reason, .. } => reason.to_string(),
                RolloutState::Aborted => "aborted".into(),
            };
            let waves: Vec<String> = r
                .stats
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    format!(
                        "wave {}: {} started, {} committed, {} failed, {} rolled back",
                        i + 1,
                        s.started,
                        s.committed,
                        s.failed,
                        s.rolled_back
                    )
                })
                .collect();
            let rel = &r.rollout.release;
            format!(
                "{}\t{} {} ({})\t{}\t{}",
                r.rollout.id,
                rel.board,
                rel.version,
                rel.channel,
                state,
                waves.join("; ")
            )
        })
        .collect())
}

/// `mon,tue,…,sun` or `daily` as weekdays.
pub fn parse_days(text: &str) -> Option<Weekdays> {
    if text == "daily" {
        return Some(Weekdays::EVERY_DAY);
    }
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let mut bits = 0u8;
    for day in text.split(',').take(8) {
        let i = NAMES.iter().position(|n| *n == day.trim())?;
        bits |= 1 << i;
    }
    Weekdays::from_bits(bits).ok()
}

/// `HH:MM` (UTC) as minutes after midnight.
pub fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// What `window add` asks for.
#[derive(Debug, Clone)]
pub struct NewWindow {
    /// `key=value` labels a device must all carry; none selects every device.
    pub group: Vec<String>,
    pub days: String,
    pub start: String,
    pub length: String,
}

/// Adds a maintenance window for a label group.
pub fn add_window(db: &FleetDb, new: &NewWindow) -> Result<MaintenanceWindow, AdminError> {
    let bad = |what: &'static str, given: &str| AdminError::Window {
        what,
        given: given.into(),
    };
    let mut group = LabelSelector::new();
    for label in new.group.iter().take(32) {
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| bad("--group (key=value)", label))?;
        group.insert(k.into(), v.into());
    }
    let days =
        parse_days(&new.days).ok_or_else(|| bad("--days (mon,tue,… or daily)", &new.days))?;
    let start = parse_clock(&new.start).ok_or_else(|| bad("--start (HH:MM, UTC)", &new.start))?;
    let length = humantime::parse_duration(&new.length)
        .ok()
        .map(|d| d.as_secs() / 60)
        .and_then(|m| u16::try_from(m).ok())
        .ok_or_else(|| bad("--length (e.g. 2h)", &new.length))?;
    let window = MaintenanceWindow::new(group, days, start, length)
        .map_err(|e| bad("window", &e.to_string()))?;
    db.store.add_window(&window)?;
    Ok(window)
}
