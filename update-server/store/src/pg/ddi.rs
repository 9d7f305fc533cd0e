//! [`DdiStore`] for the PostgreSQL store: each write one SERIALIZABLE transaction
//! (retried on conflict), so one target gets one open action however many instances
//! it polls.

use std::collections::BTreeMap;

use postgres::types::ToSql;
use postgres::GenericClient;
use semver::Version;
use skerry_rollout::UnixTime;

use super::{get, PgStore};
use crate::ddi::{ActionState, DdiAction, DdiStore, DdiTarget};
use crate::sqlite::{damaged, labels_from, labels_to, parse_version};
use crate::StoreError;

fn target_where(
    tx: &mut impl GenericClient,
    filter: &str,
    arg: &(dyn ToSql + Sync),
) -> Result<Option<DdiTarget>, StoreError> {
    let d = "reading a DDI target";
    let Some(r) = tx
        .query_opt(
            &format!("SELECT device_id, board, channel, version FROM ddi_targets WHERE {filter}"),
            &[arg],
        )
        .map_err(StoreError::pg(d))?
    else {
        return Ok(None);
    };
    let device: String = get(&r, 0, d)?;
    let version: String = get(&r, 3, d)?;
    Ok(Some(DdiTarget {
        version: parse_version(&format!("DDI target {device}"), &version)?,
        board: get(&r, 1, d)?,
        channel: get(&r, 2, d)?,
        device,
    }))
}

fn action_where(
    tx: &mut impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Option<DdiAction>, StoreError> {
    let d = "reading a DDI action";
    let Some(r) = tx
        .query_opt(
            &format!(
                "SELECT id, device_id, rollout_id, version, state, created_at FROM ddi_actions
                 WHERE {filter} ORDER BY id DESC LIMIT 1"
            ),
            args,
        )
        .map_err(StoreError::pg(d))?
    else {
        return Ok(None);
    };
    let id: i64 = get(&r, 0, d)?;
    let what = format!("DDI action {id}");
    let version: String = get(&r, 3, d)?;
    let state: String = get(&r, 4, d)?;
    Ok(Some(DdiAction {
        id: id as u64,
        version: parse_version(&what, &version)?,
        state: ActionState::parse(&state)
            .ok_or_else(|| damaged(&what, format!("state {state:?}")))?,
        device: get(&r, 1, d)?,
        rollout_id: get(&r, 2, d)?,
        created_at: UnixTime(get::<i64>(&r, 5, d)? as u64),
    }))
}

impl DdiStore for PgStore {
    fn put_ddi_target(
        &self,
        t: &DdiTarget,
        token_sha256: &[u8; 32],
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let doing = "adding a DDI target";
        self.write(doing, |tx| {
            tx.execute(
                "INSERT INTO ddi_targets (device_id, token_sha256, board, channel, version, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (device_id) DO UPDATE SET token_sha256 = $2, board = $3, channel = $4",
                &[
                    &t.device,
                    &&token_sha256[..],
                    &t.board,
                    &t.channel,
                    &t.version.to_string(),
                    &(now.0 as i64),
                ],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(())
        })
    }

    fn ddi_target_by_token(
        &self,
        token_sha256: &[u8; 32],
    ) -> Result<Option<DdiTarget>, StoreError> {
        self.read("reading a DDI target", |tx| {
            target_where(tx, "token_sha256 = $1", &&token_sha256[..])
        })
    }

    fn ddi_target(&self, device: &str) -> Result<Option<DdiTarget>, StoreError> {
        self.read("reading a DDI target", |tx| {
            target_where(tx, "device_id = $1", &device)
        })
    }

    fn update_ddi_target(&self, t: &DdiTarget) -> Result<(), StoreError> {
        let doing = "updating a DDI target";
        self.write(doing, |tx| {
            let changed = tx
                .execute(
                    "UPDATE ddi_targets SET board = $2, channel = $3, version = $4 WHERE device_id = $1",
                    &[&t.device, &t.board, &t.channel, &t.version.to_string()],
                )
                .map_err(StoreError::pg(doing))?;
            if changed == 0 {
                return Err(StoreError::NoSuchDevice {
                    id: t.device.clone(),
                });
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
        let doing = "opening a DDI action";
        self.write(doing, |tx| {
            let v = version.to_string();
            let filter = "device_id = $1 AND rollout_id = $2 AND version = $3 AND state IN ('open', 'canceling')";
            if let Some(a) = action_where(tx, filter, &[&device, &rollout_id, &v])? {
                return Ok(a);
            }
            let id: i64 = tx
                .query_one(
                    "INSERT INTO ddi_actions (device_id, rollout_id, version, state, created_at)
                     VALUES ($1, $2, $3, 'open', $4) RETURNING id",
                    &[&device, &rollout_id, &v, &(now.0 as i64)],
                )
                .map_err(StoreError::pg(doing))?
                .get(0);
            action_where(tx, "id = $1", &[&id])?
                .ok_or_else(|| damaged("a new DDI action", "not found after insert"))
        })
    }

    fn ddi_pending_action(&self, device: &str) -> Result<Option<DdiAction>, StoreError> {
        self.read("reading a DDI action", |tx| {
            action_where(
                tx,
                "device_id = $1 AND state IN ('open', 'canceling')",
                &[&device],
            )
        })
    }

    fn ddi_action(&self, device: &str, id: u64) -> Result<Option<DdiAction>, StoreError> {
        let id = id.min(i64::MAX as u64) as i64;
        self.read("reading a DDI action", |tx| {
            action_where(tx, "device_id = $1 AND id = $2", &[&device, &id])
        })
    }

    fn set_ddi_action_state(
        &self,
        device: &str,
        id: u64,
        state: ActionState,
    ) -> Result<(), StoreError> {
        let doing = "changing a DDI action";
        let id = id.min(i64::MAX as u64) as i64;
        self.write(doing, |tx| {
            tx.execute(
                "UPDATE ddi_actions SET state = $3 WHERE device_id = $1 AND id = $2",
                &[&device, &id, &state.name()],
            )
            .map_err(StoreError::pg(doing))?;
            Ok(())
        })
    }

    fn set_ddi_attributes(
        &self,
        device: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let doing = "storing DDI attributes";
        self.write(doing, |tx| {
            let changed = tx
                .execute(
                    "UPDATE ddi_targets SET attributes = $2 WHERE device_id = $1",
                    &[&device, &labels_to(attributes)],
                )
                .map_err(StoreError::pg(doing))?;
            if changed == 0 {
                return Err(StoreError::NoSuchDevice { id: device.into() });
            }
            Ok(())
        })
    }

    fn ddi_attributes(&self, device: &str) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        let doing = "reading DDI attributes";
        let text: Option<Option<String>> = self.read(doing, |tx| {
            tx.query_opt(
                "SELECT attributes FROM ddi_targets WHERE device_id = $1",
                &[&device],
            )
            .map_err(StoreError::pg(doing))?
            .map(|r| get(&r, 0, doing))
            .transpose()
        })?;
        match text.flatten() {
            None => Ok(None),
            Some(t) => labels_from(&format!("the attributes of DDI target {device}"), &t).map(Some),
        }
    }
}
