//! The TLS part of a `--database` connection string, read the way libpq reads it, so a
//! string that works with `psql` works here: `sslmode` (`disable`, `prefer` (the
//! default), `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file of CA
//! certificates, or `system` for the Mozilla roots built in), and `sslcert` with `sslkey`
//! (PEM files: the client certificate a server with `cert` authentication asks for).
//! They are taken out of the string before the PostgreSQL client parses the rest; the
//! client knows only `disable`/`prefer`/`require` and none of the files.
//!
//! Both spellings are read: a URL (`postgres://u@h/db?sslmode=verify-full&sslrootcert=…`)
//! and key/value pairs (`host=h dbname=db sslmode=verify-full sslrootcert='/etc/ca.pem'`).

use std::path::PathBuf;

/// What libpq's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Whose certificates a verified connection trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The Mozilla root programme's CAs (`sslrootcert=system`).
    System,
    /// The CA certificates in this PEM file.
    File(PathBuf),
}

/// How the server's certificate is checked once TLS is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Not at all (libpq's `prefer` and `require` without `sslrootcert`): the link is
    /// encrypted against eavesdroppers, not against someone in the middle.
    Nothing,
    /// The chain up to one of these roots, whatever host name the certificate names.
    Chain(RootCert),
    /// The chain, and that the certificate names the host connected to.
    ChainAndName(RootCert),
}

/// The client certificate (`sslcert`, PEM, the chain from the leaf) and its key
/// (`sslkey`, PEM) the server may ask for (`cert` in its `pg_hba.conf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The TLS settings of a connection string and the rest of it, for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conninfo {
    /// The string without `sslrootcert`, `sslcert` and `sslkey`, its `sslmode` one the
    /// client knows.
    pub rest: String,
    pub mode: SslMode,
    pub verify: Verify,
    /// Presented when the server asks; never with `sslmode=disable`.
    pub client: Option<ClientCert>,
}

