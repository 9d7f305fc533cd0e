//! What went wrong, as an exit code a script can branch on, and gRPC statuses as
//! sentences that name the status code and the machine's own message.
//!
//! | code | meaning                                                                  |
//! |------|--------------------------------------------------------------------------|
//! | 0    | done                                                                     |
//! | 1    | failed here (a local file could not be written, a patch did not apply…)  |
//! | 2    | usage: bad arguments, or a client config / input file that is missing or wrong |
//! | 3    | the machine was not reached: connection refused, TLS handshake failed, timeout, UNAVAILABLE |
//! | 4    | the machine refused the request (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND…) |
//! | 5    | the certificate may not do this (PERMISSION_DENIED, UNAUTHENTICATED)      |

use std::fmt;

use tonic::{Code, Status};

/// The exit-code table as the help text shows it.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  failed here (a local file could not be written, a patch did not apply)
  2  usage: bad arguments, or a client config or input file that is missing or wrong
  3  the machine was not reached (connection refused, TLS handshake failed, timed out,
     UNAVAILABLE)
  4  the machine refused the request (INVALID_ARGUMENT, FAILED_PRECONDITION, NOT_FOUND...)
  5  the client certificate may not do this (PERMISSION_DENIED, UNAUTHENTICATED)";

/// The exit code of a usage error (clap uses it for bad arguments too).
pub const USAGE: u8 = 2;
/// The exit code when the machine was not reached.
pub const UNREACHABLE: u8 = 3;
/// The exit code when the machine refused the request.
pub const REFUSED: u8 = 4;
/// The exit code when the certificate's role may not make the call.
pub const NOT_PERMITTED: u8 = 5;

/// A usage error: the command line, or a file it names, is wrong.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// The machine could not be reached at any of its endpoints.
#[derive(Debug)]
pub struct Unreachable {
    /// The client config's context used.
    pub context: String,
    /// Each endpoint tried, with why it failed.
    pub attempts: Vec<(String, String)>,
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not reach the machine API (context {})",
            self.context
        )?;
        for (endpoint, why) in &self.attempts {
            write!(f, "; {endpoint}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unreachable {}

/// The machine answered a call with an error status.
#[derive(Debug)]
pub struct Refused {
    /// The method called, e.g. `Upgrade`.
    pub method: &'static str,
    /// The status, with the server's message.
    pub status: Status,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.status.message();
        let verb = if transport_code(self.status.code()) {
            "failed"
        } else {
            "refused"
        };
        write!(
            f,
            "{} {verb}: {}: {}",
            self.method,
            code_name(self.status.code()),
            if message.is_empty() {
                self.status.code().description()
            } else {
                message
            }
        )
    }
}

impl std::error::Error for Refused {}

/// A status from `method` as an error.
pub fn refused(method: &'static str, status: Status) -> anyhow::Error {
    Refused { method, status }.into()
}

/// The status codes that mean the call never got a real answer.
fn transport_code(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::DeadlineExceeded)
}

/// The canonical name of a gRPC status code, as grpc's own tools print it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The exit code for `error`: the first classified error in its chain decides.
pub fn code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<Usage>() {
            return USAGE;
        }
        if cause.is::<Unreachable>() || cause.is::<crate::fleet::http::ServerUnreachable>() {
            return UNREACHABLE;
        }
        if let Some(refused) = cause.downcast_ref::<crate::fleet::http::ServerRefused>() {
            return match refused.status {
                401 | 403 => NOT_PERMITTED,
                _ => REFUSED,
            };
        }
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return match refused.status.code() {
                Code::PermissionDenied | Code::Unauthenticated => NOT_PERMITTED,
                code if transport_code(code) => UNREACHABLE,
                _ => REFUSED,
            };
        }
    }
    1
}

/// What to try after `error`, when its kind suggests something.
pub fn hint(error: &anyhow::Error) -> Option<String> {
    for cause in error.chain() {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return match refused.status.code() {
                Code::PermissionDenied => Some(
                    "use a context whose certificate has the role the message names: \
                     --context NAME (gen secrets writes NAME-admin, NAME-operator, NAME-reader)"
                        .into(),
                ),
                Code::Unauthenticated => Some(
                    "the machine did not accept the client certificate: use one the machine \
                     CA signed (gen secrets writes them with the client config)"
                        .into(),
                ),
                Code::Unimplemented => Some(
                    "the machine's skerryd does not serve this method (an older or newer \
                     release): `skerryctl version` shows what it runs"
                        .into(),
                ),
                _ => None,
            };
        }
        if let Some(unreachable) = cause.downcast_ref::<Unreachable>() {
            if unreachable
                .attempts
                .iter()
                .any(|(_, why)| why.contains("certificate"))
            {
                return Some(
                    "the TLS handshake failed: the machine's node certificate must be signed \
                     by the CA the client config names and carry its server_name; use the \
                     client config `gen secrets` wrote together with that machine's pki/"
                        .into(),
                );
            }
            return Some(
                "check that skerryd runs and listens there, that --endpoint or the context's \
                 endpoints are right, and that the node certificate names the host you use"
                    .into(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        assert_eq!(code_of(&usage("bad")), USAGE);
        let unreachable = anyhow::Error::from(Unreachable {
            context: "edge-admin".into(),
            attempts: vec![("https://127.0.0.1:1".into(), "refused".into())],
        });
        assert_eq!(code_of(&unreachable), UNREACHABLE);
        let denied = refused("Upgrade", Status::permission_denied("needs os:admin"));
        assert_eq!(code_of(&denied), NOT_PERMITTED);
        let anonymous = refused("Version", Status::unauthenticated("no certificate"));
        assert_eq!(code_of(&anonymous), NOT_PERMITTED);
        let invalid = refused("ApplyConfiguration", Status::invalid_argument("bad"));
        assert_eq!(code_of(&invalid), REFUSED);
        let gone = refused("Logs", Status::unavailable("connection reset"));
        assert_eq!(code_of(&gone), UNREACHABLE);
        assert_eq!(code_of(&anyhow::anyhow!("disk full")), 1);
        // Context added on top does not hide the kind.
        assert_eq!(code_of(&usage("bad").context("reading the config")), USAGE);
    }

    #[test]
    fn a_refusal_names_the_code_and_the_servers_message() {
        let denied = refused("Upgrade", Status::permission_denied("needs os:admin"));
        assert_eq!(
            denied.to_string(),
            "Upgrade refused: PERMISSION_DENIED: needs os:admin"
        );
        assert!(hint(&denied).unwrap().contains("--context"));
    }
}
