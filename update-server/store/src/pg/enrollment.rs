//! [`EnrollmentStore`] for [`PgStore`]: each method one SERIALIZABLE transaction
//! (retried on conflict), so a token's use is counted exactly once however many
//! devices enroll at once on however many instances.

use postgres::GenericClient;
use skerry_rollout::UnixTime;

use super::{get, PgStore};
use crate::enrollment::{
    hashes_equal, DeviceIdentity, EnrollRefusal, EnrollmentStore, IdentityRecord, JoinTokenInfo,
    LogEntry, LogKind, LogRefusal, LogSource, NewJoinToken, TokenRefusal, DEVICE_EVENT_LIMIT,
    DEVICE_LOG_LIMIT,
};
use crate::sqlite::{labels_from, labels_to};
use crate::StoreError;

fn kind_name(kind: LogKind) -> &'static str {
    match kind {
        LogKind::Console => "console",
        LogKind::Events => "events",
    }
}

fn kind_limit(kind: LogKind) -> usize {
    match kind {
        LogKind::Console => DEVICE_LOG_LIMIT,
        LogKind::Events => DEVICE_EVENT_LIMIT,
    }
}

const IDENTITY_COLUMNS: &str =
    "device_id, board, serial, not_after, token_id, enrolled_at, revoked_at";

fn token_row(
    tx: &mut impl GenericClient,
    id: &str,
) -> Result<Option<(JoinTokenInfo, Vec<u8>)>, StoreError> {
    let d = "reading a join token";
    let Some(r) = tx
        .query_opt(
            "SELECT id, secret_sha256, uses, used, created_at, expires_at, revoked_at, labels
             FROM join_tokens WHERE id = $1",
            &[&id],
        )
        .map_err(StoreError::pg(d))?
    else {
        return Ok(None);
    };
    let id: String = get(&r, 0, d)?;
    let labels: String = get(&r, 7, d)?;
    let info = JoinTokenInfo {
        labels: labels_from(&format!("join token {id}"), &labels)?,
        uses: get::<i64>(&r, 2, d)? as u32,
        used: get::<i64>(&r, 3, d)? as u32,
        created_at: UnixTime(get::<i64>(&r, 4, d)? as u64),
        expires_at: UnixTime(get::<i64>(&r, 5, d)? as u64),
        revoked_at: get::<Option<i64>>(&r, 6, d)?.map(|t| UnixTime(t as u64)),
        id,
    };
    Ok(Some((info, get(&r, 1, d)?)))
}

/// The token if it may be used now; `need_use` also refuses a used-up one.
fn check_token(
    tx: &mut impl GenericClient,
    id: &str,
    secret_sha256: &[u8; 32],
    need_use: bool,
    now: UnixTime,
) -> Result<Result<JoinTokenInfo, TokenRefusal>, StoreError> {
    let Some((info, secret)) = token_row(tx, id)? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    if !hashes_equal(secret_sha256, &secret) {
        return Ok(Err(TokenRefusal::WrongSecret));
    }
    if info.revoked_at.is_some() {
        return Ok(Err(TokenRefusal::Revoked));
    }
    if now.0 >= info.expires_at.0 {
        return Ok(Err(TokenRefusal::Expired));
    }
    if need_use && info.used >= info.uses {
        return Ok(Err(TokenRefusal::UsedUp));
    }
    Ok(Ok(info))
}

fn identity_from(r: &postgres::Row) -> Result<IdentityRecord, StoreError> {
    let d = "reading a device identity";
    Ok(IdentityRecord {
        identity: DeviceIdentity {
            device_id: get(r, 0, d)?,
            board: get(r, 1, d)?,
            serial: get(r, 2, d)?,
            not_after: UnixTime(get::<i64>(r, 3, d)? as u64),
        },
        token_id: get(r, 4, d)?,
        enrolled_at: UnixTime(get::<i64>(r, 5, d)? as u64),
        revoked_at: get::<Option<i64>>(r, 6, d)?.map(|t| UnixTime(t as u64)),
    })
}

pub(crate) fn identity_row(
    tx: &mut impl GenericClient,
    device_id: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    identity_query(tx, device_id, "")
}

