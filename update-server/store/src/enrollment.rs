//! Enrollment's storage, [`EnrollmentStore`]: join tokens (kept only as the hash of
//! their secret, with an expiry and a use limit counted in the same transaction that
//! records the identity), device identities (the serial of each device's current
//! certificate, revocation), and the console log and events a device sends, bounded
//! per device. The contract is `docs/fleet-enrollment.md`.

use std::collections::BTreeMap;

use skerry_rollout::UnixTime;

use crate::StoreError;

/// Log lines kept per device; older ones are dropped.
pub const DEVICE_LOG_LIMIT: usize = 4096;
/// Events kept per device; older ones are dropped.
pub const DEVICE_EVENT_LIMIT: usize = 1024;

/// A token as the operator made it. The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJoinToken {
    /// 16 lowercase hex digits, public.
    pub id: String,
    pub secret_sha256: [u8; 32],
    pub uses: u32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub labels: BTreeMap<String, String>,
}

/// A token as `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinTokenInfo {
    pub id: String,
    pub uses: u32,
    pub used: u32,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
    pub labels: BTreeMap<String, String>,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    WrongSecret,
    Expired,
    UsedUp,
    Revoked,
}

impl std::fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "join token unknown",
            Self::WrongSecret => "join token secret wrong",
            Self::Expired => "join token expired",
            Self::UsedUp => "join token used up",
            Self::Revoked => "join token revoked",
        })
    }
}

/// The certificate a device was issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub device_id: String,
    pub board: String,
    /// The certificate's serial number, lowercase hex.
    pub serial: String,
    pub not_after: UnixTime,
}

/// A device identity as stored: the current certificate and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub identity: DeviceIdentity,
    pub token_id: String,
    pub enrolled_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// Why an enrollment was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollRefusal {
    Token(TokenRefusal),
    DeviceRevoked,
}

/// Console lines or events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Console,
    Events,
}

/// Who is writing a device's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// The device's certificate, already verified to chain to the device CA.
    Certificate { serial: String },
    /// A join token, for a device that never enrolled.
    Token { id: String, secret_sha256: [u8; 32] },
}

/// Why log lines were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogRefusal {
    Token(TokenRefusal),
    /// The certificate is not the device's current one.
    NotCurrentCertificate,
    DeviceRevoked,
    /// An enrolled device must write with its certificate.
    EnrolledDevice,
    /// The token already carries the logs of as many devices as it has uses.
    TokenDeviceLimit,
}

/// One stored line or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    pub received_at: UnixTime,
    pub text: String,
}

/// Enrollment's storage. Every method is one transaction.
pub trait EnrollmentStore: Send + Sync + 'static {
    fn create_token(&self, token: &NewJoinToken) -> Result<(), StoreError>;
    /// Every token, newest first.
    fn tokens(&self) -> Result<Vec<JoinTokenInfo>, StoreError>;
    /// Revokes a token (again is a no-op); an unknown id is [`StoreError::NoSuchToken`].
    fn revoke_token(&self, id: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Checks the token, takes one use and records `identity` as the device's current
    /// one (superseding an earlier certificate), all or nothing.
    fn enroll(
        &self,
        token_id: &str,
        secret_sha256: &[u8; 32],
        identity: &DeviceIdentity,
        now: UnixTime,
    ) -> Result<Result<(), EnrollRefusal>, StoreError>;
    fn identity(&self, device_id: &str) -> Result<Option<IdentityRecord>, StoreError>;
    fn identities(&self) -> Result<Vec<IdentityRecord>, StoreError>;
    /// Revokes an enrolled device; an unknown one is [`StoreError::NoSuchDevice`].
    fn revoke_device(&self, device_id: &str, now: UnixTime) -> Result<(), StoreError>;
    /// Appends lines to a device's log of `kind`, keeping the last
    /// [`DEVICE_LOG_LIMIT`] / [`DEVICE_EVENT_LIMIT`].
    fn append_device_log(
        &self,
        device_id: &str,
        source: &LogSource,
        kind: LogKind,
        lines: &[String],
        now: UnixTime,
    ) -> Result<Result<(), LogRefusal>, StoreError>;
    /// A device's log of `kind`, oldest first.
    fn device_log(&self, device_id: &str, kind: LogKind) -> Result<Vec<LogEntry>, StoreError>;
}

/// Equal without an early exit, so the time taken says nothing about the hash.
pub fn hashes_equal(a: &[u8; 32], b: &[u8]) -> bool {
    b.len() == 32 && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
