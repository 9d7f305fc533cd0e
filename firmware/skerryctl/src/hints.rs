//! Hints: what a user probably got wrong, printed under an error. An error that knows
//! its hint carries it ([`WithHint`]); [`for_error`] finds every hint in an error chain,
//! including those it can tell from well-known error types alone.

use skerry_boot_state::{StoreError, StoreSpec};

/// An error together with what to try. Displays exactly as the error does and has its
/// causes; the binary prints the hint on a line of its own.
#[derive(Debug)]
pub struct WithHint {
    source: anyhow::Error,
    hint: String,
}

impl std::fmt::Display for WithHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for WithHint {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.source()
    }
}

/// Attaches `hint` to `error`.
pub fn with_hint(error: impl Into<anyhow::Error>, hint: impl Into<String>) -> anyhow::Error {
    WithHint {
        source: error.into(),
        hint: hint.into(),
    }
    .into()
}

/// A store that did not load, with a hint when another spec would read it: a single
/// U-Boot environment that fails its CRC may be one copy of a redundant pair.
pub fn store_error(spec: &StoreSpec, error: StoreError) -> anyhow::Error {
    let unreadable = matches!(
        error,
        StoreError::Corrupt { .. } | StoreError::NoValidCopy { .. }
    );
    match spec {
        StoreSpec::Uboot {
            path,
            offset,
            size,
            redundant: false,
        } if unreadable => {
            let redundant = StoreSpec::Uboot {
                path: path.clone(),
                offset: *offset,
                size: *size,
                redundant: true,
            };
            let loads = redundant.open().is_ok_and(|store| store.load().is_ok());
            let hint = if loads {
                format!("it reads as a redundant environment (two copies): use --store {redundant}")
            } else {
                format!(
                    "if the environment is redundant (two copies, as fw_env.config lists two \
                     lines), add ,redundant: --store {redundant}; check offset and size too"
                )
            };
            with_hint(error, hint)
        }
        _ => error.into(),
    }
}

/// Every hint for `error`: those it carries, and those its types imply.
pub fn for_error(error: &anyhow::Error) -> Vec<String> {
    let mut hints = Vec::new();
    for cause in error.chain() {
        if let Some(hinted) = cause.downcast_ref::<WithHint>() {
            hints.push(hinted.hint.clone());
        }
        if let Some(skerry_tuf::TufError::Threshold { role, valid: 0, .. }) =
            cause.downcast_ref::<skerry_tuf::TufError>()
        {
            hints.push(format!(
                "no {role} signature is by a key the trusted root lists: the trusted root may \
                 belong to another repository (use the root this repository was initialized \
                 with, its metadata/1.root.json, or the root the device shipped with)"
            ));
        }
    }
    hints.dedup();
    hints
}
