//! `skerryctl boot set-device-args`: the per-device kernel arguments (`skerry.join=…`,
//! `skerry.logs=…`, `skerry.events=…`) that cannot live in a signed slot image, kept in
//! the boot environment as `SKERRY_DEVICE_ARGS`. The boot script appends them only when
//! they match its filter (docs/os-image.md); this command refuses anything the filter
//! would drop, so what an operator sets is what the kernel gets.

use anyhow::{bail, Context};
use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{FileMedium, StoreSpec};

/// The environment variable the boot script reads.
pub const VARIABLE: &str = "SKERRY_DEVICE_ARGS";
/// The most bytes of arguments taken: the whole GRUB block is 1024 bytes and also
/// holds the boot state.
pub const MAX_BYTES: usize = 512;

/// Checks `args` word by word against the boot script's rule: `skerry.KEY=VALUE`, the
/// key `[a-z][a-z0-9_.]*`, the value plain URL characters, one space between words.
pub fn check(args: &str) -> anyhow::Result<()> {
    if args.len() > MAX_BYTES {
        bail!(
            "the device arguments are {} bytes; at most {MAX_BYTES} fit beside the boot state",
            args.len()
        );
    }
    if args.is_empty() {
        bail!("no device arguments given (use --clear to remove them)");
    }
    for (i, word) in args.split(' ').enumerate() {
        let n = i + 1;
        let Some(rest) = word.strip_prefix("skerry.") else {
            bail!("argument {n} ({word:?}) is not a skerry.* key: only skerry.KEY=VALUE reaches the kernel");
        };
        let Some((key, value)) = rest.split_once('=') else {
            bail!("argument {n} ({word:?}) has no '=VALUE'");
        };
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        if !first_ok
            || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        {
            bail!("argument {n}: key skerry.{key:?} must be a lowercase letter, then lowercase letters, digits, '_' or '.'");
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._:/?&=%+@,-".contains(*c)))
        {
            bail!("argument {n}: the value of skerry.{key} holds {bad:?}; only letters, digits and ._:/?&=%+@,- are passed (percent-encode the rest)");
        }
    }
    Ok(())
}

/// Sets (or with `None` removes) the device arguments in a GRUB store, in one
/// power-safe commit beside the boot state.
pub fn set(spec: &StoreSpec, args: Option<&str>) -> anyhow::Result<()> {
    let StoreSpec::Grub { path } = spec else {
        bail!("{spec}: device arguments are kept in a GRUB environment (grub:PATH) only; this board's boot script reads no other store yet");
    };
    if let Some(args) = args {
        check(args)?;
    }
    let medium = FileMedium::open(path).with_context(|| format!("opening {spec}"))?;
    GrubEnvStore::new(medium)
        .commit_variables(&[(VARIABLE, args)])
        .with_context(|| format!("writing {VARIABLE} into {spec}"))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn the_boot_scripts_rule_is_kept() {
        check("skerry.join=https://fleet.example.com/join?token=abc%20d").unwrap();
        check("skerry.join=x skerry.logs=tcp://10.0.0.1:514").unwrap();
        for bad in [
            "init=/bin/sh",
            "skerry.join=x init=/bin/sh",
            "skerry.join=\"x y\"",
            "skerry.join=x  skerry.logs=y",
            "skerry.Join=x",
            "skerry.join",
            "skerry.=x",
            "skerry.join=a;b",
            "",
        ] {
            assert!(check(bad).is_err(), "{bad:?} was taken");
        }
        assert!(check(&format!("skerry.join={}", "a".repeat(600))).is_err());
    }
}
