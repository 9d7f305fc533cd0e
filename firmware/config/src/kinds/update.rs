//! `UpdateConfig`: where upgrades come from and how long a new slot is on probation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::HumanDuration;

/// The update source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateConfig {
    /// The signed repository (`https://`, `http://` or `file://`).
    pub repository: String,
    /// The pinned trusted TUF root on the device (an absolute path).
    pub trusted_root: String,
    /// The board name releases are built for.
    pub board: String,
    /// The release channel.
    #[serde(default = "UpdateConfig::default_channel")]
    pub channel: String,
    /// How long every critical health check must pass on a new slot before it is committed.
    pub probation: HumanDuration,
}

impl UpdateConfig {
    fn default_channel() -> String {
        "stable".into()
    }
}
