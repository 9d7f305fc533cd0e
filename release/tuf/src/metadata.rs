//! The four TUF roles' metadata and the signed envelope around each.
//!
//! Files on the wire are `{"signatures":[…],"signed":{…}}`. Signatures are checked over
//! the canonical JSON of the `signed` value *as received* (not of our re-serialization),
//! so fields we do not know are still covered.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{to_canonical, to_canonical_of};
use crate::error::TufError;
use crate::expiry::Expiry;
use crate::key::{KeyId, PublicKey, SecretKey};

/// The spec version we write; we accept any 1.x.
pub const SPEC_VERSION: &str = "1.0.31";

/// The four top-level roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Root, Role::Targets, Role::Snapshot, Role::Timestamp];

    /// The role's name in metadata (`"root"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Targets => "targets",
            Role::Snapshot => "snapshot",
            Role::Timestamp => "timestamp",
        }
    }
}

/// One signature in the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub keyid: KeyId,
    pub sig: String,
}

/// A signed metadata file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signed<T> {
    pub signatures: Vec<Signature>,
    pub signed: T,
}

impl<T: Serialize> Signed<T> {
    /// Signs `signed` with every key in `keys`.
    pub fn sign(signed: T, keys: &[&SecretKey]) -> Result<Self, TufError> {
        let message = to_canonical_of(&signed)?;
        let mut signatures = Vec::with_capacity(keys.len());
        for key in keys {
            signatures.push(Signature {
                keyid: key.key_id()?,
                sig: key.sign(&message),
            });
        }
        Ok(Self { signatures, signed })
    }

    /// The bytes of the file (compact JSON).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TufError> {
        serde_json::to_vec(self).map_err(|source| TufError::Json {
            what: "signed metadata".into(),
            source,
        })
    }
}

/// A received file whose signatures are not checked yet.
#[derive(Debug, Clone, Deserialize)]
pub struct Unverified {
    pub signatures: Vec<Signature>,
    pub signed: Value,
}

impl Unverified {
    /// Parses the envelope of `bytes` (named `what` in errors).
    pub fn parse(what: &str, bytes: &[u8]) -> Result<Self, TufError> {
        serde_json::from_slice(bytes).map_err(|source| TufError::Json {
            what: what.into(),
            source,
        })
    }

    /// Checks that at least the role's threshold of its distinct trusted keys signed.
    ///
    /// A key counts once however many signatures or key ids it appears under: it is
    /// counted by its key bytes, and only under the key id that is its canonical hash
    /// (TUF 1.0 §4.2), so a root listing one key twice cannot lower its threshold.
    pub fn verify_role(
        &self,
        role: &str,
        role_keys: &RoleKeys,
        keys: &BTreeMap<KeyId, PublicKey>,
    ) -> Result<(), TufError> {
        let message = to_canonical(&self.signed)?;
        let mut valid: Vec<[u8; 32]> = Vec::new();
        for sig in &self.signatures {
            if !role_keys.keyids.contains(&sig.keyid) {
                continue;
            }
            let Some(key) = keys.get(&sig.keyid) else {
                continue;
            };
            let Some(bytes) = key.ed25519_bytes() else {
                continue;
            };
            if valid.contains(&bytes) || key.key_id()? != sig.keyid {
                continue;
            }
            if key.verifies(&message, &sig.sig) {
                valid.push(bytes);
            }
        }
        if role_keys.threshold == 0 || valid.len() < role_keys.threshold as usize {
            return Err(TufError::Threshold {
                role: role.into(),
                valid: valid.len(),
                threshold: role_keys.threshold,
            });
        }
        Ok(())
    }

    /// Decodes the `signed` part as role metadata `T`, checking `_type` and `spec_version`.
    pub fn decode<T: Metadata>(&self) -> Result<T, TufError> {
        let found = self
            .signed
            .get("_type")
            .and_then(Value::as_str)
            .unwrap_or("");
        if found != T::ROLE.name() {
            return Err(TufError::WrongType {
                expected: T::ROLE.name().into(),
                found: found.into(),
            });
        }
        let meta: T =
            serde_json::from_value(self.signed.clone()).map_err(|source| TufError::Json {
                what: format!("{} metadata", T::ROLE.name()),
                source,
            })?;
        let spec = meta.spec_version();
        if spec.split('.').next() != Some("1") {
            return Err(TufError::SpecVersion {
                role: T::ROLE.name().into(),
                found: spec.into(),
            });
        }
        Ok(meta)
    }
}

/// What every role's metadata has.
pub trait Metadata: Serialize + DeserializeOwned {
    const ROLE: Role;
    fn version(&self) -> u64;
    fn expires(&self) -> Expiry;
    fn spec_version(&self) -> &str;
}

/// The keys and threshold of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    pub keyids: Vec<KeyId>,
    pub threshold: u32,
}

/// `root` metadata: who may sign what.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Root {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: Expiry,
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<KeyId, PublicKey>,
    pub roles: BTreeMap<String, RoleKeys>,
}

impl Root {
    /// The keys of `role`.
    pub fn role(&self, role: Role) -> Result<&RoleKeys, TufError> {
        self.roles
            .get(role.name())
            .ok_or_else(|| TufError::MissingRole {
                role: role.name().into(),
            })
    }
}

/// One file described by `targets` metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetFile {
    pub length: u64,
    pub hashes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
}

/// `targets` metadata: the files of the repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: Expiry,
    pub targets: BTreeMap<String, TargetFile>,
}

/// A metadata file as listed by `snapshot` or `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetaFile {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

/// `snapshot` metadata: the versions of every targets file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: Expiry,
    pub meta: BTreeMap<String, MetaFile>,
}

/// `timestamp` metadata: the current snapshot, re-signed often.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timestamp {
    #[serde(rename = "_type")]
    pub kind: String,
    pub spec_version: String,
    pub version: u64,
    pub expires: Expiry,
    pub meta: BTreeMap<String, MetaFile>,
}

macro_rules! impl_metadata {
    ($t:ty, $role:expr) => {
        impl Metadata for $t {
            const ROLE: Role = $role;
            fn version(&self) -> u64 {
                self.version
            }
            fn expires(&self) -> Expiry {
                self.expires
            }
            fn spec_version(&self) -> &str {
                &self.spec_version
            }
        }
    };
}
impl_metadata!(Root, Role::Root);
impl_metadata!(Targets, Role::Targets);
impl_metadata!(Snapshot, Role::Snapshot);
impl_metadata!(Timestamp, Role::Timestamp);
