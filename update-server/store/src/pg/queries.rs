//! [`FleetQueries`] for the PostgreSQL store: each query on one read-only snapshot.

use skerry_rollout::UnixTime;

use super::{get, PgStore};
use crate::queries::{
    health_state, DevicePage, DeviceSummary, FleetOverview, FleetQueries, DEVICE_PAGE_LIMIT,
};
use crate::StoreError;

impl FleetQueries for PgStore {
    fn device_page(&self, after: Option<&str>, limit: usize) -> Result<DevicePage, StoreError> {
        let doing = "listing devices";
        let limit = limit.clamp(1, DEVICE_PAGE_LIMIT);
        self.read(doing, |tx| {
            // One more than asked tells whether another page follows. `COLLATE "C"`
            // orders ids by bytes, as SQLite does, whatever the database's collation.
            let rows = tx
                .query(
                    "SELECT id, board, version, channel, health, last_seen, pin_version
                     FROM devices WHERE id > $1 COLLATE \"C\" ORDER BY id COLLATE \"C\" LIMIT $2",
                    &[&after.unwrap_or(""), &(limit as i64 + 1)],
                )
                .map_err(StoreError::pg(doing))?;
            let mut devices = rows
                .iter()
                .map(|r| {
                    Ok(DeviceSummary {
                        id: get(r, 0, doing)?,
                        board: get(r, 1, doing)?,
                        version: get(r, 2, doing)?,
                        channel: get(r, 3, doing)?,
                        health: get(r, 4, doing)?,
                        last_seen: UnixTime(get::<i64>(r, 5, doing)?.max(0) as u64),
                        pin: get(r, 6, doing)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let next_after = if devices.len() > limit {
                devices.truncate(limit);
                devices.last().map(|d| d.id.clone())
            } else {
                None
            };
            Ok(DevicePage {
                devices,
                next_after,
            })
        })
    }

    fn overview(&self) -> Result<FleetOverview, StoreError> {
        let doing = "counting the fleet";
        self.read(doing, |tx| {
            let mut count = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
                tx.query(sql, &[])
                    .map_err(StoreError::pg(doing))?
                    .iter()
                    .map(|r| Ok((get(r, 0, doing)?, get::<i64>(r, 1, doing)? as u64)))
                    .collect()
            };
            let versions = count(
                "SELECT version, COUNT(*) FROM devices GROUP BY version
                 ORDER BY COUNT(*) DESC, version COLLATE \"C\"",
            )?;
            let mut health: Vec<(String, u64)> = Vec::new();
            for (text, n) in count("SELECT health, COUNT(*) FROM devices GROUP BY health")? {
                let state = health_state(&text).to_string();
                match health.iter_mut().find(|(s, _)| *s == state) {
                    Some((_, total)) => *total += n,
                    None => health.push((state, n)),
                }
            }
            health.sort();
            Ok(FleetOverview {
                devices: versions.iter().map(|(_, n)| n).sum(),
                versions,
                health,
            })
        })
    }
}
