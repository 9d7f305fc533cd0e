//! The config subsystem's own resource types (namespace `config`). The config in effect
//! itself is published as the shared `Active*` types of `skerryd_core::resources`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use skerry_runtime::ResourceSpec;
use skerryd_core::resources::CONFIG_NAMESPACE;

/// The id of [`ConfigRevision`] and [`ConfigStatus`].
pub const STORE_ID: &str = "machine";

/// Bumped by the API side every time it changed the config store: the wake-up of the
/// publishing controller, which reads the store's state when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRevision {
    /// One more at every change of the store in this start.
    pub revision: u64,
}

impl ResourceSpec for ConfigRevision {
    const TYPE: &'static str = "ConfigRevisions.config.skerry.dev";
    const NAMESPACE: &'static str = CONFIG_NAMESPACE;
}

/// A config on try, as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TryStatus {
    /// The generation on try (what `ConfirmConfiguration` must name).
    pub generation: u64,
    /// When it is reverted unless confirmed.
    pub revert_at: SystemTime,
    /// The generation it reverts to.
    pub reverts_to: u64,
}

/// Where the machine's config stands, for `skerryctl get configstatus` (id
/// [`STORE_ID`]). Written only by the publishing controller, after it published the
/// config in effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The generation in effect (0: no config was ever applied).
    pub generation: u64,
    /// The config on try, if any.
    pub pending_try: Option<TryStatus>,
    /// The generation staged for the next start, if any.
    pub staged_generation: Option<u64>,
    /// The [`ConfigRevision`] this status reflects.
    pub revision: u64,
}

impl ResourceSpec for ConfigStatus {
    const TYPE: &'static str = "ConfigStatuses.config.skerry.dev";
    const NAMESPACE: &'static str = CONFIG_NAMESPACE;
}
