//! The machine API's edge: the `skerry.machine.v1` gRPC service served by tonic over
//! rustls with mutual TLS. A client's role comes from the Organization of the
//! certificate the machine CA signed for it, and one table says which role each method
//! needs.
//!
//! Layout:
//! - `roles`: the roles and the method → role table;
//! - `identity`: the role a client certificate names;
//! - `gate`: the service wrapper that refuses callers without the role;
//! - `tls`: server and client TLS material;
//! - `health`: the health snapshot the daemon provides;
//! - `service`: the methods (Version and Health served; the rest await skerryd);
//! - `serve`: `serve(listener, tls, services, shutdown)` and `connect`.

mod gate;
mod health;
mod identity;
mod roles;
mod serve;
mod service;
mod tls;

pub use gate::RoleGate;
pub use health::{CheckReport, CheckStatus, HealthReport, HealthSource};
pub use identity::{role_of_certificate, IdentityError};
pub use roles::{required_role, Role, METHOD_ROLES};
pub use serve::{
    connect, serve, ServeError, DEFAULT_PORT, MAX_REQUEST_BYTES, MAX_STREAMS_PER_CONNECTION,
};
pub use service::{MachineApi, Services, VersionInfo};
pub use skerry_proto::machine::v1 as pb;
pub use tls::{ClientTls, ServerTls, HANDSHAKE_TIMEOUT};
