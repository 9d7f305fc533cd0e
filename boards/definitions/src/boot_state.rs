//! The boot-state store of a board as a template of a `skerryctl boot --store` spec:
//! `{disk}`, `{dev:NAME}` and `{mnt:NAME}` stand for the disk and its partitions until
//! the disk is known (an image file when building, `/dev/mmcblk0` on the device).

use std::path::PathBuf;

use skerry_boot_state::StoreSpec;

use crate::definition::{BoardDefinition, Disk};

/// The longest boot-state template read.
pub const MAX_BOOT_STATE_LEN: usize = 512;

/// What a placeholder in the template stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder<'a> {
    /// `{disk}`: the whole disk.
    Disk,
    /// `{dev:NAME}`: the block device of a partition.
    Device {
        /// The partition's name.
        name: &'a str,
        /// Its number on the disk.
        number: u32,
    },
    /// `{mnt:NAME}`: the directory a partition is mounted on.
    Mount {
        /// The partition's name.
        name: &'a str,
        /// Its number on the disk.
        number: u32,
    },
}

/// Why a template could not be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Longer than [`MAX_BOOT_STATE_LEN`].
    #[error("the boot-state spec is {len} bytes long, more than {MAX_BOOT_STATE_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A `{` without its `}`.
    #[error("the boot-state spec {template:?} has a '{{' without a closing '}}'")]
    Unclosed {
        /// The template.
        template: String,
    },
    /// A placeholder that is none of `{disk}`, `{dev:NAME}`, `{mnt:NAME}`.
    #[error("unknown placeholder {{{placeholder}}}: use {{disk}}, {{dev:NAME}} or {{mnt:NAME}}")]
    Unknown {
        /// What was between the braces.
        placeholder: String,
    },
    /// A placeholder naming a partition the disk does not have.
    #[error("the boot-state spec names partition {name:?}, which the disk does not have")]
    NoSuchPartition {
        /// The name.
        name: String,
    },
    /// The filled-in spec is not a valid store spec.
    #[error(transparent)]
    Spec(#[from] skerry_boot_state::SpecError),
}

/// Fills in `template` with the paths `resolve` gives.
pub fn render(
    template: &str,
    disk: &Disk,
    resolve: &dyn Fn(Placeholder<'_>) -> PathBuf,
) -> Result<String, TemplateError> {
    if template.len() > MAX_BOOT_STATE_LEN {
        return Err(TemplateError::TooLong {
            len: template.len(),
        });
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| TemplateError::Unclosed {
            template: template.to_owned(),
        })?;
        let inner = &after[..close];
        let placeholder = match inner.split_once(':') {
            None if inner == "disk" => Placeholder::Disk,
            Some((kind @ ("dev" | "mnt"), name)) => {
                let (number, _) = disk
                    .find(name)
                    .ok_or_else(|| TemplateError::NoSuchPartition { name: name.into() })?;
                if kind == "dev" {
                    Placeholder::Device { name, number }
                } else {
                    Placeholder::Mount { name, number }
                }
            }
            _ => {
                return Err(TemplateError::Unknown {
                    placeholder: inner.to_owned(),
                })
            }
        };
        out.push_str(&resolve(placeholder).to_string_lossy());
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Example paths, for checking a template: `/dev/disk`, `/dev/diskpN`, `/mnt/NAME`.
pub fn example_path(placeholder: Placeholder<'_>) -> PathBuf {
    match placeholder {
        Placeholder::Disk => "/dev/disk".into(),
        Placeholder::Device { number, .. } => format!("/dev/diskp{number}").into(),
        Placeholder::Mount { name, .. } => format!("/mnt/{name}").into(),
    }
}

impl BoardDefinition {
    /// The board's boot-state store with the disk's paths filled in.
    pub fn boot_state_spec(
        &self,
        resolve: &dyn Fn(Placeholder<'_>) -> PathBuf,
    ) -> Result<StoreSpec, TemplateError> {
        Ok(render(&self.bootloader.boot_state, &self.disk, resolve)?.parse()?)
    }
}
