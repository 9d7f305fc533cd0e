//! [`FleetQueries`] for the SQLite store.

use skerry_rollout::UnixTime;

use crate::queries::{
    health_state, DevicePage, DeviceSummary, FleetOverview, FleetQueries, DEVICE_PAGE_LIMIT,
};
use crate::{SqliteStore, StoreError};

impl FleetQueries for SqliteStore {
    fn device_page(&self, after: Option<&str>, limit: usize) -> Result<DevicePage, StoreError> {
        let doing = "listing devices";
        let limit = limit.clamp(1, DEVICE_PAGE_LIMIT);
        let conn = self.lock();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, board, version, channel, health, last_seen, pin_version
                 FROM devices WHERE id > ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(StoreError::sql(doing))?;
        // One more than asked tells whether another page follows.
        let rows = stmt
            .query_map(
                rusqlite::params![after.unwrap_or(""), limit as i64 + 1],
                |r| {
                    Ok(DeviceSummary {
                        id: r.get(0)?,
                        board: r.get(1)?,
                        version: r.get(2)?,
                        channel: r.get(3)?,
                        health: r.get(4)?,
                        last_seen: UnixTime(r.get::<_, i64>(5)?.max(0) as u64),
                        pin: r.get(6)?,
                    })
                },
            )
            .map_err(StoreError::sql(doing))?;
        let mut devices: Vec<DeviceSummary> = rows
            .collect::<Result<_, _>>()
            .map_err(StoreError::sql(doing))?;
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
    }

    fn overview(&self) -> Result<FleetOverview, StoreError> {
        let doing = "counting the fleet";
        let conn = self.lock();
        let count = |sql: &str| -> Result<Vec<(String, u64)>, StoreError> {
            let mut stmt = conn.prepare_cached(sql).map_err(StoreError::sql(doing))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(StoreError::sql(doing))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sql(doing))
        };
        let versions = count(
            "SELECT version, COUNT(*) FROM devices GROUP BY version ORDER BY COUNT(*) DESC, version",
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
    }
}
