//! How the controller reaches the server: plaintext to `FleetConfig.server` when no
//! join URL is given, else mutual TLS to the join URL's server with the identity kept
//! under `var/fleet/identity` (enrolled once; reused at every start).
//!
//! The join URL is the kernel argument `skerry.join=` (from `run/cmdline`, which wins)
//! or `FleetConfig.join`. The identity is reused as long as the join URL names the
//! token it was enrolled with (`token-id` beside it): a token is never spent twice. A
//! join URL with another token enrolls anew (the operator gave a new one). When the
//! server refuses the identity (revoked, or superseded by a newer enrollment) the
//! controller stops checking in and says so until a join URL with another token comes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::ClientTlsConfig;

use crate::enrollment::{enroll, DeviceIdentity, EnrollError, JoinUrl};
use crate::schedule::MAX_BACKOFF;

/// Where a join URL came from, for the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    Cmdline,
    Config,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Origin::Cmdline => "the kernel argument skerry.join=",
            Origin::Config => "FleetConfig.join",
        })
    }
}

/// How the next check-in goes, or why there is none.
pub(crate) enum Route {
    /// Plaintext to `FleetConfig.server` (no join URL).
    Plain(String),
    /// Mutual TLS to the join URL's server.
    Mutual {
        server: String,
        tls: Box<ClientTlsConfig>,
    },
    /// No check-in: `reason` for the status; retry after `retry` (`None`: only when
    /// the config or the join URL changes).
    Wait {
        server: String,
        reason: String,
        retry: Option<Duration>,
        /// Whether this is the stop after the server refused the identity.
        stopped: bool,
    },
}

/// The device's enrollment state across reconciles.
#[derive(Debug)]
pub(crate) struct Joining {
    identity: DeviceIdentity,
    cmdline: PathBuf,
    /// The token id whose identity the server refused (stop until another comes).
    refused: Option<String>,
}

fn token_id(join: &JoinUrl) -> &str {
    join.token.split('.').next().unwrap_or_default()
}

impl Joining {
    pub(crate) fn new(state: &Path, cmdline: &Path) -> Self {
        Self {
            identity: DeviceIdentity::new(&state.join("identity")),
            cmdline: cmdline.into(),
            refused: None,
        }
    }

    fn token_record(&self) -> PathBuf {
        self.identity.dir.join("token-id")
    }

    /// The join URL in effect (the kernel argument wins), unparsed, with its origin.
    pub(crate) fn join_text(&self, configured: Option<&str>) -> Option<(String, Origin)> {
        let cmdline = skerryd_core::layout::read_small(&self.cmdline)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        if let Some(url) = cmdline.as_deref().and_then(JoinUrl::from_cmdline) {
            return Some((url.to_owned(), Origin::Cmdline));
        }
        configured.map(|c| (c.to_owned(), Origin::Config))
    }

    /// The directory a new enrollment is made in before it replaces the kept one.
    fn next_dir(&self) -> PathBuf {
        self.identity.dir.with_extension("new")
    }

    /// Enrolls into [`Self::next_dir`] and only then replaces the kept identity, so a
    /// refused or interrupted enrollment (a new token) leaves the old one working.
    async fn enroll(
        &self,
        join: &JoinUrl,
        device_id: &str,
        board: &str,
    ) -> Result<(), EnrollError> {
        let next = DeviceIdentity::new(&self.next_dir());
        let io = |path: &Path, doing| {
            let path = path.to_path_buf();
            move |source| EnrollError::Io {
                path,
                doing,
                source,
            }
        };
        if next.dir.exists() {
            std::fs::remove_dir_all(&next.dir)
                .map_err(io(&next.dir, "removing an unfinished enrollment"))?;
        }
        enroll(join, device_id, board, &next).await?;
        std::fs::write(next.dir.join("token-id"), token_id(join))
            .map_err(io(&next.dir, "recording the enrollment's token id"))?;
        if self.identity.dir.exists() {
            std::fs::remove_dir_all(&self.identity.dir)
                .map_err(io(&self.identity.dir, "removing the replaced identity"))?;
        }
        std::fs::rename(&next.dir, &self.identity.dir)
            .map_err(io(&self.identity.dir, "putting the new identity in place"))
    }

