//! ed25519 keys as TUF describes them, their key ids, and signing.

use std::path::Path;

use ed25519_dalek::{Signer, Verifier};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::canonical::to_canonical_of;
use crate::error::TufError;

/// A key id: the hex sha256 of the key's canonical JSON (TUF 1.0, §4.2).
pub type KeyId = String;

/// The public half, as it appears in root metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub keytype: String,
    pub scheme: String,
    pub keyval: KeyVal,
}

/// The `keyval` object of a public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    pub public: String,
}

impl PublicKey {
    /// The key id other TUF implementations compute for this key.
    pub fn key_id(&self) -> Result<KeyId, TufError> {
        Ok(hex::encode(Sha256::digest(to_canonical_of(self)?)))
    }

    /// The raw ed25519 public key, or `None` for any other key type or scheme. Two
    /// entries with the same bytes are one key, however their hex is written.
    pub fn ed25519_bytes(&self) -> Option<[u8; 32]> {
        if self.keytype != "ed25519" || self.scheme != "ed25519" {
            return None;
        }
        hex::decode(&self.keyval.public).ok()?.try_into().ok()
    }

    /// Checks `sig` (hex) over `message`. Non-ed25519 keys never verify.
    pub fn verifies(&self, message: &[u8], sig_hex: &str) -> bool {
        let Some(raw) = self.ed25519_bytes() else {
            return false;
        };
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&raw) else {
            return false;
        };
        let Ok(sig) = hex::decode(sig_hex) else {
            return false;
        };
        let Ok(sig) = ed25519_dalek::Signature::from_slice(&sig) else {
            return false;
        };
        key.verify(message, &sig).is_ok()
    }
}

/// A private ed25519 key. Stored on disk as the hex of its 32-byte seed.
pub struct SecretKey {
    inner: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field(
                "public",
                &hex::encode(self.inner.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl SecretKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, TufError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| TufError::BadKey {
            reason: format!("the OS random source failed: {e}"),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// A key from its 32-byte seed (tests use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            inner: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a key file written by [`SecretKey::save`].
    pub fn load(path: &Path) -> Result<Self, TufError> {
        let text = std::fs::read_to_string(path).map_err(|source| TufError::KeyFile {
            path: path.into(),
            source,
        })?;
        let raw = hex::decode(text.trim()).map_err(|e| TufError::BadKey {
            reason: format!("{} is not a hex ed25519 seed: {e}", path.display()),
        })?;
        let seed: [u8; 32] = raw.try_into().map_err(|_| TufError::BadKey {
            reason: format!("{} does not hold a 32-byte ed25519 seed", path.display()),
        })?;
        Ok(Self::from_seed(seed))
    }

    /// Writes the key (mode 0600 on Unix); refuses to overwrite an existing file.
    pub fn save(&self, path: &Path) -> Result<(), TufError> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let io = |source| TufError::KeyFile {
            path: path.into(),
            source,
        };
        let mut file = options.open(path).map_err(io)?;
        writeln!(file, "{}", hex::encode(self.inner.to_bytes())).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// The public half in TUF form.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            keytype: "ed25519".into(),
            scheme: "ed25519".into(),
            keyval: KeyVal {
                public: hex::encode(self.inner.verifying_key().as_bytes()),
            },
        }
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> Result<KeyId, TufError> {
        self.public().key_id()
    }

    /// Signs `message`, returning the hex signature.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.inner.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let key = SecretKey::from_seed([7; 32]);
        let sig = key.sign(b"hello");
        assert!(key.public().verifies(b"hello", &sig));
        assert!(!key.public().verifies(b"hellp", &sig));
        assert!(!SecretKey::from_seed([8; 32])
            .public()
            .verifies(b"hello", &sig));
        assert_eq!(key.key_id().unwrap().len(), 64);
    }
}
