//! Operator commands for enrollment on the data directory: join tokens (create, list,
//! revoke), device revocation, reading a device's console log and events.

use std::collections::BTreeMap;
use std::time::Duration;

use skerry_fleet_store::{JoinTokenInfo, LogKind, NewJoinToken, StoreError};
use skerry_rollout::UnixTime;

use crate::fleet_db::FleetDb;
use crate::join_token::JoinToken;

/// The most uses one token may have.
pub const MAX_TOKEN_USES: u32 = 100_000;
/// The longest a token may live.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(365 * 86_400);
/// The most labels on a token.
pub const MAX_TOKEN_LABELS: usize = 16;

/// Why an enrollment command failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollAdminError {
    #[error("{0}")]
    Data(#[from] crate::data::DataError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("--uses {0}: give 1 to {MAX_TOKEN_USES}")]
    Uses(u32),
    #[error("--ttl: give 1 minute to 365 days")]
    Ttl,
    #[error("--label {0:?}: write key=value (at most {MAX_TOKEN_LABELS} labels)")]
    Label(String),
    #[error("no random source for the token secret: {0}")]
    Random(getrandom::Error),
}

/// Makes a token; the returned value is the only time its secret is seen.
pub fn create_token(
    db: &FleetDb,
    uses: u32,
    ttl: Duration,
    labels: &[String],
    now: UnixTime,
) -> Result<JoinToken, EnrollAdminError> {
    if uses == 0 || uses > MAX_TOKEN_USES {
        return Err(EnrollAdminError::Uses(uses));
    }
    if ttl < Duration::from_secs(60) || ttl > MAX_TOKEN_TTL {
        return Err(EnrollAdminError::Ttl);
    }
    if labels.len() > MAX_TOKEN_LABELS {
        return Err(EnrollAdminError::Label(labels.join(",")));
    }
    let mut map = BTreeMap::new();
    for l in labels {
        match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                map.insert(k.to_string(), v.to_string());
            }
            _ => return Err(EnrollAdminError::Label(l.clone())),
        }
    }
    let token = JoinToken::generate().map_err(EnrollAdminError::Random)?;
    db.store.create_token(&NewJoinToken {
        id: token.id.clone(),
        secret_sha256: token.secret_sha256(),
        uses,
        created_at: now,
        expires_at: UnixTime(now.0 + ttl.as_secs()),
        labels: map,
    })?;
    Ok(token)
}

/// Where a token stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Expired,
    UsedUp,
    Revoked,
}

impl TokenState {
    pub fn of(t: &JoinTokenInfo, now: UnixTime) -> Self {
        if t.revoked_at.is_some() {
            Self::Revoked
        } else if now.0 >= t.expires_at.0 {
            Self::Expired
        } else if t.used >= t.uses {
            Self::UsedUp
        } else {
            Self::Active
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::UsedUp => "used-up",
            Self::Revoked => "revoked",
        }
    }
}

/// Every token (never its secret, which is not stored) with its state at `now`; the
/// `token list` command and the operator API both show these.
pub fn tokens(
    db: &FleetDb,
    now: UnixTime,
) -> Result<Vec<(JoinTokenInfo, TokenState)>, EnrollAdminError> {
    Ok(db
        .store
        .tokens()?
        .into_iter()
        .map(|t| {
            let state = TokenState::of(&t, now);
            (t, state)
        })
        .collect())
}

/// One line per token: id, uses, expiry, state, labels.
pub fn list_tokens(db: &FleetDb, now: UnixTime) -> Result<Vec<String>, EnrollAdminError> {
    Ok(tokens(db, now)?
        .into_iter()
        .map(|(t, state)| {
            let labels: Vec<String> = t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} {} used {}/{} expires {} {}",
                t.id,
                state.name(),
                t.used,
                t.uses,
                t.expires_at.0,
                labels.join(",")
            )
        })
        .collect())
}

pub fn revoke_token(db: &FleetDb, id: &str, now: UnixTime) -> Result<(), EnrollAdminError> {
    Ok(db.store.revoke_token(id, now)?)
}

pub fn revoke_device(db: &FleetDb, device: &str, now: UnixTime) -> Result<(), EnrollAdminError> {
    Ok(db.store.revoke_device(device, now)?)
}

/// A device's console log or events, one `received_at text` line each, oldest first.
pub fn device_log(
    db: &FleetDb,
    device: &str,
    events: bool,
) -> Result<Vec<String>, EnrollAdminError> {
    let kind = if events {
        LogKind::Events
    } else {
        LogKind::Console
    };
    Ok(db
        .store
        .device_log(device, kind)?
        .into_iter()
        .map(|e| format!("{} {}", e.received_at.0, e.text))
        .collect())
}
