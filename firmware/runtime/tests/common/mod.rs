//! Resource types shared by the integration tests.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};
use skerry_runtime::{Persistence, ResourceSpec, Sensitivity};

/// A persistent config-like resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub value: u64,
    pub note: String,
}

impl ResourceSpec for Setting {
    const TYPE: &'static str = "Settings.test.skerry.dev";
    const NAMESPACE: &'static str = "config";
    const PERSISTENCE: Persistence = Persistence::Persistent;
}

pub fn setting(value: u64) -> Setting {
    Setting {
        value,
        note: format!("v{value}"),
    }
}

/// An ephemeral, admin-only resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub secret: String,
}

impl ResourceSpec for Token {
    const TYPE: &'static str = "Tokens.test.skerry.dev";
    const SENSITIVITY: Sensitivity = Sensitivity::Sensitive;
}

/// A persistent, admin-only resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub material: String,
}

impl ResourceSpec for Key {
    const TYPE: &'static str = "Keys.test.skerry.dev";
    const SENSITIVITY: Sensitivity = Sensitivity::Sensitive;
    const PERSISTENCE: Persistence = Persistence::Persistent;
}

/// Chain stages for controller tests: A -> B -> C.
macro_rules! stage {
    ($name:ident, $type:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name(pub u64);
        impl ResourceSpec for $name {
            const TYPE: &'static str = $type;
        }
    };
}
stage!(StageA, "A.test.skerry.dev");
stage!(StageB, "B.test.skerry.dev");
stage!(StageC, "C.test.skerry.dev");
stage!(StageD, "D.test.skerry.dev");
