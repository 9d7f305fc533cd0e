//! The role gate: a service wrapped around the generated gRPC server that reads the
//! caller's role from its TLS client certificate, looks the method up in the role
//! table, and answers before the method runs when the caller may not call it.
//!
//! - no certificate, or one naming no role: `UNAUTHENTICATED`;
//! - a role below the method's: `PERMISSION_DENIED`, naming both roles;
//! - a path the table does not list: `UNIMPLEMENTED` (deny by default, so a method
//!   added to the service is unreachable until the table gives it a role).
//!
//! The caller's [`Role`] is put into the request's extensions for methods that decide
//! more finely (sensitive resource types are admin-only).

use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{BoxFuture, Service};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use crate::identity::role_of_peer;
use crate::roles::{required_role, Role};

/// Wraps a gRPC service so that only callers with the required role reach it.
#[derive(Debug, Clone)]
pub struct RoleGate<S> {
    inner: S,
}

impl<S> RoleGate<S> {
    /// Gates `inner` with the role table.
    pub fn new(inner: S) -> Self {
        RoleGate { inner }
    }
}

impl<S: NamedService> NamedService for RoleGate<S> {
    const NAME: &'static str = S::NAME;
}

/// What the gate decides for one request.
fn admit<B>(request: &Request<B>) -> Result<Role, Status> {
    let path = request.uri().path();
    let Some(required) = required_role(path) else {
        return Err(Status::unimplemented(format!(
            "{path} is not a method of this machine API"
        )));
    };
    let chain = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs());
    let role = role_of_peer(chain.as_deref().map(Vec::as_slice))
        .map_err(|e| Status::unauthenticated(e.to_string()))?;
    if !role.allows(required) {
        return Err(Status::permission_denied(format!(
            "{path} requires the role {required}; the client certificate names {role}"
        )));
    }
    Ok(role)
}

impl<S, B> Service<Request<B>> for RoleGate<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match admit(&request) {
            Ok(role) => {
                request.extensions_mut().insert(role);
                Box::pin(self.inner.call(request))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn request(path: &str) -> Request<()> {
        Request::builder().uri(path).body(()).unwrap()
    }

    #[test]
    fn a_path_the_table_does_not_list_is_refused_before_any_certificate_is_read() {
        let status = admit(&request("/grpc.health.v1.Health/Check")).unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.message().contains("/grpc.health.v1.Health/Check"));
    }

    #[test]
    fn a_connection_without_tls_information_is_unauthenticated() {
        let status = admit(&request("/skerry.machine.v1.MachineService/Version")).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(
            status.message().contains("no client certificate"),
            "{}",
            status.message()
        );
    }
}
