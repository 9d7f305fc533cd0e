//! Who may check in, per request (`docs/fleet-enrollment.md` §3).
//!
//! - **TLS listener**: a client certificate is required; rustls already checked it
//!   chains to the device CA and is within its dates. Its `urn:skerry:device:` identity
//!   must equal `CheckInRequest.device_id` (else `PERMISSION_DENIED`), the store must
//!   hold it as that device's current certificate (else `UNAUTHENTICATED`: not issued
//!   here, or superseded) and the device must not be revoked (`PERMISSION_DENIED`).
//!   The store is read at every call, so a revocation takes effect at once.
//! - **Plaintext listener**: a device that has an identity is refused (it must use its
//!   certificate); with a TLS listener running, every device is refused. With
//!   `--allow-plaintext-devices` (tests, the demo) plaintext check-ins are taken as
//!   before: the device is who it says it is.

use std::sync::Arc;

use skerry_fleet_store::{Admission, AdmissionRefusal, EnrollmentStore, FleetStore};
use skerry_proto::fleet::v1 as pb;
use skerry_proto::fleet::v1::fleet_service_server::FleetService;
use tonic::{Request, Response, Status};

use crate::checkin::FleetApi;
use crate::timestamp::chain;

/// Which listener a request arrived on; the edge puts it in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Plaintext,
    Tls,
}

/// What plaintext check-ins may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaintextPolicy {
    /// A TLS listener runs: devices belong there.
    pub tls_listener: bool,
    /// `--allow-plaintext-devices`: take plaintext check-ins unauthenticated.
    pub allow_devices: bool,
}

/// The device a verified client certificate names, and its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedDevice {
    pub device_id: String,
    pub serial: String,
}

/// Why a client certificate gives no device identity, as the HTTP routes also need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertRefusal {
    /// Not issued by this server's device CA for a device, or superseded.
    Unauthenticated(String),
    /// Revoked.
    Forbidden(String),
}

impl From<CertRefusal> for Status {
    fn from(r: CertRefusal) -> Self {
        match r {
            CertRefusal::Unauthenticated(m) => Status::unauthenticated(m),
            CertRefusal::Forbidden(m) => Status::permission_denied(m),
        }
    }
}

fn store_failed(e: &skerry_fleet_store::StoreError) -> Status {
    tracing::error!(error = %chain(e), "reading a device identity failed");
    Status::unavailable("the server could not read the device's identity; retry later")
}

/// The device the leaf certificate names, checked against the store: it must be the
/// device's current certificate and the device not revoked. Blocking (reads the store).
pub fn certified_device<E: EnrollmentStore + ?Sized>(
    store: &E,
    leaf_der: &[u8],
) -> Result<Result<CertifiedDevice, CertRefusal>, skerry_fleet_store::StoreError> {
    let Some((device_id, serial)) = crate::pki::device_of(leaf_der) else {
        return Ok(Err(CertRefusal::Unauthenticated(
            "the client certificate names no device (no urn:skerry:device: name)".into(),
        )));
    };
    let record = store.identity(&device_id)?;
    let admission = Admission::Certificate {
        serial: serial.clone(),
    };
    if let Err(refusal) = admission.admits(record.as_ref()) {
        return Ok(Err(refusal_words(&admission, &device_id, refusal)));
    }
    Ok(Ok(CertifiedDevice { device_id, serial }))
}

/// The fleet service behind the per-request device check.
pub struct GatedFleet<S: FleetStore + EnrollmentStore> {
    inner: FleetApi<S>,
    store: Arc<S>,
    plaintext: PlaintextPolicy,
}

impl<S: FleetStore + EnrollmentStore> std::fmt::Debug for GatedFleet<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedFleet")
            .field("plaintext", &self.plaintext)
            .finish_non_exhaustive()
    }
}

impl<S: FleetStore + EnrollmentStore> GatedFleet<S> {
    pub fn new(inner: FleetApi<S>, store: Arc<S>, plaintext: PlaintextPolicy) -> Self {
        Self {
            inner,
            store,
            plaintext,
        }
    }

    /// Who the device must be, by the listener the request came on; checked by the
    /// store in the check-in's own transaction. Refuses at once what needs no lookup.
    async fn admission(&self, request: &Request<pb::CheckInRequest>) -> Result<Admission, Status> {
        let arrival = request
            .extensions()
            .get::<Arrival>()
            .copied()
            .unwrap_or(Arrival::Plaintext);
        let claimed = &request.get_ref().device_id;
        match arrival {
            Arrival::Tls => {
                let certs = request.peer_certs();
                let Some(leaf) = certs.as_ref().and_then(|c| c.first()) else {
                    return Err(Status::unauthenticated(
                        "no client certificate: enroll first (EnrollmentService/Enroll), then check in with the issued certificate",
                    ));
                };
                let Some((device_id, serial)) = crate::pki::device_of(leaf) else {
                    return Err(Status::unauthenticated(
                        "the client certificate names no device (no urn:skerry:device: name)",
                    ));
                };
                if device_id != *claimed {
                    return Err(Status::permission_denied(format!(
                        "the client certificate is device {device_id}'s, the check-in says device_id {claimed:?}"
                    )));
                }
                Ok(Admission::Certificate { serial })
            }
            Arrival::Plaintext if self.plaintext.allow_devices => Ok(Admission::Open),
            Arrival::Plaintext if !self.plaintext.tls_listener => Ok(Admission::NotEnrolled),
            Arrival::Plaintext => {
                let store = Arc::clone(&self.store);
                let claimed = claimed.clone();
                let known = tokio::task::spawn_blocking(move || store.identity(&claimed))
                    .await
                    .map_err(|_| Status::internal("the identity check failed"))?
                    .map_err(|e| store_failed(&e))?;
                if let Some(record) = known {
                    return Err(refused(
                        &Admission::NotEnrolled,
                        &record.identity.device_id,
                        AdmissionRefusal::Enrolled,
                    ));
                }
                Err(Status::unauthenticated(
                    "this server takes device check-ins over TLS (its --tls-listen port); plaintext ones only with --allow-plaintext-devices",
                ))
            }
        }
    }
}

/// The answer to a check-in the store did not admit.
pub fn refused(admission: &Admission, device_id: &str, refusal: AdmissionRefusal) -> Status {
    refusal_words(admission, device_id, refusal).into()
}

fn refusal_words(admission: &Admission, device_id: &str, refusal: AdmissionRefusal) -> CertRefusal {
    use CertRefusal::{Forbidden, Unauthenticated};
    match refusal {
        AdmissionRefusal::Enrolled => Unauthenticated(format!(
            "device {device_id} is enrolled: it checks in over mutual TLS only"
        )),
        AdmissionRefusal::NotIssued => Unauthenticated(format!(
            "the client certificate for {device_id} was not issued by this server"
        )),
        AdmissionRefusal::Revoked => Forbidden(format!("device {device_id} is revoked")),
        AdmissionRefusal::Superseded => {
            let serial = match admission {
                Admission::Certificate { serial } => serial.as_str(),
                _ => "?",
            };
            Unauthenticated(format!(
                "the client certificate for {device_id} (serial {serial}) was superseded by a newer enrollment"
            ))
        }
    }
}

#[tonic::async_trait]
impl<S: FleetStore + EnrollmentStore> FleetService for GatedFleet<S> {
    async fn check_in(
        &self,
        request: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        let admission = self.admission(&request).await?;
        self.inner.check_in_as(request, admission).await
    }
}
