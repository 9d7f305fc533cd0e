//! `skerry-server ddi add DEVICE --board B --channel C [--version V]`: makes a DDI
//! target and prints its new target token (only its SHA-256 is stored; a second `add`
//! replaces the token).

use std::io::Read;

use semver::Version;
use skerry_fleet_store::DdiTarget;
use skerry_rollout::UnixTime;

use super::auth::token_hash;
use crate::fleet_db::FleetDb;

/// Makes (or re-keys) a target; returns its token.
pub fn add_target(db: &FleetDb, target: &DdiTarget, now: UnixTime) -> Result<String, String> {
    for (what, v) in [
        ("device", &target.device),
        ("board", &target.board),
        ("channel", &target.channel),
    ] {
        if !super::valid_name(v) {
            return Err(format!("{what} {v:?}: 1 to 128 bytes of [A-Za-z0-9._-]"));
        }
    }
    let mut secret = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    let token = super::hex(&secret);
    db.store
        .put_ddi_target(target, &token_hash(&token), now)
        .map_err(|e| crate::timestamp::chain(&e))?;
    Ok(token)
}

/// Parses `--version`, the release the target runs now.
pub fn running_version(v: &str) -> Result<Version, String> {
    Version::parse(v).map_err(|e| format!("--version {v:?}: {e}"))
}
