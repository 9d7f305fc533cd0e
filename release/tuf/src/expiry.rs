//! Expiry dates (`"2027-01-01T00:00:00Z"`, UTC, whole seconds) and human durations.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::TufError;

/// A metadata expiry instant, serialized as TUF's `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expiry(pub SystemTime);

impl Expiry {
    /// `now + duration`, truncated to whole seconds.
    pub fn after(now: SystemTime, duration: Duration) -> Self {
        let at = now + duration;
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Expiry(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Parses TUF's expiry format.
    pub fn parse(value: &str) -> Result<Self, TufError> {
        if !value.ends_with('Z') {
            return Err(TufError::BadExpiry {
                value: value.into(),
                reason: "must be UTC and end in Z".into(),
            });
        }
        humantime::parse_rfc3339(value)
            .map(Expiry)
            .map_err(|e| TufError::BadExpiry {
                value: value.into(),
                reason: e.to_string(),
            })
    }

    /// True once `now` is at or past the expiry.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.0
    }
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for Expiry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Expiry::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Parses a duration such as `365d`, `12h`, `30m`, `1d 12h`.
pub fn parse_duration(value: &str) -> Result<Duration, TufError> {
    humantime::parse_duration(value).map_err(|e| TufError::BadExpiry {
        value: value.into(),
        reason: format!("not a duration like 365d or 12h ({e})"),
    })
}

/// Formats a time for messages.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_compares() {
        let e = Expiry::parse("2030-01-02T03:04:05Z").unwrap();
        assert_eq!(e.to_string(), "2030-01-02T03:04:05Z");
        assert!(!e.is_expired(Expiry::parse("2030-01-02T03:04:04Z").unwrap().0));
        assert!(e.is_expired(e.0));
        assert!(Expiry::parse("2030-01-02T03:04:05+01:00").is_err());
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("soon").is_err());
    }
}
