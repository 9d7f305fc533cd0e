//! Who a DDI request is: `Authorization: TargetToken <t>` (the target's own token, kept
//! by the server only as its SHA-256) or `GatewayToken <t>` (one per server, in
//! `DIR/keys/ddi-gateway.token`, acting for any known target). Anything else is refused.

use sha2::{Digest, Sha256};
use skerry_fleet_store::{DdiStore, DdiTarget, StoreError};

/// Longest token accepted in a header.
pub const MAX_TOKEN_BYTES: usize = 256;

/// Why a request was refused (all answered `401`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthRefusal {
    #[error("no Authorization header (send TargetToken or GatewayToken)")]
    Anonymous,
    #[error("the Authorization scheme is neither TargetToken nor GatewayToken")]
    Scheme,
    #[error("the token is empty or longer than {MAX_TOKEN_BYTES} bytes")]
    Length,
    #[error("the token is not this target's")]
    WrongToken,
    #[error("no target {0} is known")]
    UnknownTarget(String),
}

/// The SHA-256 a target token is stored as.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The target `controller_id` names, if the header proves the caller may act for it.
pub fn authenticate(
    store: &(impl DdiStore + ?Sized),
    gateway: Option<&str>,
    header: Option<&str>,
    controller_id: &str,
) -> Result<Result<DdiTarget, AuthRefusal>, StoreError> {
    let Some(header) = header else {
        return Ok(Err(AuthRefusal::Anonymous));
    };
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Ok(Err(AuthRefusal::Length));
    }
    match scheme {
        "TargetToken" => Ok(match store.ddi_target_by_token(&token_hash(token))? {
            Some(t) if t.device == controller_id => Ok(t),
            _ => Err(AuthRefusal::WrongToken),
        }),
        "GatewayToken" => {
            if !gateway.is_some_and(|g| equal(g.as_bytes(), token.as_bytes())) {
                return Ok(Err(AuthRefusal::WrongToken));
            }
            Ok(store
                .ddi_target(controller_id)?
                .ok_or_else(|| AuthRefusal::UnknownTarget(controller_id.into())))
        }
        _ => Ok(Err(AuthRefusal::Scheme)),
    }
}
