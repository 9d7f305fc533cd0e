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

use skerry_fleet_store::{EnrollmentStore, FleetStore};
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
    let Some(record) = store.identity(&device_id)? else {
        return Ok(Err(CertRefusal::Unauthenticated(format!(
            "the client certificate for {device_id} was not issued by this server"
        ))));
    };
    if record.revoked_at.is_some() {
        return Ok(Err(CertRefusal::Forbidden(format!(
            "device {device_id} is revoked"
        ))));
    }
    if record.identity.serial != serial {
        return Ok(Err(CertRefusal::Unauthenticated(format!(
            "the client certificate for {device_id} (serial {serial}) was superseded by a newer enrollment"
        ))));
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

    async fn admit(&self, request: &Request<pb::CheckInRequest>) -> Result<(), Status> {
        let arrival = request
            .extensions()
            .get::<Arrival>()
            .copied()
            .unwrap_or(Arrival::Plaintext);
        let claimed = request.get_ref().device_id.clone();
        let store = Arc::clone(&self.store);
        match arrival {
            Arrival::Tls => {
                let certs = request.peer_certs();
                let Some(leaf) = certs.as_ref().and_then(|c| c.first()).cloned() else {
                    return Err(Status::unauthenticated(
                        "no client certificate: enroll first (EnrollmentService/Enroll), then check in with the issued certificate",
                    ));
                };
                let device = tokio::task::spawn_blocking(move || certified_device(&*store, &leaf))
                    .await
                    .map_err(|_| Status::internal("the identity check failed"))?
                    .map_err(|e| store_failed(&e))??;
                if device.device_id != claimed {
                    return Err(Status::permission_denied(format!(
                        "the client certificate is device {}'s, the check-in says device_id {claimed:?}",
                        device.device_id
                    )));
                }
                Ok(())
            }
            Arrival::Plaintext if self.plaintext.allow_devices => Ok(()),
            Arrival::Plaintext => {
                let tls = self.plaintext.tls_listener;
                let known = tokio::task::spawn_blocking(move || store.identity(&claimed))
                    .await
                    .map_err(|_| Status::internal("the identity check failed"))?
                    .map_err(|e| store_failed(&e))?;
                if let Some(record) = known {
                    return Err(Status::unauthenticated(format!(
                        "device {} is enrolled: it checks in over mutual TLS only",
                        record.identity.device_id
                    )));
                }
                if tls {
                    return Err(Status::unauthenticated(
                        "this server takes device check-ins over TLS (its --tls-listen port); plaintext ones only with --allow-plaintext-devices",
                    ));
                }
                Ok(())
            }
        }
    }
}

#[tonic::async_trait]
impl<S: FleetStore + EnrollmentStore> FleetService for GatedFleet<S> {
    async fn check_in(
        &self,
        request: Request<pb::CheckInRequest>,
    ) -> Result<Response<pb::CheckInResponse>, Status> {
        self.admit(&request).await?;
        self.inner.check_in(request).await
    }
}
