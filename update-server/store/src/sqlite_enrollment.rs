//! [`EnrollmentStore`] for [`SqliteStore`]: each method one immediate transaction, so
//! a token's use is counted exactly once however many devices enroll at the same time.

use rusqlite::{params, OptionalExtension, Transaction};
use skerry_rollout::UnixTime;

use crate::enrollment::{
    hashes_equal, DeviceIdentity, EnrollRefusal, EnrollmentStore, IdentityRecord, JoinTokenInfo,
    LogEntry, LogKind, LogRefusal, LogSource, NewJoinToken, TokenRefusal, DEVICE_EVENT_LIMIT,
    DEVICE_LOG_LIMIT,
};
use crate::sqlite::{labels_from, labels_to, SqliteStore};
use crate::sqlite_cached::Cached;
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

struct TokenRow {
    info: JoinTokenInfo,
    secret: Vec<u8>,
}

fn token_row(tx: &Transaction<'_>, id: &str) -> Result<Option<TokenRow>, StoreError> {
    let doing = "reading a join token";
    let row = tx
        .query_row_cached(
            "SELECT id, secret_sha256, uses, used, created_at, expires_at, revoked_at, labels
             FROM join_tokens WHERE id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, String>(7)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::sql(doing))?;
    row.map(
        |(id, secret, uses, used, created, expires, revoked, labels)| {
            Ok(TokenRow {
                info: JoinTokenInfo {
                    labels: labels_from(&format!("join token {id}"), &labels)?,
                    id,
                    uses: uses as u32,
                    used: used as u32,
                    created_at: UnixTime(created as u64),
                    expires_at: UnixTime(expires as u64),
                    revoked_at: revoked.map(|t| UnixTime(t as u64)),
                },
                secret,
            })
        },
    )
    .transpose()
}

/// The token if it may be used now; `need_use` also refuses a used-up one.
fn check_token(
    tx: &Transaction<'_>,
    id: &str,
    secret_sha256: &[u8; 32],
    need_use: bool,
    now: UnixTime,
) -> Result<Result<JoinTokenInfo, TokenRefusal>, StoreError> {
    let Some(row) = token_row(tx, id)? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    if !hashes_equal(secret_sha256, &row.secret) {
        return Ok(Err(TokenRefusal::WrongSecret));
    }
    if row.info.revoked_at.is_some() {
        return Ok(Err(TokenRefusal::Revoked));
    }
    if now.0 >= row.info.expires_at.0 {
        return Ok(Err(TokenRefusal::Expired));
    }
    if need_use && row.info.used >= row.info.uses {
        return Ok(Err(TokenRefusal::UsedUp));
    }
    Ok(Ok(row.info))
}

pub(crate) fn identity_row(
    tx: &rusqlite::Connection,
    device_id: &str,
) -> Result<Option<IdentityRecord>, StoreError> {
    tx.query_row_cached(
        "SELECT device_id, board, serial, not_after, token_id, enrolled_at, revoked_at
         FROM device_identities WHERE device_id = ?1",
        params![device_id],
        identity_from,
    )
    .optional()
    .map_err(StoreError::sql("reading a device identity"))
}

fn identity_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRecord> {
    Ok(IdentityRecord {
        identity: DeviceIdentity {
            device_id: r.get(0)?,
            board: r.get(1)?,
            serial: r.get(2)?,
            not_after: UnixTime(r.get::<_, i64>(3)? as u64),
        },
        token_id: r.get(4)?,
        enrolled_at: UnixTime(r.get::<_, i64>(5)? as u64),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(|t| UnixTime(t as u64)),
    })
}

/// Whether `source` may write the log of `device_id`, remembering a token's device.
fn authorize_log(
    tx: &Transaction<'_>,
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
                .query_row_cached(
                    "SELECT EXISTS (SELECT 1 FROM device_log_tokens WHERE token_id = ?1 AND device_id = ?2)",
                    params![id, device_id],
                    |r| r.get(0),
                )
                .map_err(StoreError::sql(doing))?;
            if !known {
                let count: i64 = tx
                    .query_row_cached(
                        "SELECT COUNT(*) FROM device_log_tokens WHERE token_id = ?1",
                        params![id],
                        |r| r.get(0),
                    )
                    .map_err(StoreError::sql(doing))?;
                if count as u64 >= u64::from(token.uses.max(1)) {
                    return Ok(Err(LogRefusal::TokenDeviceLimit));
                }
                tx.execute_cached(
                    "INSERT INTO device_log_tokens (token_id, device_id) VALUES (?1, ?2)",
                    params![id, device_id],
                )
                .map_err(StoreError::sql(doing))?;
            }
            Ok(Ok(()))
        }
    }
}

