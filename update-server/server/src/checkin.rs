//! The gRPC fleet service: a check-in is checked ([`crate::validate`]), stored, and
//! answered by the pure rollout decision ([`skerry_rollout::decide`]); an automatic
//! pause the decision calls for, and the offer made, are recorded.

use std::sync::Arc;
use std::time::Duration;

use skerry_fleet_store::{Admission, DecisionInputs, FleetStore, StoreError};
use skerry_proto::fleet::v1 as pb;
use skerry_rollout::{decide, Candidate, Decision, Fleet, Hold, UnixTime, Verdict};
use tonic::{Request, Response, Status};

use crate::releases::ReleaseCatalog;
use crate::timestamp::chain;
use crate::validate;

/// The wall clock, passed in so tests can set the time.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

/// The fleet API over one store.
pub struct FleetApi<S: FleetStore> {
    store: Arc<S>,
    catalog: Arc<ReleaseCatalog>,
    clock: Clock,
    poll_interval: Duration,
}

impl<S: FleetStore> std::fmt::Debug for FleetApi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetApi")
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<S: FleetStore> FleetApi<S> {
    pub fn new(
        store: Arc<S>,
        catalog: Arc<ReleaseCatalog>,
        clock: Clock,
        poll_interval: Duration,
    ) -> Self {
        Self {
            store,
            catalog,
            clock,
            poll_interval,
        }
    }
}

fn internal(e: &StoreError) -> Status {
    if let StoreError::Busy { .. } = e {
        tracing::warn!(error = %e, "check-in refused: the store is busy");
        return Status::unavailable(e.to_string());
    }
    tracing::error!(error = %chain(e), "check-in not stored");
    Status::internal("the server could not store the check-in; retry later")
}

/// The answer to a stored check-in.
fn response(record: &skerry_fleet_store::CheckInRecord, decision: Decision) -> pb::CheckInResponse {
    let mut response = pb::CheckInResponse {
        acknowledged_sequence: record.acknowledged,
        ..Default::default()
    };
    match decision {
        Decision::Offer(offer) => {
            response.offer = Some(pb::Offer {
                board: offer.release.board,
                version: offer.release.version.to_string(),
                channel: offer.release.channel,
                rollout_id: offer.rollout_id.unwrap_or_default(),
                forced: offer.forced,
            });
        }
        Decision::Hold(hold) => response.hold = Some(hold_message(hold)),
    }
    response
}

/// The rollout decision for a check-in just stored, shared by gRPC and hawkBit DDI
/// devices: records the automatic pause it asks for and the offer it makes. Blocking.
pub(crate) fn decide_after<S: FleetStore + ?Sized>(
    store: &S,
    catalog: &ReleaseCatalog,
    check_in: &skerry_fleet_store::CheckIn,
    record: &skerry_fleet_store::CheckInRecord,
    now: UnixTime,
) -> Result<Decision, StoreError> {
    let read;
    let inputs = match &record.inputs {
        Some(inputs) => inputs,
        None => {
            read = read_inputs(store, check_in)?;
            &read
        }
    };
    let verdict = verdict(catalog, record, inputs, now);
    record_verdict(store, check_in, &verdict, now)?;
    Ok(verdict.decision)
}

fn read_inputs<S: FleetStore + ?Sized>(
    store: &S,
    check_in: &skerry_fleet_store::CheckIn,
) -> Result<DecisionInputs, StoreError> {
    Ok(DecisionInputs {
        rollouts: store.rollouts_for(&check_in.board, &check_in.channel)?,
        windows: store.windows()?,
    })
}

/// The pure decision over what the store read.
fn verdict(
    catalog: &ReleaseCatalog,
    record: &skerry_fleet_store::CheckInRecord,
    inputs: &DecisionInputs,
    now: UnixTime,
) -> Verdict {
    let releases = catalog.releases();
    let candidates: Vec<Candidate<'_>> = inputs
        .rollouts
        .iter()
        .map(|r| Candidate {
            rollout: &r.rollout,
            stats: &r.stats,
        })
        .collect();
    decide(
        Fleet {
            releases: &releases,
            windows: &inputs.windows,
        },
        &record.facts,
        &candidates,
        now,
    )
}

/// Whether the verdict asks the store for a write (a pause, an offer to remember).
fn writes(verdict: &Verdict) -> bool {
    verdict.pause.is_some()
        || matches!(&verdict.decision, Decision::Offer(o) if o.rollout_id.is_some())
}