/// [`identity_row`], the row locked against a concurrent revocation or re-enrollment.
pub(crate) fn identity_row_locked(
    tx: &mut impl GenericClient,
    device_id: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    identity_query(tx, device_id, " FOR SHARE")
}

fn identity_query(
    tx: &mut impl GenericClient,
    device_id: &str,
    lock: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    tx.query_opt(
        &format!("SELECT {IDENTITY_COLUMNS} FROM device_identities WHERE device_id = $1{lock}"),
        &[&device_id],
    )
    .map_err(StoreError::pg("reading a device identity"))?
    .as_ref()
    .map(identity_from)
    .transpose()
}

/// Whether `source` may write the log of `device_id`, remembering a token's device.
fn authorize_log(
    tx: &mut impl GenericClient,
    device_id: &str,
    source: &LogSource,
    now: UnixTime,
) -> Result<Result<(), LogRefusal>, StoreError> {
    let identity = identity_row(tx, device_id)?;
    if identity.as_ref().is_some_and(|i| i.revoked_at.is_some()) {
        return Ok(Err(LogRefusal::DeviceRevoked));
    }
    match source {
        LogSource::Certificate { serial } => match identity {
            Some(i) if &i.identity.serial == serial => Ok(Ok(())),
            _ => Ok(Err(LogRefusal::NotCurrentCertificate)),
        },
        LogSource::Token { id, secret_sha256 } => {
            if identity.is_some() {
                return Ok(Err(LogRefusal::EnrolledDevice));
            }
            let token = match check_token(tx, id, secret_sha256, false, now)? {
                Ok(t) => t,
                Err(refusal) => return Ok(Err(LogRefusal::Token(refusal))),
            };
            let doing = "counting a token's log devices";
            let known: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM device_log_tokens WHERE token_id = $1 AND device_id = $2)",
                    &[id, &device_id],
                )
                .map_err(StoreError::pg(doing))?
                .get(0);
            if !known {
                let count: i64 = tx
                    .query_one(
                        "SELECT COUNT(*) FROM device_log_tokens WHERE token_id = $1",
                        &[id],
                    )
                    .map_err(StoreError::pg(doing))?
                    .get(0);
                if count as u64 >= u64::from(token.uses.max(1)) {
                    return Ok(Err(LogRefusal::TokenDeviceLimit));
                }
                tx.execute(
                    "INSERT INTO device_log_tokens (token_id, device_id) VALUES ($1, $2)",
                    &[id, &device_id],
                )
                .map_err(StoreError::pg(doing))?;
            }
            Ok(Ok(()))
        }
    }
}

impl EnrollmentStore for PgStore {
    fn create_token(&self, token: &NewJoinToken) -> Result<(), StoreError> {
        let doing = "creating a join token";
        self.write(doing, |tx| {
            tx.execute(
                "INSERT INTO join_tokens (id, secret_sha256, uses, created_at, expires_at, labels)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &token.id,
                    &token.secret_sha256.as_slice(),
                    &i64::from(token.uses),
                    &(token.created_at.0 as i64),
                    &(token.expires_at.0 as i64),
                    &labels_to(&token.labels),
                ],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(())
        })
    }

