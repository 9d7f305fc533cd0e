//! Store specifications as operators write them on the command line:
//!
//! ```text
//! uboot:PATH[,offset=N][,size=N][,redundant]   (a redundant env keeps its second copy at offset+size)
//! grub:PATH
//! gpt:DISK,A=PARTNUM,B=PARTNUM
//! tryboot:DIR,A=PARTNUM,B=PARTNUM              (DIR holds autoboot.txt)
//! ```
//!
//! Numbers are decimal or `0x` hexadecimal.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::state::SlotName;

/// Where and in which format a boot state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// A U-Boot environment in a file or block device.
    Uboot {
        path: PathBuf,
        offset: u64,
        size: usize,
        redundant: bool,
    },
    /// A GRUB environment block file.
    Grub { path: PathBuf },
    /// ChromeOS-style attributes of the GPT partitions that hold the slots.
    Gpt {
        disk: PathBuf,
        slots: Vec<(SlotName, u32)>,
    },
    /// A Raspberry Pi boot directory with `autoboot.txt`.
    Tryboot {
        dir: PathBuf,
        slots: Vec<(SlotName, u32)>,
    },
}

/// The default U-Boot environment size (16 KiB), as `fw_env.config` commonly uses.
pub const DEFAULT_UBOOT_ENV_SIZE: usize = 0x4000;

/// The largest U-Boot environment we accept (real ones are 8 KiB to 256 KiB): the size
/// is read into memory, so it is bounded before any byte is read.
pub const MAX_UBOOT_ENV_SIZE: usize = 16 << 20;

/// Why a store specification was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store {spec:?}: {reason}")]
pub struct SpecError {
    pub spec: String,
    pub reason: String,
}

impl StoreSpec {
    /// The slots a GPT or tryboot store names in its spec; empty for U-Boot and GRUB, whose
    /// slots live in the environment itself.
    pub fn declared_slots(&self) -> Vec<SlotName> {
        match self {
            StoreSpec::Gpt { slots, .. } | StoreSpec::Tryboot { slots, .. } => {
                slots.iter().map(|(name, _)| name.clone()).collect()
            }
            StoreSpec::Uboot { .. } | StoreSpec::Grub { .. } => Vec::new(),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| SpecError {
            spec: spec.to_owned(),
            reason,
        };
        let (kind, rest) = spec.split_once(':').ok_or_else(|| {
            fail("expected KIND:PATH[,OPTION…] with KIND one of uboot, grub, gpt, tryboot".into())
        })?;
        let mut parts = rest.split(',');
        let path = PathBuf::from(parts.next().unwrap_or_default());
        if path.as_os_str().is_empty() {
            return Err(fail("the path is empty".into()));
        }
        let options: Vec<&str> = parts.collect();
        match kind {
            "uboot" => parse_uboot(path, &options).map_err(fail),
            "grub" => match options.first() {
                None => Ok(StoreSpec::Grub { path }),
                Some(extra) => Err(fail(format!("grub takes no options, got {extra:?}"))),
            },
            "gpt" => Ok(StoreSpec::Gpt {
                disk: path,
                slots: parse_slots(&options).map_err(fail)?,
            }),
            "tryboot" => Ok(StoreSpec::Tryboot {
                dir: path,
                slots: parse_slots(&options).map_err(fail)?,
            }),
            other => Err(fail(format!(
                "unknown kind {other:?}; use uboot, grub, gpt or tryboot"
            ))),
        }
    }
}

fn parse_uboot(path: PathBuf, options: &[&str]) -> Result<StoreSpec, String> {
    let mut offset = 0;
    let mut size = DEFAULT_UBOOT_ENV_SIZE;
    let mut redundant = false;
    for option in options {
        match option.split_once('=') {
            Some(("offset", n)) => offset = parse_number(n)?,
            Some(("size", n)) => {
                size =
                    usize::try_from(parse_number(n)?).map_err(|_| format!("size {n} too large"))?
            }
            None if *option == "redundant" => redundant = true,
            _ => {
                return Err(format!(
                    "unknown uboot option {option:?}; use offset=N, size=N or redundant"
                ))
            }
        }
    }
    // CRC32 (4 bytes), a flag byte when redundant, and at least the closing NUL pair.
    if size < 8 {
        return Err(format!("size {size} is too small for an environment"));
    }
    if size > MAX_UBOOT_ENV_SIZE {
        return Err(format!(
            "size {size:#x} is larger than any U-Boot environment (at most {MAX_UBOOT_ENV_SIZE:#x})"
        ));
    }
    // The copies end at offset + size (or + 2 × size when redundant): it must fit a u64.
    let copies = if redundant { 2 } else { 1 };
    if offset.checked_add(copies * size as u64).is_none() {
        return Err(format!(
            "offset {offset:#x} puts the environment past the end of any disk"
        ));
    }
    Ok(StoreSpec::Uboot {
        path,
        offset,
        size,
        redundant,
    })
}

fn parse_slots(options: &[&str]) -> Result<Vec<(SlotName, u32)>, String> {
    let mut slots: Vec<(SlotName, u32)> = Vec::new();
    for option in options {
        let (name, number) = option
            .split_once('=')
            .ok_or_else(|| format!("expected SLOT=PARTNUM, got {option:?}"))?;
        let name = SlotName::new(name).map_err(|e| e.to_string())?;
        let number = u32::try_from(parse_number(number)?)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("partition number for slot {name} must be 1 or more"))?;
        if slots.iter().any(|(n, _)| *n == name) {
            return Err(format!("slot {name} is given twice"));
        }
        if let Some((other, _)) = slots.iter().find(|(_, p)| *p == number) {
            return Err(format!(
                "slots {other} and {name} both use partition {number}"
            ));
        }
        slots.push((name, number));
    }
    if slots.len() < 2 {
        return Err("name at least two slots, e.g. A=2,B=3".into());
    }
    Ok(slots)
}

