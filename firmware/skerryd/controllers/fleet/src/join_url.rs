//! The join URL (`docs/fleet-enrollment.md` §1):
//! `https://HOST:PORT/?token=ID.SECRET&ca=sha256:HEX`, from the device config
//! (`fleet.join`) or the kernel command line (`skerry.join=…`).

use crate::enrollment::EnrollError;

/// The longest join URL taken.
pub const MAX_JOIN_URL: usize = 512;

/// A parsed join URL.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinUrl {
    /// `https://HOST:PORT`
    pub server: String,
    pub host: String,
    pub port: u16,
    pub token: String,
    /// SHA-256 of the server CA's DER.
    pub ca_sha256: [u8; 32],
}

impl std::fmt::Debug for JoinUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinUrl")
            .field("server", &self.server)
            .field("token", &"<secret>")
            .finish_non_exhaustive()
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl JoinUrl {
    pub fn parse(text: &str) -> Result<Self, EnrollError> {
        match parse_pinned(text) {
            Ok((join, "/")) => Ok(join),
            Ok(_) => Err(EnrollError::Url("no /?query".into())),
            Err(why) => Err(EnrollError::Url(why)),
        }
    }

    /// The join URL of a kernel command line (`skerry.join=…`), if any.
    pub fn from_cmdline(cmdline: &str) -> Option<&str> {
        cmdline
            .split_ascii_whitespace()
            .rev()
            .find_map(|arg| arg.strip_prefix("skerry.join="))
    }
}

/// `https://HOST:PORT/PATH?token=ID.SECRET&ca=sha256:HEX` taken apart: the server,
/// token and pin (as a [`JoinUrl`]) and the path (`/` for a join URL, the route for a
/// log or event sink). The error says what is wrong.
pub(crate) fn parse_pinned(text: &str) -> Result<(JoinUrl, &str), String> {
    let bad = |why: &str| why.to_string();
    if text.len() > MAX_JOIN_URL {
        return Err(bad("longer than 512 bytes"));
    }
    let rest = text
        .strip_prefix("https://")
        .ok_or_else(|| bad("not https://"))?;
    let (location, query) = rest.split_once('?').ok_or_else(|| bad("no /?query"))?;
    let (authority, path) = location
        .find('/')
        .map(|at| location.split_at(at))
        .ok_or_else(|| bad("no /?query"))?;
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        return Err(bad("the path is not plain /words"));
    }
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| bad("no :PORT after the host"))?;
    let port: u16 = port.parse().map_err(|_| bad("the port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
    {
        return Err(bad("the host is not a name or an address"));
    }
    let mut token = None;
    let mut ca = None;
    for kv in query.split('&') {
        if let Some(t) = kv.strip_prefix("token=") {
            token = Some(t.to_string());
        } else if let Some(c) = kv.strip_prefix("ca=") {
            let hex = c
                .strip_prefix("sha256:")
                .ok_or_else(|| bad("ca= is not sha256:HEX"))?;
            ca = Some(hex32(hex).ok_or_else(|| bad("ca=sha256: needs 64 lowercase hex digits"))?);
        }
    }
    let token = token.ok_or_else(|| bad("no token="))?;
    if token.is_empty()
        || token.len() > 96
        || !token.bytes().all(|b| b.is_ascii_hexdigit() || b == b'.')
    {
        return Err(bad("token= is not ID.SECRET"));
    }
    let join = JoinUrl {
        server: format!("https://{authority}"),
        host: host.to_string(),
        port,
        token,
        ca_sha256: ca.ok_or_else(|| bad("no ca=sha256:HEX"))?,
    };
    Ok((join, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_urls_parse_and_bad_ones_say_why() {
        let ca = "ab".repeat(32);
        let tok = format!("{}.{}", "1".repeat(16), "2".repeat(64));
        let j = JoinUrl::parse(&format!(
            "https://fleet.example:8471/?token={tok}&ca=sha256:{ca}"
        ))
        .unwrap();
        assert_eq!(
            (j.host.as_str(), j.port, j.token.as_str()),
            ("fleet.example", 8471, tok.as_str())
        );
        assert_eq!(j.ca_sha256, [0xab; 32]);
        assert!(!format!("{j:?}").contains(&tok));
        for (bad, why) in [
            (format!("http://h:1/?token={tok}&ca=sha256:{ca}"), "https"),
            (format!("https://h/?token={tok}&ca=sha256:{ca}"), "PORT"),
            (format!("https://h:1/?token={tok}"), "ca="),
            (format!("https://h:1/?ca=sha256:{ca}"), "token="),
            (
                format!("https://h:1/?token={tok}&ca=sha256:{}", "AB".repeat(32)),
                "hex",
            ),
            (
                format!("https://h:1/?token={tok}&ca=sha256:{ca}{}", "x".repeat(600)),
                "512",
            ),
        ] {
            let e = JoinUrl::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert_eq!(
            JoinUrl::from_cmdline(
                "quiet skerry.join=https://a:1/?x root=/dev/sda skerry.join=https://b:2/?y"
            ),
            Some("https://b:2/?y")
        );
        assert_eq!(JoinUrl::from_cmdline("quiet"), None);
    }
}
