//! Where the console log and the events go: the kernel arguments `skerry.logs=` and
//! `skerry.events=` (`docs/fleet-enrollment.md` §4), each
//! `https://HOST:PORT/PATH?token=ID.SECRET&ca=sha256:HEX`, or only `/PATH`: that path on
//! the server of the command line's `skerry.join=`, with its token and pin. The short
//! form is for bootloaders that keep few bytes of kernel arguments (a GRUB board keeps
//! 512 for the device's own): the join URL and two full sink URLs do not fit there, the
//! join URL and two paths do.

use crate::join_url::{parse_pinned, JoinUrl};

/// The longest `/PATH` taken in the short form.
pub const MAX_SINK_PATH: usize = 128;

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
            .map(|text| match text.starts_with('/') {
                true => Self::beside_join(kind, text, cmdline),
                false => Self::parse(kind, text),
            })
    }

    /// The short form `/PATH`: on the server of the command line's `skerry.join=`.
    fn beside_join(kind: SinkKind, path: &str, cmdline: &str) -> Result<Self, String> {
        let arg = kind.argument();
        if path.len() > MAX_SINK_PATH
            || !path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        {
            return Err(format!(
                "{arg}= /PATH is not plain /words of at most {MAX_SINK_PATH} bytes"
            ));
        }
        let join = JoinUrl::from_cmdline(cmdline).ok_or_else(|| {
            format!("{arg}={path} is a path on the skerry.join= server, and the kernel command line has no skerry.join=")
        })?;
        let at = JoinUrl::parse(join).map_err(|e| format!("{arg}={path}: skerry.join= {e}"))?;
        Ok(SinkUrl {
            at,
            path: path.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_alone_uses_the_join_urls_server_token_and_pin() {
        let ca = "cd".repeat(32);
        let tok = format!("{}.{}", "a".repeat(16), "b".repeat(64));
        let join = format!("skerry.join=https://fleet:8471/?token={tok}&ca=sha256:{ca}");
        let line =
            format!("quiet {join} skerry.logs=/device/v1/logs skerry.events=/device/v1/events");
        let logs = SinkUrl::from_cmdline(SinkKind::Logs, &line)
            .unwrap()
            .unwrap();
        let events = SinkUrl::from_cmdline(SinkKind::Events, &line)
            .unwrap()
            .unwrap();
        assert_eq!(
            (logs.path.as_str(), events.path.as_str()),
            ("/device/v1/logs", "/device/v1/events")
        );
        for sink in [&logs, &events] {
            assert_eq!((sink.at.host.as_str(), sink.at.port), ("fleet", 8471));
            assert_eq!(sink.at.token, tok);
            assert_eq!(sink.at.ca_sha256, [0xcd; 32]);
        }
        // All three fit a GRUB board's 512 bytes of device arguments.
        assert!(line.len() < 512, "{} bytes", line.len());

        for (bad, why) in [
            (
                "skerry.logs=/device/v1/logs".to_string(),
                "has no skerry.join=",
            ),
            (
                format!("skerry.join=https://fleet:8471/?token={tok} skerry.logs=/l"),
                "no ca=sha256",
            ),
            (format!("{join} skerry.logs=/a?b"), "plain /words"),
            (
                format!("{join} skerry.logs=/{}", "a".repeat(MAX_SINK_PATH)),
                "at most",
            ),
        ] {
            let err = SinkUrl::from_cmdline(SinkKind::Logs, &bad)
                .unwrap()
                .unwrap_err();
            assert!(
                err.contains(why) && err.contains("skerry.logs="),
                "{bad}: {err}"
            );
        }
    }

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
