//! The GRUB environment block, as `grub-editenv` and GRUB's `load_env`/`save_env` lay
//! it out: a file (1024 bytes when `grub-editenv` creates it) that starts with
//! `# GRUB Environment Block\n`, then `name=value\n` lines, padded with `#` to its size.
//! Lines starting with `#` are comments. In values a backslash escapes the next byte, so
//! `\` is written `\\` and a newline `\` followed by a newline.

use crate::uboot::vars::Vars;

/// The first bytes of every GRUB environment block.
pub const SIGNATURE: &[u8] = b"# GRUB Environment Block\n";

/// The size `grub-editenv create` gives a new block.
pub const DEFAULT_SIZE: usize = 1024;

/// Why bytes are not a valid GRUB environment block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("it does not start with {:?}", String::from_utf8_lossy(SIGNATURE))]
    NoSignature,
    #[error("the line at byte {at} has no '='")]
    NoEquals { at: usize },
    #[error("the line at byte {at} has an empty name")]
    EmptyName { at: usize },
    #[error("the value of {name:?} runs past the end of the block")]
    Unterminated { name: String },
    #[error("variable {name:?} appears twice")]
    Duplicate { name: String },
    #[error("variable {name:?} cannot be stored: names must not be empty or contain '=', newline or '#' first")]
    Unstorable { name: String },
    #[error("the variables need {needed} bytes but the block holds only {size}")]
    Full { needed: usize, size: usize },
}

/// Decodes a whole block.
pub fn decode(bytes: &[u8]) -> Result<Vars, BlockError> {
    if !bytes.starts_with(SIGNATURE) {
        return Err(BlockError::NoSignature);
    }
    let mut vars = Vars::default();
    let mut at = SIGNATURE.len();
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest[0] == b'#' {
            at += rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| p + 1);
            continue;
        }
        let eq = rest
            .iter()
            .position(|&b| b == b'=' || b == b'\n')
            .filter(|&p| rest[p] == b'=')
            .ok_or(BlockError::NoEquals { at })?;
        if eq == 0 {
            return Err(BlockError::EmptyName { at });
        }
        let name = rest[..eq].to_vec();
        let (value, used) = unescape(&rest[eq + 1..]).ok_or_else(|| BlockError::Unterminated {
            name: String::from_utf8_lossy(&name).into_owned(),
        })?;
        if vars.get_bytes(&name).is_some() {
            return Err(BlockError::Duplicate {
                name: String::from_utf8_lossy(&name).into_owned(),
            });
        }
        vars.push(name, value);
        at += eq + 1 + used;
    }
    Ok(vars)
}

/// Reads a value up to its unescaped newline; returns it and the bytes used (newline
/// included), or `None` if no newline ends it.
fn unescape(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut value = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\n' => return Some((value, i + 1)),
            b'\\' => {
                value.push(*raw.get(i + 1)?);
                i += 2;
            }
            b => {
                value.push(b);
                i += 1;
            }
        }
    }
    None
}

/// Encodes `vars` as a block of exactly `size` bytes.
pub fn encode(vars: &Vars, size: usize) -> Result<Vec<u8>, BlockError> {
    let mut out = SIGNATURE.to_vec();
    for (name, value) in vars.iter() {
        if name.is_empty() || name[0] == b'#' || name.contains(&b'=') || name.contains(&b'\n') {
            return Err(BlockError::Unstorable {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        out.extend_from_slice(name);
        out.push(b'=');
        for &b in value {
            if b == b'\\' || b == b'\n' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'\n');
    }
    if out.len() > size {
        return Err(BlockError::Full {
            needed: out.len(),
            size,
        });
    }
    out.resize(size, b'#');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_escapes() {
        let mut v = Vars::default();
        v.set("ORDER", "A B");
        v.set("odd", "back\\slash\nnew line");
        v.set("empty", "");
        let bytes = encode(&v, DEFAULT_SIZE).unwrap();
        assert_eq!(bytes.len(), DEFAULT_SIZE);
        assert!(bytes.ends_with(b"##"));
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("odd=back\\\\slash\\\nnew line\n"), "{text}");
        assert_eq!(decode(&bytes).unwrap(), v);
    }

    #[test]
    fn comments_are_skipped() {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(b"# WARNING: a comment\na=1\n####");
        let v = decode(&bytes).unwrap();
        assert_eq!(v.get("a"), Some(Ok("1")));
    }

    #[test]
    fn hostile_blocks_get_typed_errors() {
        let with_sig = |body: &[u8]| {
            let mut b = SIGNATURE.to_vec();
            b.extend_from_slice(body);
            b
        };
        assert_eq!(decode(b"# GRUB"), Err(BlockError::NoSignature));
        assert!(matches!(
            decode(&with_sig(b"abc\n")),
            Err(BlockError::NoEquals { .. })
        ));
        assert!(matches!(
            decode(&with_sig(b"=1\n")),
            Err(BlockError::EmptyName { .. })
        ));
        assert!(matches!(
            decode(&with_sig(b"a=1")),
            Err(BlockError::Unterminated { .. })
        ));
        assert!(matches!(
            decode(&with_sig(b"a=1\\")),
            Err(BlockError::Unterminated { .. })
        ));
        assert!(matches!(
            decode(&with_sig(b"a=1\na=2\n")),
            Err(BlockError::Duplicate { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_storable_vars_round_trip(
            entries in proptest::collection::btree_map(
                "[A-Za-z0-9_][A-Za-z0-9_.:-]{0,11}", proptest::collection::vec(proptest::num::u8::ANY, 0..40), 0..8),
        ) {
            let mut vars = Vars::default();
            for (name, value) in &entries {
                vars.push(name.as_bytes().to_vec(), value.clone());
            }
            let bytes = encode(&vars, 4096).unwrap();
            proptest::prop_assert_eq!(decode(&bytes).unwrap(), vars);
        }

        #[test]
        fn any_bytes_decode_without_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode(&body);
            let mut bytes = SIGNATURE.to_vec();
            bytes.extend_from_slice(&body);
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn full_block_is_refused() {
        let mut v = Vars::default();
        v.set("x", &"y".repeat(DEFAULT_SIZE));
        assert!(matches!(
            encode(&v, DEFAULT_SIZE),
            Err(BlockError::Full { .. })
        ));
    }
}
