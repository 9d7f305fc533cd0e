//! `skerry-server`: the update server. One listener speaks HTTP/1.1 and HTTP/2; gRPC
//! requests (`content-type: application/grpc`) go to the fleet API, everything else to
//! the static repository host.
//!
//! # Layout
//! - [`admin`]: operator commands on the data directory (rollouts, pins).
//! - [`api`]: the operator HTTP JSON API under `/api/v1/`, behind the operator token.
//! - [`metrics`]: Prometheus counters and the check-in latency histogram (`/metrics`).
//! - [`dashboard`]: the embedded web page at `/dashboard/` over the operator API.
//! - [`data`]: the data directory (`fleet.db`, `repository/`, `keys/timestamp.key`),
//!   created on first start.
//! - [`join_token`]: join tokens (`ID.SECRET`, only the secret's hash stored).
//! - [`join_url`]: the join URL / `skerry.join=` kernel argument `token create` prints.
//! - [`enroll`]: the gRPC enrollment service (token + CSR → device certificate).
//! - [`enroll_admin`]: the `token` and `device` operator commands.
//! - [`fleet_db`]: the data directory with the database in use (embedded or PostgreSQL).
//! - [`pki`]: the server CA, device CA and server certificate under `DIR/pki/`; issuing
//!   device certificates from CSRs.
//! - [`repo_path`]: turning a request path into a file inside the repository, or a refusal.
//! - [`repo_http`]: serving repository files: ranges, strong ETags, cache headers.
//! - [`timestamp`]: re-signing `timestamp.json` with the online key before it expires.
//! - [`releases`]: the releases the repository's signed targets hold.
//! - [`validate`]: bounding and checking a check-in before it reaches the store.
//! - [`checkin`]: the gRPC fleet service, driving the pure rollout decision.
//! - [`device_gate`]: who may check in: mutual TLS per request, plaintext rules.
//! - [`device_http`]: `/device/v1/ca.pem`, `/device/v1/logs`, `/device/v1/events`.
//! - [`tls`]: the device-facing TLS listener (server certificate, optional client
//!   certificate verified against the device CA).
//! - [`serve`](mod@serve): the edge service that routes between the two, and the listener.

pub mod admin;
pub mod api;
pub mod checkin;
pub mod dashboard;
pub mod data;
pub mod ddi;
pub mod device_gate;
pub mod device_http;
pub mod enroll;
pub mod enroll_admin;
pub mod fleet_db;
pub mod join_token;
pub mod join_url;
pub mod logging;
pub mod metrics;
pub mod pki;
pub mod releases;
pub mod repo_http;
pub mod repo_path;
pub mod serve;
pub mod timestamp;
pub mod tls;
pub mod validate;

pub use data::DataDir;
pub use serve::{serve, serve_with_tls, ServeError, ServerConfig};
