//! Leases: with several server instances on one database, a duty only one of them may
//! do at a time (re-signing the timestamp) is done by whoever holds its lease. A lease
//! is a row (name, holder, expiry, generation) taken or renewed in one transaction; a
//! holder that stops renewing loses it at expiry, and the generation grows whenever the
//! holder changes, so a holder can check just before acting that nobody took over.

use std::time::Duration;

use skerry_rollout::UnixTime;

use crate::StoreError;

/// The lease the timestamp re-signer holds.
pub const TIMESTAMP_LEASE: &str = "timestamp-resign";

/// A lease as held after taking or renewing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Grows by one each time the lease passes to another holder.
    pub generation: u64,
    pub expires: UnixTime,
}

/// Leases kept in the fleet database. Instances' clocks must agree to well within the
/// lease length (NTP), since `now` is each caller's.
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease `name` for `holder` until `now + length` if it is free, expired
    /// or already `holder`'s (then renewed, same generation); `None` while another
    /// holder's lease runs.
    fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: UnixTime,
        length: Duration,
    ) -> Result<Option<Lease>, StoreError>;
    /// Gives the lease up if `holder` has it (on shutdown), so another takes over at once.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
}

/// Whether the lease row `(holder, expires)` may be taken by `me` at `now`.
pub(crate) fn may_take(holder: &str, expires: u64, me: &str, now: UnixTime) -> bool {
    holder == me || expires <= now.0
}
