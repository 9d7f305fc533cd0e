//! The GRUB environment block, as `grub-editenv` and GRUB's `load_env`/`save_env` lay
//! it out: a file (1024 bytes when `grub-editenv` creates it) that starts with
//! `# GRUB Environment Block\n`, then `name=value\n` lines, padded with `#` to its size.
//! Lines starting with `#` are comments. In values a backslash escapes the next byte, so
//! `\` is written `\\` and a newline `\` followed by a newline.
//!
//! # Generations, for telling a torn block
//! GRUB's `save_env` and our store rewrite the block in place, sector by sector, so a
//! power cut can leave one sector new and the other old. Blocks Skerry writes carry the
//! same generation twice ([`encode_with_generation`]): `SKERRY_GEN_HEAD` as the first
//! variable (first sector) and `SKERRY_GEN_TAIL` on a line near the end (last sector),
//! followed by [`TAIL_ROOM`] bytes of `#` padding, the free space `grub-editenv` and
//! GRUB add variables in. Every rewrite changes the generation, so head and tail differ
//! exactly when a two-sector block is torn. To GRUB, `grub-editenv` and RAUC they are
//! ordinary variables and the padding before the tail an ordinary comment.

use crate::rauc::vars::Vars;

/// The first bytes of every GRUB environment block.
pub const SIGNATURE: &[u8] = b"# GRUB Environment Block\n";

/// The size `grub-editenv create` gives a new block.
pub const DEFAULT_SIZE: usize = 1024;

/// The generation at the head of a block Skerry wrote.
pub const GEN_HEAD: &str = "SKERRY_GEN_HEAD";
/// The generation at the tail of a block Skerry wrote.
pub const GEN_TAIL: &str = "SKERRY_GEN_TAIL";
/// Free bytes left after the tail line, where `grub-editenv set` puts a new variable.
pub const TAIL_ROOM: usize = 64;

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

/// Encodes `vars` (without the generation variables) as a block of exactly `size`
/// bytes with `generation` at its head and its tail (see the module docs).
pub fn encode_with_generation(
    vars: &Vars,
    size: usize,
    generation: u8,
) -> Result<Vec<u8>, BlockError> {
    let mut body = Vars::default();
    body.set(GEN_HEAD, &generation.to_string());
    for (name, value) in vars.iter() {
        if name != GEN_HEAD.as_bytes() && name != GEN_TAIL.as_bytes() {
            body.push(name.to_vec(), value.to_vec());
        }
    }
    let tail = format!("{GEN_TAIL}={generation}\n");
    let tail_at = size.checked_sub(TAIL_ROOM + tail.len());
    let mut out = encode(&body, tail_at.unwrap_or(0))?;
    let Some(tail_at) = tail_at else {
        return Err(BlockError::Full {
            needed: out.len() + TAIL_ROOM + tail.len(),
            size,
        });
    };
    // `encode` padded with `#` up to the tail; end that comment line before the tail.
    // Content that leaves no room for "#\n" does not fit.
    let content = out.iter().rposition(|&b| b != b'#').map_or(0, |p| p + 1);
    if tail_at - content < 2 {
        return Err(BlockError::Full {
            needed: content + 2 + tail.len() + TAIL_ROOM,
            size,
        });
    }
    out[tail_at - 1] = b'\n';
    out.extend_from_slice(tail.as_bytes());
    out.resize(size, b'#');
    Ok(out)
}

/// The generations at the head and the tail of a block (`None` where absent).
pub fn generations(vars: &Vars) -> (Option<&[u8]>, Option<&[u8]>) {
    (
        vars.get_bytes(GEN_HEAD.as_bytes()),
        vars.get_bytes(GEN_TAIL.as_bytes()),
    )
}

/// Whether the block's head and tail were written together: both generations agree, or
/// the block carries none (written by other tools).
pub fn is_whole(vars: &Vars) -> bool {
    let (head, tail) = generations(vars);
    head == tail
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
    fn generations_sit_in_the_first_and_last_sector() {
        let mut v = Vars::default();
        v.set("ORDER", "A B");
        let bytes = encode_with_generation(&v, DEFAULT_SIZE, 2).unwrap();
        assert_eq!(bytes.len(), DEFAULT_SIZE);
        let head = b"SKERRY_GEN_HEAD=2\n";
        assert_eq!(&bytes[SIGNATURE.len()..SIGNATURE.len() + head.len()], head);
        let tail = b"\nSKERRY_GEN_TAIL=2\n";
        let at = DEFAULT_SIZE - TAIL_ROOM - tail.len();
        assert!(at >= 512);
        assert_eq!(&bytes[at..at + tail.len()], tail);
        assert!(bytes[DEFAULT_SIZE - TAIL_ROOM..].iter().all(|&b| b == b'#'));
        let back = decode(&bytes).unwrap();
        assert!(is_whole(&back));
        assert_eq!(back.get("ORDER"), Some(Ok("A B")));
        // A torn rewrite: the first sector of generation 0, the last of generation 2.
        let mut torn = encode_with_generation(&v, DEFAULT_SIZE, 0).unwrap();
        torn[512..].copy_from_slice(&bytes[512..]);
        assert!(!is_whole(&decode(&torn).unwrap()));
    }

    #[test]
    fn generation_block_that_does_not_fit_is_refused() {
        let mut v = Vars::default();
        v.set("x", &"y".repeat(DEFAULT_SIZE - 120));
        assert!(matches!(
            encode_with_generation(&v, DEFAULT_SIZE, 0),
            Err(BlockError::Full { .. })
        ));
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
