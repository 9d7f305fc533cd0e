//! Join tokens as the operator and the device see them: `ID.SECRET`, `ID` 16 lowercase
//! hex digits (public, names the token), `SECRET` 64 (32 random bytes). Only
//! `sha256(SECRET)` is ever stored.

use sha2::{Digest as _, Sha256};

/// The longest token text accepted before parsing.
pub const MAX_TOKEN_BYTES: usize = 96;
const ID_HEX: usize = 16;
const SECRET_HEX: usize = 64;

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub id: String,
    secret: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("JoinToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a token's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    #[error("join token is {0} bytes; at most {MAX_TOKEN_BYTES}")]
    TooLong(usize),
    #[error("join token must be ID.SECRET: {ID_HEX} and {SECRET_HEX} lowercase hex digits")]
    Shape,
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl JoinToken {
    /// A new token from the OS random source.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut id = [0u8; ID_HEX / 2];
        let mut secret = [0u8; SECRET_HEX / 2];
        getrandom::getrandom(&mut id)?;
        getrandom::getrandom(&mut secret)?;
        Ok(Self {
            id: hex::encode(id),
            secret: hex::encode(secret),
        })
    }

    pub fn parse(text: &str) -> Result<Self, TokenFormatError> {
        if text.len() > MAX_TOKEN_BYTES {
            return Err(TokenFormatError::TooLong(text.len()));
        }
        let (id, secret) = text.split_once('.').ok_or(TokenFormatError::Shape)?;
        if !lower_hex(id, ID_HEX) || !lower_hex(secret, SECRET_HEX) {
            return Err(TokenFormatError::Shape);
        }
        Ok(Self {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    pub fn secret_sha256(&self) -> [u8; 32] {
        Sha256::digest(self.secret.as_bytes()).into()
    }

    /// The whole token, for the operator who created it (printed once).
    pub fn reveal(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_shapes() {
        let t = JoinToken::generate().unwrap();
        assert_eq!(JoinToken::parse(&t.reveal()).unwrap(), t);
        assert!(!format!("{t:?}").contains(&t.secret));
        let bad = [
            "",
            "abc",
            &t.reveal().to_uppercase(),
            &format!("{}x", t.reveal()),
            &t.reveal().replace('.', ":"),
        ];
        for b in bad {
            assert!(JoinToken::parse(b).is_err(), "{b}");
        }
        assert_eq!(
            JoinToken::parse(&"a".repeat(200)),
            Err(TokenFormatError::TooLong(200))
        );
    }
}
