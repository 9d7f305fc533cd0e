//! The operator bearer token: made at first start in `DIR/keys/operator.token` (mode
//! 0600, 32 random bytes as hex), compared in constant time.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The token an operator request must carry as `Authorization: Bearer …`.
pub struct OperatorToken(String);

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(…)")
    }
}

/// The file's name inside the data directory's `keys/`.
pub const TOKEN_FILE: &str = "operator.token";

impl OperatorToken {
    /// Reads the token at `path`, creating it (0600) if there is none.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let token = text.trim().to_string();
                if token.len() < 32 {
                    return Err(std::io::Error::other(format!(
                        "{}: the operator token is shorter than 32 characters; delete it to have a new one made",
                        path.display()
                    )));
                }
                Ok(Self(token))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut raw = [0u8; 32];
                std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
                let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(token.as_bytes())?;
                file.write_all(b"\n")?;
                file.sync_all()?;
                Ok(Self(token))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `Authorization` carries this token; the comparison takes the same time
    /// wherever the first difference is.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_eq(given.trim().as_bytes(), self.0.as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u8 | u8::from(a.len() != b.len());
    for (i, x) in b.iter().enumerate() {
        diff |= a.get(i).copied().unwrap_or(0) ^ x;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_0600_and_compared_exactly() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join(TOKEN_FILE);
        let t = OperatorToken::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = OperatorToken::load_or_create(&path).unwrap();
        assert_eq!(t.0, again.0, "a restart keeps the token");
        assert!(t.admits(Some(&format!("Bearer {}", t.0))));
        assert!(!t.admits(Some(&format!("Bearer {}x", t.0))));
        assert!(!t.admits(Some(&format!("Bearer {}", &t.0[..63]))));
        assert!(!t.admits(Some(&t.0)));
        assert!(!t.admits(None));
    }
}