impl EnrollmentStore for SqliteStore {
    fn create_token(&self, token: &NewJoinToken) -> Result<(), StoreError> {
        self.write("creating a join token", |tx| {
            tx.execute_cached(
                "INSERT INTO join_tokens (id, secret_sha256, uses, created_at, expires_at, labels)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.id,
                    token.secret_sha256.as_slice(),
                    token.uses,
                    token.created_at.0 as i64,
                    token.expires_at.0 as i64,
                    labels_to(&token.labels)
                ],
            )
            .map_err(StoreError::sql("creating a join token"))?;
            Ok(())
        })
    }

    fn tokens(&self) -> Result<Vec<JoinTokenInfo>, StoreError> {
        self.write("listing join tokens", |tx| {
            let ids: Vec<String> = {
                let mut stmt = tx
                    .prepare_cached("SELECT id FROM join_tokens ORDER BY created_at DESC, id")
                    .map_err(StoreError::sql("listing join tokens"))?;
                let rows = stmt
                    .query_map([], |r| r.get(0))
                    .map_err(StoreError::sql("listing join tokens"))?;
                rows.collect::<Result<_, _>>()
                    .map_err(StoreError::sql("listing join tokens"))?
            };
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(row) = token_row(tx, &id)? {
                    out.push(row.info);
                }
            }
            Ok(out)
        })
    }

    fn revoke_token(&self, id: &str, now: UnixTime) -> Result<(), StoreError> {
        self.write("revoking a join token", |tx| {
            let n = tx
                .execute_cached(
                    "UPDATE join_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
                    params![id, now.0 as i64],
                )
                .map_err(StoreError::sql("revoking a join token"))?;
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
            tx.execute_cached(
                "UPDATE join_tokens SET used = used + 1 WHERE id = ?1",
                params![token_id],
            )
            .map_err(StoreError::sql(doing))?;
            tx.execute_cached(
                "INSERT INTO device_identities (device_id, board, serial, not_after, token_id, enrolled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id) DO UPDATE SET board = excluded.board,
                    serial = excluded.serial, not_after = excluded.not_after,
                    token_id = excluded.token_id, enrolled_at = excluded.enrolled_at",
                params![
                    identity.device_id,
                    identity.board,
                    identity.serial,
                    identity.not_after.0 as i64,
                    token_id,
                    now.0 as i64
                ],
            )
            .map_err(StoreError::sql(doing))?;
            Ok(Ok(()))
        })
    }

    fn identity(&self, device_id: &str) -> Result<Option<IdentityRecord>, StoreError> {
        identity_row(&self.lock(), device_id)
    }

    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError> {
        let doing = "listing device identities";
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT device_id, board, serial, not_after, token_id, enrolled_at, revoked_at
                 FROM device_identities ORDER BY device_id",
            )
            .map_err(StoreError::sql(doing))?;
        let rows = stmt
            .query_map([], identity_from)
            .map_err(StoreError::sql(doing))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sql(doing))
    }

    fn revoke_device(&self, device_id: &str, now: UnixTime) -> Result<(), StoreError> {
        self.write("revoking a device", |tx| {
            let n = tx
                .execute_cached(
                    "UPDATE device_identities SET revoked_at = COALESCE(revoked_at, ?2)
                     WHERE device_id = ?1",
                    params![device_id, now.0 as i64],
                )
                .map_err(StoreError::sql("revoking a device"))?;
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
                .query_row_cached(
                    "SELECT COALESCE(MAX(seq), 0) FROM device_logs WHERE device_id = ?1 AND kind = ?2",
                    params![device_id, kind_text],
                    |r| r.get(0),
                )
                .map_err(StoreError::sql(doing))?;
            let mut seq = last;
            for line in lines {
                seq += 1;
                tx.execute_cached(
                    "INSERT INTO device_logs (device_id, kind, seq, received_at, text)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![device_id, kind_text, seq, now.0 as i64, line],
                )
                .map_err(StoreError::sql(doing))?;
            }
            tx.execute_cached(
                "DELETE FROM device_logs WHERE device_id = ?1 AND kind = ?2 AND seq <= ?3",
                params![device_id, kind_text, seq - kind_limit(kind) as i64],
            )
            .map_err(StoreError::sql(doing))?;
            Ok(Ok(()))
        })
    }

    fn device_log(&self, device_id: &str, kind: LogKind) -> Result<Vec<LogEntry>, StoreError> {
        let doing = "reading a device log";
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, received_at, text FROM device_logs
                 WHERE device_id = ?1 AND kind = ?2 ORDER BY seq",
            )
            .map_err(StoreError::sql(doing))?;
        let rows = stmt
            .query_map(params![device_id, kind_name(kind)], |r| {
                Ok(LogEntry {
                    seq: r.get::<_, i64>(0)? as u64,
                    received_at: UnixTime(r.get::<_, i64>(1)? as u64),
                    text: r.get(2)?,
                })
            })
            .map_err(StoreError::sql(doing))?;
        rows.collect::<Result<_, _>>()
            .map_err(StoreError::sql(doing))
    }
}