    /// A finished enrollment whose move into place a crash interrupted is moved now.
    fn finish_interrupted(&self) {
        let next = DeviceIdentity::new(&self.next_dir());
        if !self.identity.dir.exists() && next.enrolled() && next.dir.join("token-id").exists() {
            if let Err(e) = std::fs::rename(&next.dir, &self.identity.dir) {
                tracing::warn!(error = %e, "putting the enrolled identity in place");
            }
        }
    }

    /// Whether the kept identity was enrolled with `join`'s token (an identity kept
    /// without a record is taken as this token's: it is never re-enrolled blindly).
    fn identity_is_for(&self, join: &JoinUrl) -> bool {
        self.finish_interrupted();
        self.identity.enrolled()
            && std::fs::read_to_string(self.token_record())
                .map_or(true, |id| id.trim() == token_id(join))
    }

    /// Decides the route; enrolls first when needed (`device_id` of `board`).
    /// `plain` is `FleetConfig.server`; `join` the text and origin of a join URL.
    pub(crate) async fn route(
        &mut self,
        plain: &str,
        join: Option<(String, Origin)>,
        device_id: &str,
        board: &str,
        backoff: impl FnOnce() -> Duration,
    ) -> Route {
        let Some((text, origin)) = join else {
            return Route::Plain(plain.to_owned());
        };
        let join = match JoinUrl::parse(&text) {
            Ok(join) => join,
            Err(e) => {
                return Route::Wait {
                    server: String::new(),
                    reason: format!("{origin}: {e}"),
                    retry: None,
                    stopped: false,
                }
            }
        };
        let server = join.server.clone();
        if self.refused.as_deref() == Some(token_id(&join)) {
            return Route::Wait {
                server,
                reason: format!(
                    "stopped: the server refused this device's identity (revoked or superseded); enrolling again needs a join URL with a new token (token {} was used)",
                    token_id(&join)
                ),
                retry: None,
                stopped: true,
            };
        }
        if !self.identity_is_for(&join) {
            if let Err(e) = self.enroll(&join, device_id, board).await {
                let token_refused = matches!(&e, EnrollError::Refused { status, .. }
                    if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied | tonic::Code::InvalidArgument));
                let message = format!("enrolling with {origin}: {}", crate::error_chain(&e));
                tracing::warn!(error = %message, "fleet enrollment failed");
                return Route::Wait {
                    server,
                    reason: message,
                    // A refused token does not get better by asking again soon.
                    retry: Some(if token_refused {
                        MAX_BACKOFF
                    } else {
                        backoff()
                    }),
                    stopped: false,
                };
            }
            self.refused = None;
            tracing::info!(%server, "enrolled with the fleet server");
        }
        match self.identity.client_tls(&join.host) {
            Ok(tls) => Route::Mutual {
                server,
                tls: Box::new(tls),
            },
            Err(e) => Route::Wait {
                server,
                reason: format!("the device identity: {}", crate::error_chain(&e)),
                retry: None,
                stopped: false,
            },
        }
    }

    /// A mutual-TLS check-in was refused for the identity itself: stop.
    pub(crate) fn identity_refused(&mut self, join: Option<&(String, Origin)>) {
        let id = join
            .and_then(|(text, _)| JoinUrl::parse(text).ok())
            .map(|j| token_id(&j).to_owned());
        self.refused = id.or_else(|| std::fs::read_to_string(self.token_record()).ok());
    }
}

/// Whether a refused mutual-TLS check-in means the identity itself is not accepted.
pub(crate) fn refuses_identity(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
    )
}
