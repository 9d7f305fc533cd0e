//! The installer engine: verify a signed release, then write its image into the inactive
//! slot in one pass, reusing every chunk the active slot (the seed) already holds and
//! fetching only the rest, resumably. Its only boot-state change is the caller's hook
//! making the target slot unbootable before it is written; the caller starts the
//! slot's trial only after [`install`] returns `Ok`.
//!
//! # Layout
//! - [`transport`]: where bytes come from (`file://`, `http(s)://`, `bundle:` offline
//!   bundles), with size caps,
//!   range requests, resume and retry with backoff.
//! - [`guard`]: refusing a slot that is the seed, booted or mounted, and the caller's
//!   hook that makes the slot unbootable before it is written.
//! - [`state`]: what the device remembers between runs (trusted root, metadata versions,
//!   the time floor, installed versions).
//! - [`refresh`]: the TUF metadata walk over a transport.
//! - [`select`]: picking the board's release from verified targets.
//! - [`seed`]: cutting the seed into chunks and naming its index pages.
//! - [`plan`]: fetching the index head and the pages the seed cannot rebuild, and
//!   deciding where each chunk of the new image comes from.
//! - [`patches`]: patched chunks: which patch set's base the seed holds, its patch
//!   index, and which fetched chunks become patches.
//! - [`write`]: the one-pass writer and the read-back verification.
//! - [`install`](mod@install): the whole flow and its report.

mod budget;
pub mod error;
pub mod guard;
pub mod install;
pub mod patches;
pub mod plan;
pub mod refresh;
pub mod seed;
pub mod select;
pub mod state;
mod ticker;
pub mod transport;
pub mod write;

pub use error::InstallError;
pub use guard::{NoBootState, SlotActivation};
pub use install::{install, install_with, Downgrade, InstallOptions, InstallReport, Progress};
pub use patches::PatchUse;
pub use state::DeviceState;
pub use transport::{open_url, FetchError, Fetcher, RetryLog, RetryPolicy, Transport};
