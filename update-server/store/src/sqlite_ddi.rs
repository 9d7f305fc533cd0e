//! [`DdiStore`] for [`SqliteStore`]: each method one immediate transaction.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use semver::Version;
use skerry_rollout::UnixTime;

use crate::ddi::{ActionState, DdiAction, DdiStore, DdiTarget};
use crate::sqlite::{damaged, labels_from, labels_to, parse_version, SqliteStore};
use crate::sqlite_cached::Cached;
use crate::StoreError;

fn target_where(
    conn: &Connection,
    filter: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<Option<DdiTarget>, StoreError> {
    let doing = "reading a DDI target";
    let row = conn
        .query_row_cached(
            &format!("SELECT device_id, board, channel, version FROM ddi_targets WHERE {filter}"),
            [arg],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::sql(doing))?;
    row.map(|(device, board, channel, version)| {
        Ok(DdiTarget {
            version: parse_version(&format!("DDI target {device}"), &version)?,
            device,
            board,
            channel,
        })
    })
    .transpose()
}

fn action_where(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<DdiAction>, StoreError> {
    let doing = "reading a DDI action";
    let row = conn
        .query_row_cached(
            &format!(
                "SELECT id, device_id, rollout_id, version, state, created_at FROM ddi_actions
                 WHERE {filter} ORDER BY id DESC LIMIT 1"
            ),
            args,
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::sql(doing))?;
    row.map(|(id, device, rollout_id, version, state, at)| {
        let what = format!("DDI action {id}");
        Ok(DdiAction {
            id: id as u64,
            version: parse_version(&what, &version)?,
            state: ActionState::parse(&state)
                .ok_or_else(|| damaged(&what, format!("state {state:?}")))?,
            device,
            rollout_id,
            created_at: UnixTime(at as u64),
        })
    })
    .transpose()
}

impl DdiStore for SqliteStore {
    fn put_ddi_target(
        &self,
        t: &DdiTarget,
        token_sha256: &[u8; 32],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write("adding a DDI target", |tx| {
            tx.execute_cached(
                "INSERT INTO ddi_targets (device_id, token_sha256, board, channel, version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (device_id) DO UPDATE SET token_sha256 = ?2, board = ?3, channel = ?4",
                params![t.device, &token_sha256[..], t.board, t.channel, t.version.to_string(), now.0 as i64],
            )
            .map_err(StoreError::sql("adding a DDI target"))?;
            Ok(())
        })
    }

    fn ddi_target_by_token(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<DdiTarget>, StoreError> {
        target_where(&self.lock(), "token_sha256 = ?1", &&token_sha256[..])
    }

    fn ddi_target(&self, device: &str) -> Result<Option<DdiTarget>, StoreError> {
        target_where(&self.lock(), "device_id = ?1", &device)
    }

    fn update_ddi_target(&self, t: &DdiTarget) -> Result<(), StoreError> {
        self.write("updating a DDI target", |tx| {
            let changed = tx
                .execute_cached(
                    "UPDATE ddi_targets SET board = ?2, channel = ?3, version = ?4 WHERE device_id = ?1",
                    params![t.device, t.board, t.channel, t.version.to_string()],
                )
                .map_err(StoreError::sql("updating a DDI target"))?;
            if changed == 0 {
                return Err(StoreError::NoSuchDevice { id: t.device.clone() });
            }
            Ok(())
        })
    }

    fn ddi_open_action(
        &self,
        device: &str,
        rollout_id: &str,
        version: &Version,
        now: UnixTime,
    ) -> Result<DdiAction, StoreError> {
        self.write("opening a DDI action", |tx| {
            let v = version.to_string();
            let filter = "device_id = ?1 AND rollout_id = ?2 AND version = ?3 AND state IN ('open', 'canceling')";
            if let Some(a) = action_where(tx, filter, &[&device, &rollout_id, &v])? {
                return Ok(a);
            }
            tx.execute_cached(
                "INSERT INTO ddi_actions (device_id, rollout_id, version, state, created_at)
                 VALUES (?1, ?2, ?3, 'open', ?4)",
                params![device, rollout_id, v, now.0 as i64],
            )
            .map_err(StoreError::sql("opening a DDI action"))?;
            let id = tx.last_insert_rowid();
            action_where(tx, "id = ?1", &[&id])?
                .ok_or_else(|| damaged("a new DDI action", "not found after insert"))
        })
    }

    fn ddi_pending_action(&self, device: &str) -> Result<Option<DdiAction>, StoreError> {
        action_where(
            &self.lock(),
            "device_id = ?1 AND state IN ('open', 'canceling')",
            &[&device],
        )
    }

    fn ddi_action(&self, device: &str, id: u64) -> Result<Option<DdiAction>, StoreError> {
        let id = id.min(i64::MAX as u64) as i64;
        action_where(&self.lock(), "device_id = ?1 AND id = ?2", &[&device, &id])
    }

    fn set_ddi_action_state(
        &self,
        device: &str,
        id: u64,
        state: ActionState,
    ) -> Result<(), StoreError> {
        self.write("changing a DDI action", |tx| {
            let id = id.min(i64::MAX as u64) as i64;
            tx.execute_cached(
                "UPDATE ddi_actions SET state = ?3 WHERE device_id = ?1 AND id = ?2",
                params![device, id, state.name()],
            )
            .map_err(StoreError::sql("changing a DDI action"))?;
            Ok(())
        })
    }

    fn set_ddi_attributes(
        &self,
        device: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.write("storing DDI attributes", |tx| {
            let changed = tx
                .execute_cached(
                    "UPDATE ddi_targets SET attributes = ?2 WHERE device_id = ?1",
                    params![device, labels_to(attributes)],
                )
                .map_err(StoreError::sql("storing DDI attributes"))?;
            if changed == 0 {
                return Err(StoreError::NoSuchDevice { id: device.into() });
            }
            Ok(())
        })
    }

    fn ddi_attributes(&self, device: &str) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let text: Option<Option<String>> = self
            .lock()
            .query_row_cached(
                "SELECT attributes FROM ddi_targets WHERE device_id = ?1",
                [device],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::sql("reading DDI attributes"))?;
        match text.flatten() {
            None => Ok(None),
            Some(t) => labels_from(&format!("the attributes of DDI target {device}"), &t).map(Some),
        }
    }
}