/// Why the TLS settings of a connection string are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConninfoError {
    #[error("sslmode={0:?} is not one of disable, prefer, require, verify-ca, verify-full")]
    UnknownMode(String),
    #[error("sslmode={0} needs sslrootcert=FILE (a PEM file of the CA certificates) or sslrootcert=system")]
    NoRootCert(&'static str),
    #[error("sslrootcert is empty")]
    EmptyRootCert,
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("sslrootcert=system trusts every public CA, so it needs sslmode=verify-full (the default with it, as in libpq 16)")]
    SystemNeedsVerifyFull,
    #[error("sslcert and sslkey go together: {0} is missing")]
    HalfClientCert(&'static str),
    #[error("{0} is given twice")]
    Twice(&'static str),
    #[error("the connection string is malformed: {0}")]
    Malformed(&'static str),
}

/// The longest connection string read.
pub const CONNINFO_LIMIT: usize = 8 * 1024;

impl Conninfo {
    /// Reads `s`, a URL or key/value pairs.
    pub fn parse(s: &str) -> Result<Self, ConninfoError> {
        if s.len() > CONNINFO_LIMIT {
            return Err(ConninfoError::Malformed("longer than 8 KiB"));
        }
        let mut found = Found::default();
        let rest = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            url_without_tls(s, &mut found)?
        } else {
            pairs_without_tls(s, &mut found)?
        };
        let system = found.root.as_deref() == Some("system");
        let mode = match found.mode.as_deref() {
            // As libpq 16: the public roots trust any name they signed, so with them
            // the default is verify-full, and weaker modes are refused below.
            None if system => SslMode::VerifyFull,
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => return Err(ConninfoError::UnknownMode(other.to_string())),
        };
        if system && mode != SslMode::VerifyFull {
            return Err(ConninfoError::SystemNeedsVerifyFull);
        }
        let root = match found.root.as_deref() {
            None => None,
            Some("") => return Err(ConninfoError::EmptyRootCert),
            Some("system") => Some(RootCert::System),
            Some(path) => Some(RootCert::File(PathBuf::from(path))),
        };
        // libpq verifies the chain whenever it has a root certificate, in every mode
        // that uses TLS, and insists on one for the verify modes.
        let verify = match (mode, root) {
            (SslMode::Disable, _) => Verify::Nothing,
            (SslMode::VerifyFull, Some(root)) => Verify::ChainAndName(root),
            (SslMode::VerifyFull, None) => return Err(ConninfoError::NoRootCert("verify-full")),
            (SslMode::VerifyCa, None) => return Err(ConninfoError::NoRootCert("verify-ca")),
            (_, Some(root)) => Verify::Chain(root),
            (_, None) => Verify::Nothing,
        };
        let client = match (found.cert, found.key) {
            (None, None) => None,
            (Some(_), None) => return Err(ConninfoError::HalfClientCert("sslkey")),
            (None, Some(_)) => return Err(ConninfoError::HalfClientCert("sslcert")),
            (Some(c), _) if c.is_empty() => return Err(ConninfoError::Empty("sslcert")),
            (_, Some(k)) if k.is_empty() => return Err(ConninfoError::Empty("sslkey")),
            (Some(cert), Some(key)) => Some(ClientCert {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
        };
        Ok(Self {
            rest: with_client_mode(rest, mode, found.url),
            mode,
            verify,
            client: client.filter(|_| mode != SslMode::Disable),
        })
    }
}

#[derive(Default)]
struct Found {
    mode: Option<String>,
    root: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    url: bool,
}

impl Found {
    /// Takes `key=value` if it is one of ours; false if it belongs to the client.
    fn take(&mut self, key: &str, value: String) -> Result<bool, ConninfoError> {
        let (slot, name) = match key {
            "sslmode" => (&mut self.mode, "sslmode"),
            "sslrootcert" => (&mut self.root, "sslrootcert"),
            "sslcert" => (&mut self.cert, "sslcert"),
            "sslkey" => (&mut self.key, "sslkey"),
            _ => return Ok(false),
        };
        if slot.replace(value).is_some() {
            return Err(ConninfoError::Twice(name));
        }
        Ok(true)
    }
}

/// The client's own `sslmode` (it knows no verify modes; those need TLS, as `require`).
fn with_client_mode(mut rest: String, mode: SslMode, url: bool) -> String {
    let client = match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
    };
    if url {
        rest.push(if rest.contains('?') { '&' } else { '?' });
    } else if !rest.is_empty() {
        rest.push(' ');
    }
    rest.push_str("sslmode=");
    rest.push_str(client);
    rest
}

fn url_without_tls(s: &str, found: &mut Found) -> Result<String, ConninfoError> {
    found.url = true;
    let (base, query) = match s.split_once('?') {
        Some((base, query)) => (base, query),
        None => (s, ""),
    };
    let mut kept = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if !found.take(&percent_decoded(key)?, percent_decoded(value)?)? {
            kept.push(param);
        }
    }
    let mut rest = base.to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok(rest)
}

fn percent_decoded(s: &str) -> Result<String, ConninfoError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(ConninfoError::Malformed(
                    "a % not followed by two hex digits",
                ))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| ConninfoError::Malformed("percent-decoded text is not UTF-8"))
}