fn parse_number(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("{text:?} is not a number"))
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = |f: &mut fmt::Formatter<'_>, slots: &[(SlotName, u32)]| {
            slots.iter().try_for_each(|(n, p)| write!(f, ",{n}={p}"))
        };
        match self {
            StoreSpec::Uboot {
                path,
                offset,
                size,
                redundant,
            } => {
                write!(
                    f,
                    "uboot:{},offset={offset:#x},size={size:#x}",
                    path.display()
                )?;
                if *redundant {
                    f.write_str(",redundant")?;
                }
                Ok(())
            }
            StoreSpec::Grub { path } => write!(f, "grub:{}", path.display()),
            StoreSpec::Gpt { disk, slots: s } => {
                write!(f, "gpt:{}", disk.display())?;
                slots(f, s)
            }
            StoreSpec::Tryboot { dir, slots: s } => {
                write!(f, "tryboot:{}", dir.display())?;
                slots(f, s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        assert_eq!(
            "uboot:/dev/mtd0,offset=0x40000,size=0x2000,redundant"
                .parse::<StoreSpec>()
                .unwrap(),
            StoreSpec::Uboot {
                path: "/dev/mtd0".into(),
                offset: 0x40000,
                size: 0x2000,
                redundant: true
            }
        );
        assert!(matches!(
            "grub:/boot/grubenv".parse::<StoreSpec>().unwrap(),
            StoreSpec::Grub { .. }
        ));
        let gpt: StoreSpec = "gpt:disk.img,A=2,B=3".parse().unwrap();
        assert_eq!(gpt.declared_slots().len(), 2);
        let round: StoreSpec = gpt.to_string().parse().unwrap();
        assert_eq!(round, gpt);
        assert!("tryboot:/boot,A=2,B=3".parse::<StoreSpec>().is_ok());
    }

    #[test]
    fn rejects_bad_specs_with_reasons() {
        for (spec, needle) in [
            ("disk.img", "KIND:PATH"),
            ("zfs:pool", "unknown kind"),
            ("uboot:", "path is empty"),
            ("uboot:env,offset=abc", "not a number"),
            ("uboot:env,speed=3", "unknown uboot option"),
            ("gpt:disk.img,A=2", "at least two slots"),
            ("gpt:disk.img,A=2,A=3", "given twice"),
            ("gpt:disk.img,A=2,B=2", "both use partition 2"),
            ("gpt:disk.img,A=0,B=2", "1 or more"),
            ("tryboot:/boot,A B=2,C=3", "invalid slot name"),
            ("grub:env,redundant", "no options"),
            ("uboot:env,size=0x7fffffffffffffff", "at most 0x1000000"),
            ("uboot:env,size=0x1000001", "at most 0x1000000"),
            (
                "uboot:env,offset=0xffffffffffffffff,redundant",
                "past the end",
            ),
        ] {
            let err = spec.parse::<StoreSpec>().unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }
}
