//! The join URL a device is given (`docs/fleet-enrollment.md` §1):
//! `https://HOST:PORT/?token=ID.SECRET&ca=sha256:HEX`, and the kernel argument
//! `skerry.join=…` that carries it. `token create --url https://HOST:PORT` prints it.

use crate::join_token::JoinToken;

/// The longest server base URL taken (`https://HOST:PORT`).
pub const MAX_BASE_URL: usize = 256;

/// Why `--url` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinUrlError {
    #[error("--url {0:?}: give https://HOST:PORT (the server's --tls-listen address as devices reach it), at most {MAX_BASE_URL} bytes, no path, query or spaces")]
    Base(String),
}

/// `https://HOST:PORT` checked: https, a host, no path beyond `/`, no query, fragment,
/// user info or whitespace.
pub fn check_base(base: &str) -> Result<&str, JoinUrlError> {
    let bad = || JoinUrlError::Base(base.to_string());
    if base.len() > MAX_BASE_URL {
        return Err(bad());
    }
    let rest = base.strip_prefix("https://").ok_or_else(bad)?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !ok {
        return Err(bad());
    }
    Ok(base.strip_suffix('/').unwrap_or(base))
}

/// The join URL for `token` at `base`, pinning the server CA by `ca_fingerprint`
/// (`sha256:HEX`, [`crate::pki::fingerprint`]).
pub fn join_url(
    base: &str,
    token: &JoinToken,
    ca_fingerprint: &str,
) -> Result<String, JoinUrlError> {
    let base = check_base(base)?;
    Ok(format!(
        "{base}/?token={}&ca={ca_fingerprint}",
        token.reveal()
    ))
}

/// The console-log or event sink URL (`path` is [`LOGS_PATH`] or [`EVENTS_PATH`]) a
/// device holding `token` is given as `skerry.logs=…` / `skerry.events=…`
/// (`docs/fleet-enrollment.md` §4), pinning the server CA as the join URL does.
pub fn sink_url(
    base: &str,
    path: &str,
    token: &JoinToken,
    ca_fingerprint: &str,
) -> Result<String, JoinUrlError> {
    let base = check_base(base)?;
    Ok(format!(
        "{base}{path}?token={}&ca={ca_fingerprint}",
        token.reveal()
    ))
}

/// Where a device posts its console lines.
pub const LOGS_PATH: &str = "/device/v1/logs";
/// Where a device posts its events.
pub const EVENTS_PATH: &str = "/device/v1/events";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_taken_and_refused() {
        assert_eq!(
            check_base("https://fleet.example:8471/"),
            Ok("https://fleet.example:8471")
        );
        assert_eq!(check_base("https://[::1]:8471"), Ok("https://[::1]:8471"));
        for bad in [
            "http://fleet:8471",
            "https://",
            "https://fleet/path",
            "https://fleet:1?x=1",
            "https://user@fleet",
            "https://fle et",
        ] {
            assert!(check_base(bad).is_err(), "{bad}");
        }
        assert!(check_base(&format!("https://{}", "a".repeat(300))).is_err());
    }
}
