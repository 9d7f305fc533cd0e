//! Join tokens and device revocation over the API: the same operator commands as
//! `skerry-server token …` and `skerry-server device revoke` ([`crate::enroll_admin`]).

use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};
use skerry_rollout::UnixTime;

use super::{bad, check_id, optional_str, ApiError};
use crate::enroll_admin::{self, EnrollAdminError};

impl From<EnrollAdminError> for ApiError {
    fn from(e: EnrollAdminError) -> Self {
        use skerry_fleet_store::StoreError as S;
        let status = match &e {
            EnrollAdminError::Uses(_) | EnrollAdminError::Ttl | EnrollAdminError::Label(_) => {
                StatusCode::BAD_REQUEST
            }
            EnrollAdminError::Store(S::NoSuchToken { .. } | S::NoSuchDevice { .. }) => {
                StatusCode::NOT_FOUND
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, crate::timestamp::chain(&e))
    }
}

/// `GET tokens`: every token with its state, never a secret.
pub fn list(db: &crate::fleet_db::FleetDb, now: UnixTime) -> Result<Value, ApiError> {
    let tokens: Vec<Value> = enroll_admin::tokens(db, now)?
        .iter()
        .map(|(t, state)| {
            json!({
                "id": t.id, "state": state.name(), "uses": t.uses, "used": t.used,
                "created_at": t.created_at.0, "expires_at": t.expires_at.0,
                "revoked_at": t.revoked_at.map(|r| r.0), "labels": t.labels,
            })
        })
        .collect();
    Ok(json!({ "tokens": tokens }))
}

/// `POST tokens` with `{"uses": N, "ttl": "24h", "labels": ["k=v", …]}` (all optional):
/// the answer carries the token's secret, the only time it is shown.
pub fn create(
    db: &crate::fleet_db::FleetDb,
    body: &Value,
    now: UnixTime,
) -> Result<Value, ApiError> {
    let uses = match body.get("uses") {
        None | Some(Value::Null) => 1,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| bad("body: \"uses\" must be a whole number"))?,
    };
    let ttl = match optional_str(body, "ttl", 32)? {
        None => Duration::from_secs(86_400),
        Some(t) => humantime::parse_duration(&t)
            .map_err(|e| bad(format!("body: \"ttl\" {t:?}: {e} (like 24h or 30d)")))?,
    };
    let labels: Vec<String> = match body.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if items.len() <= enroll_admin::MAX_TOKEN_LABELS => items
            .iter()
            .map(|i| {
                i.as_str()
                    .filter(|s| s.len() <= 256)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        bad("body: each label is a \"key=value\" string of at most 256 bytes")
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(bad(format!(
                "body: \"labels\" must be a list of at most {} \"key=value\" strings",
                enroll_admin::MAX_TOKEN_LABELS
            )))
        }
    };
    let token = enroll_admin::create_token(db, uses, ttl, &labels, now)?;
    Ok(json!({
        "id": token.id, "token": token.reveal(), "uses": uses,
        "expires_at": now.0 + ttl.as_secs(),
    }))
}

/// `POST tokens/ID/revoke`.
pub fn revoke_token(
    db: &crate::fleet_db::FleetDb,
    id: &str,
    now: UnixTime,
) -> Result<(StatusCode, Value), ApiError> {
    check_id("token", id)?;
    enroll_admin::revoke_token(db, id, now)?;
    Ok((StatusCode::OK, json!({"token": id, "done": "revoked"})))
}

/// `POST devices/ID/revoke`: the device's certificate is refused from now on.
pub fn revoke_device(
    db: &crate::fleet_db::FleetDb,
    id: &str,
    now: UnixTime,
) -> Result<(StatusCode, Value), ApiError> {
    check_id("device", id)?;
    enroll_admin::revoke_device(db, id, now)?;
    Ok((StatusCode::OK, json!({"device": id, "done": "revoked"})))
}
