//! Where the console log and the events go: the kernel arguments `skerry.logs=` and
//! `skerry.events=` (`docs/fleet-enrollment.md` §4), each
//! `https://HOST:PORT/PATH?token=ID.SECRET&ca=sha256:HEX`.

use crate::join_url::{parse_pinned, JoinUrl};

/// What a sink takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// Console lines, `\n`-separated.
    Logs,
    /// JSON lines, one event each.
    Events,
}

impl SinkKind {
    /// The kernel argument naming this sink.
    pub fn argument(self) -> &'static str {
        match self {
            SinkKind::Logs => "skerry.logs",
            SinkKind::Events => "skerry.events",
        }
    }
}

/// A parsed sink URL: the server, token and CA pin, and the route posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkUrl {
    pub at: JoinUrl,
    pub path: String,
}

impl SinkUrl {
    /// Parses `text`; the error names what is wrong.
    pub fn parse(kind: SinkKind, text: &str) -> Result<Self, String> {
        let (at, path) = parse_pinned(text).map_err(|why| {
            format!(
                "{}= {why} (expected https://HOST:PORT/PATH?token=ID.SECRET&ca=sha256:HEX)",
                kind.argument()
            )
        })?;
        Ok(SinkUrl {
            path: path.to_owned(),
            at,
        })
    }

    /// The sink of `kind` a kernel command line names (the last one wins, as the
    /// kernel's own parameters do): `None` when none is given.
    pub fn from_cmdline(kind: SinkKind, cmdline: &str) -> Option<Result<Self, String>> {
        let prefix = format!("{}=", kind.argument());
        cmdline
            .split_ascii_whitespace()
            .rev()
            .find_map(|arg| arg.strip_prefix(prefix.as_str()))
            .map(|text| Self::parse(kind, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinks_parse_from_the_command_line_and_bad_ones_say_why() {
        let ca = "cd".repeat(32);
        let tok = format!("{}.{}", "a".repeat(16), "b".repeat(64));
        let line = format!(
            "quiet skerry.logs=https://fleet:8471/device/v1/logs?token={tok}&ca=sha256:{ca} skerry.slot=A"
        );
        let logs = SinkUrl::from_cmdline(SinkKind::Logs, &line)
            .unwrap()
            .unwrap();
        assert_eq!(logs.path, "/device/v1/logs");
        assert_eq!((logs.at.host.as_str(), logs.at.port), ("fleet", 8471));
        assert_eq!(logs.at.token, tok);
        assert_eq!(logs.at.ca_sha256, [0xcd; 32]);
        assert!(SinkUrl::from_cmdline(SinkKind::Events, &line).is_none());
        for (bad, why) in [
            (format!("http://h:1/p?token={tok}&ca=sha256:{ca}"), "https"),
            (format!("https://h:1/p?token={tok}"), "ca="),
            (format!("https://h:1/p?ca=sha256:{ca}"), "token="),
            (
                format!("https://h:1/p%2e?token={tok}&ca=sha256:{ca}"),
                "path",
            ),
            (format!("https://h:1?token={tok}&ca=sha256:{ca}"), "/?query"),
        ] {
            let e = SinkUrl::parse(SinkKind::Events, &bad).unwrap_err();
            assert!(
                e.contains(why) && e.contains("skerry.events="),
                "{bad}: {e}"
            );
        }
    }
}
