//! `MachineConfig`: who the machine is.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The machine's identity and hostname.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachineConfig {
    /// The hostname (RFC 1123), rendered to `/etc/hostname` and `/etc/hosts`.
    pub hostname: String,
    /// Who this machine is to the fleet.
    #[serde(default)]
    pub identity: Identity,
}

/// Fleet identity; read at boot (certificates and the update check-in carry it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Identity {
    /// A stable machine id chosen by the operator (defaults to the board serial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Where the machine stands (free text: a site, a cabinet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// Labels the update server can select on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}
