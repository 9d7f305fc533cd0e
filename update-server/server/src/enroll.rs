//! The gRPC `EnrollmentService`: a join token and a CSR in, the device's certificate
//! and both CAs out. The token's use is taken in the same store transaction that
//! records the identity, so a token of N uses enrolls exactly N devices.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use skerry_fleet_store::{DeviceIdentity, EnrollRefusal, EnrollmentStore};
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::enrollment_service_server::EnrollmentService;
use skerry_rollout::UnixTime;
use tonic::{Request, Response, Status};

use crate::checkin::Clock;
use crate::join_token::JoinToken;
use crate::pki::Pki;
use crate::validate::MAX_DEVICE_ID;

/// The largest `Enroll` request decoded.
pub const MAX_ENROLL_BYTES: usize = 16 * 1024;
/// The longest board name.
pub const MAX_BOARD: usize = 64;

/// The enrollment service over a store and the PKI.
pub struct EnrollApi<S> {
    store: Arc<S>,
    pki: Arc<Pki>,
    clock: Clock,
}

impl<S> std::fmt::Debug for EnrollApi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollApi").finish_non_exhaustive()
    }
}

impl<S> EnrollApi<S> {
    pub fn new(store: Arc<S>, pki: Arc<Pki>, clock: Clock) -> Self {
        Self { store, pki, clock }
    }
}

/// A device id or board: letters, digits and `._-`, 1 to `max` bytes.
pub fn check_name(field: &str, value: &str, max: usize) -> Result<(), Status> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "{field}: must be 1 to {max} bytes of letters, digits and \"._-\""
        )))
    }
}

fn system_time(t: UnixTime) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(t.0)
}

fn unix(t: SystemTime) -> UnixTime {
    UnixTime(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
}

#[tonic::async_trait]
impl<S: EnrollmentStore> EnrollmentService for EnrollApi<S> {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let req = request.into_inner();
        check_name("device_id", &req.device_id, MAX_DEVICE_ID)?;
        check_name("board", &req.board, MAX_BOARD)?;
        let token = JoinToken::parse(&req.token)
            .map_err(|e| Status::unauthenticated(format!("token: {e}")))?;
        let now = (self.clock)();
        let issued = self
            .pki
            .issue_device(&req.device_id, &req.csr_der, system_time(now))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let identity = DeviceIdentity {
            device_id: req.device_id.clone(),
            board: req.board,
            serial: issued.serial.clone(),
            not_after: unix(issued.not_after),
        };
        let store = Arc::clone(&self.store);
        let secret = token.secret_sha256();
        let outcome =
            tokio::task::spawn_blocking(move || store.enroll(&token.id, &secret, &identity, now))
                .await
                .map_err(|e| Status::internal(format!("enrollment task: {e}")))?
                .map_err(|e| Status::internal(format!("store: {e}")))?;
        match outcome {
            Ok(()) => Ok(Response::new(pb::EnrollResponse {
                certificate_der: issued.der,
                device_ca_der: self.pki.device_ca_der().to_vec(),
                server_ca_der: self.pki.server_ca_der().to_vec(),
                not_after: Some(prost_types::Timestamp {
                    seconds: unix(issued.not_after).0 as i64,
                    nanos: 0,
                }),
            })),
            Err(EnrollRefusal::Token(refusal)) => Err(Status::unauthenticated(refusal.to_string())),
            Err(EnrollRefusal::DeviceRevoked) => Err(Status::permission_denied(format!(
                "device {} is revoked",
                req.device_id
            ))),
        }
    }
}
