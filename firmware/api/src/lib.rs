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
//! - `version`: what Version answers;
//! - `serve`: `serve(listener, tls, machine, shutdown)` for any `MachineService`
//!   implementation (skerryd's is the real one), and `connect`;
//! - `testing` (feature `test-support`): a machine with fixed answers for tests.

mod gate;
mod identity;
mod roles;
mod serve;
#[cfg(feature = "test-support")]
pub mod testing;
mod tls;
mod version;

pub use gate::RoleGate;
pub use identity::{role_of_certificate, IdentityError};
pub use roles::{required_role, Role, METHOD_ROLES};
pub use serve::{
    connect, serve, ServeError, DEFAULT_PORT, MAX_REQUEST_BYTES, MAX_STREAMS_PER_CONNECTION,
};
pub use skerry_proto::machine::v1 as pb;
pub use skerry_proto::machine::v1::machine_service_server::MachineService;
pub use tls::{ClientTls, ServerTls, HANDSHAKE_TIMEOUT};
pub use version::VersionInfo;
