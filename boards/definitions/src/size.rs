//! Sizes as definitions write them: a whole number and a binary unit, `"64MiB"`.
//!
//! Only `B`, `KiB`, `MiB`, `GiB` and `TiB` are accepted: `"64MB"` is refused rather than
//! guessed (decimal or binary?), and so are fractions, signs and spaces.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest size any definition may name (16 TiB): every disk Skerry targets is far
/// smaller, and sums of partition sizes stay well inside a `u64`.
pub const MAX_SIZE: u64 = 16 << 40;

/// The longest size string read (digits and unit).
pub const MAX_SIZE_TEXT: usize = 24;

const UNITS: [(&str, u64); 5] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("B", 1),
];

/// A byte count of at most [`MAX_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(u64);

/// Why a size string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid size {text:?}: {reason}")]
pub struct SizeError {
    /// The text as given (cut to [`MAX_SIZE_TEXT`] characters).
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Size {
    /// A size of `bytes`, if it is at most [`MAX_SIZE`].
    pub fn from_bytes(bytes: u64) -> Option<Self> {
        (bytes <= MAX_SIZE).then_some(Size(bytes))
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for Size {
    type Err = SizeError;

    fn from_str(text: &str) -> Result<Self, SizeError> {
        let fail = |reason: &str| SizeError {
            text: text.chars().take(MAX_SIZE_TEXT).collect(),
            reason: reason.to_owned(),
        };
        if text.len() > MAX_SIZE_TEXT {
            return Err(fail("too long for a size"));
        }
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = text.split_at(digits);
        if number.is_empty() {
            return Err(fail(
                "expected a whole number followed by B, KiB, MiB, GiB or TiB",
            ));
        }
        if number.len() > 1 && number.starts_with('0') {
            return Err(fail("leading zeros are not allowed"));
        }
        let multiplier = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                fail("the unit must be B, KiB, MiB, GiB or TiB (binary units; MB or GB are ambiguous)")
            })?;
        let bytes = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(multiplier))
            .filter(|b| *b <= MAX_SIZE)
            .ok_or_else(|| fail("larger than 16TiB"))?;
        Ok(Size(bytes))
    }
}

impl fmt::Display for Size {
    /// The largest unit that divides the size exactly, so `Display` and `FromStr` round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, multiplier) = UNITS
            .iter()
            .find(|(_, m)| self.0 != 0 && self.0 % m == 0)
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / multiplier)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_units() {
        for (text, bytes) in [
            ("0B", 0),
            ("512B", 512),
            ("4KiB", 4096),
            ("64MiB", 64 << 20),
            ("2GiB", 2 << 30),
            ("16TiB", 16 << 40),
        ] {
            assert_eq!(text.parse::<Size>().unwrap().bytes(), bytes, "{text}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        for (text, needle) in [
            ("", "whole number"),
            ("MiB", "whole number"),
            ("64", "unit must be"),
            ("64MB", "ambiguous"),
            ("64 MiB", "unit must be"),
            ("1.5GiB", "unit must be"),
            ("-1MiB", "whole number"),
            ("064MiB", "leading zeros"),
            ("17TiB", "larger than"),
            ("99999999999999999999B", "larger than"),
            ("1234567890123456789012345MiB", "too long"),
        ] {
            let err = text.parse::<Size>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["0B", "1536KiB", "64MiB", "3GiB", "1TiB", "513B"] {
            let size: Size = text.parse().unwrap();
            assert_eq!(size.to_string(), text);
        }
    }
}