    fn tokens(&self) -> Result<Vec<JoinTokenInfo>, StoreError> {
        let doing = "listing join tokens";
        self.read(doing, |tx| {
            let ids: Vec<String> = tx
                .query(
                    "SELECT id FROM join_tokens ORDER BY created_at DESC, id",
                    &[],
                )
                .map_err(StoreError::pg(doing))?
                .iter()
                .map(|r| get(r, 0, doing))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some((info, _)) = token_row(tx, &id)? {
                    out.push(info);
                }
            }
            Ok(out)
        })
    }

    fn revoke_token(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        let doing = "revoking a join token";
        self.write(doing, |tx| {
            let n = tx
                .execute(
                    "UPDATE join_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                    &[&id, &(now.0 as i64)],
                )
                .map_err(StoreError::pg(doing))?;
            if n == 0 {
                return Err(StoreError::NoSuchToken { id: id.to_string() });
            }
            Ok(())
        })
    }

    fn enroll(
        &self,
        token_id: &str,
        secret_sha256: &[u8; 32],
        identity: &DeviceIdentity,
        now: UnixTime,
    ) -> Result<Result<(), EnrollRefusal>, StoreError> {
        let doing = "enrolling a device";
        self.write(doing, |tx| {
            if let Err(refusal) = check_token(tx, token_id, secret_sha256, true, now)? {
                return Ok(Err(EnrollRefusal::Token(refusal)));
            }
            if identity_row(tx, &identity.device_id)?.is_some_and(|i| i.revoked_at.is_some()) {
                return Ok(Err(EnrollRefusal::DeviceRevoked));
            }
            tx.execute(
                "UPDATE join_tokens SET used = used + 1 WHERE id = $1",
                &[&token_id],
            )
            .map_err(StoreError::pg(doing))?;
            tx.execute(
                "INSERT INTO device_identities (device_id, board, serial, not_after, token_id, enrolled_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (device_id) DO UPDATE SET board = excluded.board,
                    serial = excluded.serial, not_after = excluded.not_after,
                    token_id = excluded.token_id, enrolled_at = excluded.enrolled_at",
                &[
                    &identity.device_id,
                    &identity.board,
                    &identity.serial,
                    &(identity.not_after.0 as i64),
                    &token_id,
                    &(now.0 as i64),
                ],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(Ok(()))
        })
    }

    fn identity(&self, device_id: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.read("reading a device identity", |tx| {
            identity_row(tx, device_id)
        })
    }

    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let doing = "listing device identities";
        self.read(doing, |tx| {
            tx.query(
                &format!("SELECT {IDENTITY_COLUMNS} FROM device_identities ORDER BY device_id"),
                &[],
            )
            .map_err(StoreError::pg(doing))?
            .iter()
            .map(identity_from)
            .collect()
        })
    }

    fn revoke_device(&self, device_id: &str, now: UnixTime) -> Result<(), StoreError> {
        let doing = "revoking a device";
        self.write(doing, |tx| {
            let n = tx
                .execute(
                    "UPDATE device_identities SET revoked_at = COALESCE(revoked_at, $2)
                     WHERE device_id = $1",
                    &[&device_id, &(now.0 as i64)],
                )
                .map_err(StoreError::pg(doing))?;
            if n == 0 {
                return Err(StoreError::NoSuchDevice {
                    id: device_id.to_string(),
                });
            }
            Ok(())
        })
    }

    fn append_device_log(
        &self,
        device_id: &str,
        source: &LogSource,
        kind: LogKind,
        lines: &[String],
        now: UnixTime,
    ) -> Result<Result<(), LogRefusal>, StoreError> {
        let doing = "appending to a device log";
        self.write(doing, |tx| {
            if let Err(refusal) = authorize_log(tx, device_id, source, now)? {
                return Ok(Err(refusal));
            }
            let kind_text = kind_name(kind);
            let last: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(seq), 0) FROM device_logs WHERE device_id = $1 AND kind = $2",
                    &[&device_id, &kind_text],
                )
                .map_err(StoreError::pg(doing))?
                .get(0);
            let mut seq = last;
            for line in lines {
                seq += 1;
                tx.execute(
                    "INSERT INTO device_logs (device_id, kind, seq, received_at, text)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&device_id, &kind_text, &seq, &(now.0 as i64), line],
                )
                .map_err(StoreError::pg(doing))?;
            }
            tx.execute(
                "DELETE FROM device_logs WHERE device_id = $1 AND kind = $2 AND seq <= $3",
                &[&device_id, &kind_text, &(seq - kind_limit(kind) as i64)],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(Ok(()))
        })
    }

    fn device_log(&self, device_id: &str, kind: LogKind) -> Result<Vec<LogEntry>, StoreError> {
        let doing = "reading a device log";
        self.read(doing, |tx| {
            tx.query(
                "SELECT seq, received_at, text FROM device_logs
                 WHERE device_id = $1 AND kind = $2 ORDER BY seq",
                &[&device_id, &kind_name(kind)],
            )
            .map_err(StoreError::pg(doing))?
            .iter()
            .map(|r| {
                Ok(LogEntry {
                    seq: get::<i64>(r, 0, doing)? as u64,
                    received_at: UnixTime(get::<i64>(r, 1, doing)? as u64),
                    text: get(r, 2, doing)?,
                })
            })
            .collect()
        })
    }
}
