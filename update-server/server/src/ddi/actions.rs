//! A target's actions: the poll, recorded as a check-in and decided as for a gRPC
//! device, that opens or cancels one, and the feedback that moves it on.

use std::collections::BTreeMap;
use std::time::Duration;

use http::{Response, StatusCode};
use serde_json::json;
use skerry_fleet_store::{
    ActionState, Admission, CheckIn, DdiAction, DdiTarget, HealthReport, HealthState, StoreError,
    UpgradeReport,
};
use skerry_rollout::Decision;
use tonic::body::Body;

use super::deployment::artifact;
use super::{feedback, json_response, text, DdiApi};

fn hms(d: Duration) -> String {
    let s = d.as_secs().min(99 * 3600);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl DdiApi {
    /// Records a poll as a check-in and decides, as for a gRPC device.
    fn check_in(
        &self,
        target: &DdiTarget,
        reports: Vec<UpgradeReport>,
    ) -> Result<Option<(String, semver::Version)>, StoreError> {
        let now = (self.clock)();
        let check_in = CheckIn {
            device: target.device.clone(),
            board: target.board.clone(),
            version: target.version.clone(),
            channel: target.channel.clone(),
            labels: BTreeMap::new(),
            slots: vec![],
            health: HealthReport {
                state: HealthState::Healthy,
                failing: vec![],
            },
            reports,
            // Its target or gateway token was checked already.
            admission: Admission::Open,
        };
        let record = self.store.check_in(&check_in, now)?;
        let decision =
            crate::checkin::decide_after(&*self.store, &self.catalog, &check_in, &record, now)?;
        Ok(match decision {
            Decision::Offer(offer) => offer.rollout_id.map(|id| (id, offer.release.version)),
            Decision::Hold(_) => None,
        })
    }

    pub(super) fn poll(
        &self,
        target: &DdiTarget,
        base: &str,
    ) -> Result<Response<Body>, StoreError> {
        let offer = self.check_in(target, vec![])?;
        let mut links = serde_json::Map::new();
        let pending = self.store.ddi_pending_action(&target.device)?;
        let aborted = |a: &DdiAction| -> Result<bool, StoreError> {
            Ok(self.store.rollouts()?.iter().any(|r| {
                r.rollout.id == a.rollout_id
                    && r.rollout.state == skerry_rollout::RolloutState::Aborted
            }))
        };
        match pending {
            Some(a) if a.state == ActionState::Canceling || aborted(&a)? => {
                self.store
                    .set_ddi_action_state(&target.device, a.id, ActionState::Canceling)?;
                links.insert(
                    "cancelAction".into(),
                    json!({"href": format!("{base}/cancelAction/{}", a.id)}),
                );
            }
            _ => {
                if let Some((rollout, version)) = offer {
                    if artifact(&self.swu_dir, &target.board, &version.to_string()).is_ok() {
                        let now = (self.clock)();
                        let a =
                            self.store
                                .ddi_open_action(&target.device, &rollout, &version, now)?;
                        links.insert(
                            "deploymentBase".into(),
                            json!({"href": format!("{base}/deploymentBase/{}", a.id)}),
                        );
                    } else {
                        tracing::warn!(
                            device = %target.device,
                            board = %target.board,
                            %version,
                            swu_dir = %self.swu_dir.display(),
                            "no .swu of the release for the board; the DDI target is not offered it"
                        );
                    }
                }
            }
        }
        if self.store.ddi_attributes(&target.device)?.is_none() {
            links.insert(
                "configData".into(),
                json!({"href": format!("{base}/configData")}),
            );
        }
        Ok(json_response(&json!({
            "config": {"polling": {"sleep": hms(self.poll_interval)}},
            "_links": links,
        })))
    }

    pub(super) fn feedback(
        &self,
        target: &DdiTarget,
        id: u64,
        body: &[u8],
        cancel: bool,
    ) -> Result<Response<Body>, StoreError> {
        let Some(a) = self.store.ddi_action(&target.device, id)? else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no action {id} for this target"),
            ));
        };
        let progress = match feedback::parse(body) {
            Ok(p) if cancel => p.for_cancel(),
            Ok(p) => p,
            Err(e) => return Ok(text(StatusCode::BAD_REQUEST, format!("feedback: {e}"))),
        };
        if !matches!(a.state, ActionState::Open | ActionState::Canceling) {
            return Ok(text(
                StatusCode::GONE,
                format!("action {id} is already {}", a.state.name()),
            ));
        }
        let now = (self.clock)();
        let acked = self
            .store
            .device(&target.device)?
            .map_or(0, |d| d.acknowledged);
        let reports = progress
            .steps()
            .into_iter()
            .enumerate()
            .map(|(i, (step, reason))| UpgradeReport {
                sequence: acked + 1 + i as u64,
                target: a.version.clone(),
                step,
                reason,
                at: now,
            })
            .collect();
        let mut next = target.clone();
        let state = match &progress {
            feedback::Progress::Succeeded => {
                next.version = a.version.clone();
                Some(ActionState::Succeeded)
            }
            feedback::Progress::Failed { .. } => Some(ActionState::Failed),
            feedback::Progress::Canceled if a.state == ActionState::Canceling => {
                Some(ActionState::Canceled)
            }
            _ => None,
        };
        // A success is checked in at the new version, so the device record moves on too.
        self.check_in(&next, reports)?;
        if let Some(state) = state {
            self.store.set_ddi_action_state(&target.device, id, state)?;
        }
        if next.version != target.version {
            self.store.update_ddi_target(&next)?;
        }
        Ok(text(StatusCode::OK, ""))
    }
}
