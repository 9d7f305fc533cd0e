//! One check-in over gRPC: send with a deadline, and check the answer before anything
//! acts on it (a hostile or broken server's sizes and values are bounded here).

use std::time::Duration;

use skerry_proto::fleet::v1::fleet_service_client::FleetServiceClient;
use skerry_proto::fleet::v1::{CheckInRequest, CheckInResponse};

/// How long one check-in may take, connecting included.
pub const CHECK_IN_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer decoded.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest offered version accepted.
pub const MAX_OFFER_VERSION: usize = 128;

/// Why a check-in did not get a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckInError {
    #[error("the fleet server address {server:?} is not usable")]
    Address {
        server: String,
        source: tonic::transport::Error,
    },
    #[error("could not reach the fleet server {server}")]
    Connect {
        server: String,
        source: tonic::transport::Error,
    },
    #[error("the fleet server {server} refused the check-in: {status}")]
    Refused {
        server: String,
        status: Box<tonic::Status>,
    },
    #[error("the fleet server {server} did not answer within {CHECK_IN_TIMEOUT:?}")]
    Timeout { server: String },
    #[error("the fleet server {server} answered nonsense: {what}")]
    BadAnswer { server: String, what: String },
}

/// Sends `request` to `server` and returns the checked answer.
pub async fn check_in(
    server: &str,
    request: CheckInRequest,
) -> Result<CheckInResponse, CheckInError> {
    check_in_with(server, None, request).await
}

/// As [`check_in`], over TLS with `tls` (the device's identity for mutual TLS, see
/// [`crate::enrollment::DeviceIdentity::client_tls`]) when given.
pub async fn check_in_with(
    server: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
    request: CheckInRequest,
) -> Result<CheckInResponse, CheckInError> {
    let call = async {
        let mut endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
            .map_err(|source| CheckInError::Address {
                server: server.to_owned(),
                source,
            })?
            .connect_timeout(CHECK_IN_TIMEOUT)
            .timeout(CHECK_IN_TIMEOUT);
        if let Some(tls) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|source| CheckInError::Address {
                    server: server.to_owned(),
                    source,
                })?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|source| CheckInError::Connect {
                server: server.to_owned(),
                source,
            })?;
        let mut client =
            FleetServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
        client
            .check_in(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| CheckInError::Refused {
                server: server.to_owned(),
                status: Box::new(status),
            })
    };
    let answer = tokio::time::timeout(CHECK_IN_TIMEOUT, call)
        .await
        .map_err(|_| CheckInError::Timeout {
            server: server.to_owned(),
        })??;
    checked(server, answer)
}

/// Refuses an answer no honest server sends.
pub fn checked(server: &str, answer: CheckInResponse) -> Result<CheckInResponse, CheckInError> {
    let bad = |what: String| CheckInError::BadAnswer {
        server: server.to_owned(),
        what,
    };
    if answer.offer.is_some() && answer.hold.is_some() {
        return Err(bad("both an offer and a hold".into()));
    }
    if let Some(offer) = &answer.offer {
        if offer.version.len() > MAX_OFFER_VERSION
            || semver::Version::parse(&offer.version).is_err()
        {
            return Err(bad(format!(
                "offered version {:?} is not a semantic version of at most {MAX_OFFER_VERSION} bytes",
                offer.version.chars().take(64).collect::<String>()
            )));
        }
    }
    if let Some(poll) = &answer.poll_interval {
        if poll.seconds < 0 || poll.nanos < 0 {
            return Err(bad("a negative poll interval".into()));
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use skerry_proto::fleet::v1::{Hold, Offer};

    fn offer(version: &str) -> Offer {
        Offer {
            board: "pi".into(),
            version: version.into(),
            channel: "stable".into(),
            rollout_id: "v2".into(),
            forced: false,
        }
    }

    #[test]
    fn hostile_answers_are_refused_by_what_is_wrong() {
        let both = CheckInResponse {
            offer: Some(offer("2.0.0")),
            hold: Some(Hold::default()),
            ..Default::default()
        };
        assert!(checked("s", both).unwrap_err().to_string().contains("both"));
        let huge = CheckInResponse {
            offer: Some(offer(&"9".repeat(10_000))),
            ..Default::default()
        };
        let e = checked("s", huge).unwrap_err().to_string();
        assert!(e.contains("not a semantic version") && e.len() < 400, "{e}");
        let negative = CheckInResponse {
            poll_interval: Some(prost_types::Duration {
                seconds: -5,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert!(checked("s", negative)
            .unwrap_err()
            .to_string()
            .contains("negative"));
        let good = CheckInResponse {
            offer: Some(offer("2.0.0")),
            ..Default::default()
        };
        assert!(checked("s", good).is_ok());
    }
}