fn record_verdict<S: FleetStore + ?Sized>(
    store: &S,
    check_in: &skerry_fleet_store::CheckIn,
    verdict: &Verdict,
    now: UnixTime,
) -> Result<(), StoreError> {
    if let Some((id, reason)) = &verdict.pause {
        store.pause_if_active(id, reason, now)?;
        tracing::warn!(rollout = %id, %reason, "rollout paused automatically");
    }
    if let Decision::Offer(offer) = &verdict.decision {
        if let Some(id) = &offer.rollout_id {
            store.record_offer(id, &check_in.device, offer.wave, now)?;
        }
    }
    Ok(())
}

/// Blocking work after the check-in was stored: reading the decision's inputs when
/// the store did not, and the writes the verdict asks for.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| Status::internal("the check-in task failed"))?
        .map_err(|e| internal(&e))
}

fn hold_message(hold: Hold) -> pb::Hold {
    use pb::HoldReason as R;
    let (reason, rollout_id, detail) = match hold {
        Hold::UpToDate => (R::UpToDate, None, "no newer release is rolling out in this channel".to_string()),
        Hold::Pinned { version } => (R::Pinned, None, format!("pinned to {version} by an operator")),
        Hold::PinUnavailable { version } => (
            R::PinUnavailable,
            None,
            format!("pinned to {version}, which the repository does not hold for this board and channel"),
        ),
        Hold::Paused { rollout_id, reason } => (R::Paused, Some(rollout_id), reason.to_string()),
        Hold::Aborted { rollout_id } => (R::Aborted, Some(rollout_id), "the rollout was aborted".into()),
        Hold::RolledBack { rollout_id, version } => (
            R::RolledBack,
            rollout_id,
            format!("this device rolled back from {version}; it is offered again only if forced"),
        ),
        Hold::WaveNotOpen { rollout_id, wave, opens_at } => {
            let detail = match (wave, opens_at) {
                (Some(w), Some(at)) => format!("this device is in wave {}, which opens at {}", w + 1, humantime::format_rfc3339(at.to_system())),
                _ => "no wave of this rollout includes this device".into(),
            };
            (R::WaveNotOpen, Some(rollout_id), detail)
        }
        Hold::OutsideWindow { rollout_id } => (R::OutsideWindow, rollout_id, "outside this device's maintenance window".into()),
    };
    pb::Hold {
        reason: reason as i32,
        detail,
        rollout_id: rollout_id.unwrap_or_default(),
    }
}

impl<S: FleetStore> FleetApi<S> {
    /// A check-in taken if its device is what `admission` asks (the store checks it in
    /// the check-in's transaction).
    pub(crate) async fn check_in_as(
        &self,
        request: Request<pb::CheckInRequest>,
        admission: Admission,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let now = (self.clock)();
        let mut check_in = validate::check_in(request.get_ref(), now)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        check_in.admission = admission;
        let started = std::time::Instant::now();
        let stored = Arc::clone(&self.store)
            .check_in_async(check_in.clone(), now)
            .await;
        // A device refused admission is not a store failure.
        if !matches!(stored, Err(StoreError::NotAdmitted { .. })) {
            crate::metrics::count_check_in(&check_in, started.elapsed(), stored.is_ok());
        }
        let record = match stored {
            Ok(record) => record,
            Err(StoreError::NotAdmitted { device, refusal }) => {
                return Err(crate::device_gate::refused(
                    &check_in.admission,
                    &device,
                    refusal,
                ))
            }
            Err(e) => return Err(internal(&e)),
        };
        let inputs = match &record.inputs {
            Some(inputs) => Arc::clone(inputs),
            None => {
                let (store, c) = (Arc::clone(&self.store), check_in.clone());
                Arc::new(blocking(move || read_inputs(&*store, &c)).await?)
            }
        };
        let verdict = verdict(&self.catalog, &record, &inputs, now);
        if writes(&verdict) {
            let store = Arc::clone(&self.store);
            let verdict = verdict.clone();
            blocking(move || record_verdict(&*store, &check_in, &verdict, now)).await?;
        }
        let mut response = response(&record, verdict.decision);
        response.poll_interval = Some(prost_types::Duration {
            seconds: self.poll_interval.as_secs() as i64,
            nanos: 0,
        });
        Ok(Response::new(response))
    }
}

#[tonic::async_trait]
impl<S: FleetStore> pb::fleet_service_server::FleetService for FleetApi<S> {
    /// Ungated: the device is who it says (tests; the server mounts [`GatedFleet`]).
    ///
    /// [`GatedFleet`]: crate::device_gate::GatedFleet
    async fn check_in(
        &self,
        request: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        self.check_in_as(request, Admission::Open).await
    }
}
