//! The kernel command line as PID 1 reads it: only `skerry.*` keys count, each key
//! `skerry.[a-z][a-z0-9_.]*` with a plain value (the same rule `grub.cfg` applies to
//! the per-device arguments, docs/os-image.md), at most one value per key (the last
//! wins, as the kernel's own parameters do). Everything else the kernel took is ignored.

use std::collections::BTreeMap;

/// The longest command line read (the kernel's own limit on x86 is 2048).
pub const MAX_CMDLINE: usize = 4096;
/// The most `skerry.*` keys kept.
pub const MAX_KEYS: usize = 32;

/// The `skerry.*` keys of a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    keys: BTreeMap<String, String>,
    /// `skerry.*` words refused (bad key or value), for a console line.
    pub refused: Vec<String>,
}

fn valid_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("skerry.") else {
        return false;
    };
    let mut chars = rest.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.'))
        && key.len() <= 64
}

fn valid_value(value: &str) -> bool {
    value.len() <= 1024
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._:/?&=%+@,-".contains(c))
}

impl Cmdline {
    /// Parses `text` (`/proc/cmdline`), keeping the valid `skerry.*` keys.
    pub fn parse(text: &str) -> Cmdline {
        let text = &text[..floor_char_boundary(text, MAX_CMDLINE)];
        let mut cmdline = Cmdline::default();
        for word in text.split_ascii_whitespace() {
            if !word.starts_with("skerry.") {
                continue;
            }
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            let room = cmdline.keys.len() < MAX_KEYS || cmdline.keys.contains_key(key);
            if valid_key(key) && valid_value(value) && room {
                cmdline.keys.insert(key.to_owned(), value.to_owned());
            } else if cmdline.refused.len() < MAX_KEYS {
                cmdline.refused.push(word.chars().take(80).collect());
            }
        }
        cmdline
    }

    /// The value of `skerry.NAME`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.keys.get(&format!("skerry.{name}")).map(String::as_str)
    }

    /// The slot the bootloader started (`skerry.slot=`), if named.
    pub fn slot(&self) -> Option<&str> {
        self.get("slot").filter(|s| !s.is_empty() && s.len() <= 16)
    }
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_skerry_keys_with_plain_values() {
        let cmdline = Cmdline::parse(
            "BOOT_IMAGE=/boot/vmlinuz skerry.slot=A console=ttyS0,115200 panic=10 ro \
             skerry.join=https://disc.example/j?t=abc%20&x=1 init=/bin/sh skerry.Logs=x \
             skerry.events=\"quoted\" skerry.=1 skerry.logs=udp:10.0.0.1:514\n",
        );
        assert_eq!(cmdline.slot(), Some("A"));
        assert_eq!(
            cmdline.get("join"),
            Some("https://disc.example/j?t=abc%20&x=1")
        );
        assert_eq!(cmdline.get("logs"), Some("udp:10.0.0.1:514"));
        assert_eq!(cmdline.get("events"), None);
        assert_eq!(cmdline.get("init"), None);
        assert_eq!(
            cmdline.refused,
            vec!["skerry.Logs=x", "skerry.events=\"quoted\"", "skerry.=1"]
        );
    }

    #[test]
    fn last_value_wins_and_keys_are_bounded() {
        assert_eq!(
            Cmdline::parse("skerry.slot=A skerry.slot=B").slot(),
            Some("B")
        );
        assert_eq!(Cmdline::parse("skerry.slot=").slot(), None);
        let many: String = (0..100).map(|i| format!("skerry.k{i}=v ")).collect();
        let cmdline = Cmdline::parse(&many);
        assert_eq!(cmdline.keys.len(), MAX_KEYS);
        assert_eq!(cmdline.refused.len(), MAX_KEYS);
        let long = format!("skerry.slot=A {}", "x".repeat(10_000));
        assert_eq!(Cmdline::parse(&long).slot(), Some("A"));
    }
}