/// Key/value pairs: `key = value`, a value optionally in single quotes with `\'` and `\\`.
fn pairs_without_tls(s: &str, found: &mut Found) -> Result<String, ConninfoError> {
    let mut kept = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(ConninfoError::Malformed("a key without '=' and a value"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(ConninfoError::Malformed("a quoted value is not closed")),
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(ConninfoError::Malformed("a quoted value is not closed"))
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if !found.take(&key, value.clone())? {
            kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            ));
        }
    }
    Ok(kept.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Conninfo {
        Conninfo::parse(s).unwrap()
    }

    #[test]
    fn a_url_keeps_the_client_s_parameters_and_gives_up_ours() {
        let c = parse("postgres://u:p%40ss@db:5433/fleet?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
        assert_eq!(
            c.rest,
            "postgres://u:p%40ss@db:5433/fleet?application_name=x&sslmode=require"
        );
        assert_eq!(c.mode, SslMode::VerifyFull);
        assert_eq!(
            c.verify,
            Verify::ChainAndName(RootCert::File("/etc/ca.pem".into()))
        );
        let plain = parse("postgresql://u@h/db");
        assert_eq!(plain.rest, "postgresql://u@h/db?sslmode=prefer");
        assert_eq!(
            (plain.mode, plain.verify),
            (SslMode::Prefer, Verify::Nothing)
        );
    }

    #[test]
    fn key_value_pairs_with_quotes_and_spaces() {
        let c = parse(
            r"host=db  dbname = 'my fleet' sslrootcert='/srv/it\'s ca.pem' sslmode=verify-ca",
        );
        assert_eq!(c.rest, "host='db' dbname='my fleet' sslmode=require");
        assert_eq!(c.mode, SslMode::VerifyCa);
        assert_eq!(
            c.verify,
            Verify::Chain(RootCert::File("/srv/it's ca.pem".into()))
        );
    }

    #[test]
    fn libpq_s_rules_for_root_certificates() {
        let with = |mode: &str, root: &str| {
            Conninfo::parse(&format!("postgres://h/db?sslmode={mode}{root}")).map(|c| c.verify)
        };
        assert_eq!(with("require", ""), Ok(Verify::Nothing));
        assert_eq!(
            with("require", "&sslrootcert=system"),
            Err(ConninfoError::SystemNeedsVerifyFull)
        );
        assert_eq!(
            Conninfo::parse("postgres://h/db?sslrootcert=system").map(|c| (c.mode, c.verify)),
            Ok((SslMode::VerifyFull, Verify::ChainAndName(RootCert::System)))
        );
        assert_eq!(
            with("prefer", "&sslrootcert=/ca"),
            Ok(Verify::Chain(RootCert::File("/ca".into())))
        );
        assert_eq!(with("disable", "&sslrootcert=/ca"), Ok(Verify::Nothing));
        assert_eq!(
            with("verify-full", ""),
            Err(ConninfoError::NoRootCert("verify-full"))
        );
        assert_eq!(
            with("verify-ca", ""),
            Err(ConninfoError::NoRootCert("verify-ca"))
        );
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let err = |s: &str| Conninfo::parse(s).unwrap_err().to_string();
        assert!(err("postgres://h/db?sslmode=allow").contains("\"allow\""));
        assert!(err("postgres://h/db?sslmode=require&sslmode=disable")
            .contains("sslmode is given twice"));
        assert!(err("postgres://h/db?sslrootcert=").contains("empty"));
        assert!(err("postgres://h/db?sslrootcert=%zz").contains("hex"));
        assert!(err("host=h dbname").contains("'='"));
        assert!(err("host='h").contains("not closed"));
        assert!(err(&"x".repeat(CONNINFO_LIMIT + 1)).contains("8 KiB"));
    }

    #[test]
    fn client_certificates_are_taken_out_in_both_spellings() {
        let want = Some(ClientCert {
            cert: "/etc/c.crt".into(),
            key: "/etc/c.key".into(),
        });
        let url =
            parse("postgres://u@h/db?sslcert=%2Fetc%2Fc.crt&sslmode=require&sslkey=%2Fetc%2Fc.key");
        assert_eq!(url.client, want);
        assert_eq!(url.rest, "postgres://u@h/db?sslmode=require");
        let pairs = parse("host=h sslcert='/etc/c.crt' sslkey=/etc/c.key dbname=db");
        assert_eq!(pairs.client, want);
        assert!(
            !pairs.rest.contains("ssl") || !pairs.rest.contains("sslcert"),
            "{}",
            pairs.rest
        );
        assert!(!pairs.rest.contains("sslkey"), "{}", pairs.rest);
        // libpq presents no certificate without TLS.
        assert_eq!(
            parse("host=h sslmode=disable sslcert=/c sslkey=/k").client,
            None
        );
        let err = |s: &str| Conninfo::parse(s).unwrap_err().to_string();
        assert!(err("host=h sslcert=/c").contains("sslkey is missing"));
        assert!(err("host=h sslkey=/k").contains("sslcert is missing"));
        assert!(err("host=h sslcert='' sslkey=/k").contains("sslcert is empty"));
        assert!(err("host=h sslcert=/c sslcert=/d sslkey=/k").contains("sslcert is given twice"));
    }
}
