//! Console log and events to the server, for a device whose API may never come up
//! (`docs/fleet-enrollment.md` §4): the kernel arguments `skerry.logs=` and
//! `skerry.events=` name where they go; what the daemon logs and every event of its log
//! are posted there in batches, over TLS to the pinned server CA, by the device's
//! certificate once enrolled, else by the URL's join token.
//!
//! - [`sink`]: the sink URLs.
//! - [`outbox`]: the bounded lines waiting.
//! - [`event_line`]: an event as a JSON line.
//! - [`post`]: one HTTPS POST.
//! - [`shipper`]: the task.

pub mod event_line;
pub mod outbox;
pub mod post;
pub mod shipper;
pub mod sink;

pub use outbox::Outbox;
pub use shipper::{console_outbox, Shipper, Sinks, Whoami};
