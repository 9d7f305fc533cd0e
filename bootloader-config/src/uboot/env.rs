//! One copy of a U-Boot environment, as U-Boot, `fw_printenv`/`fw_setenv` and
//! `mkenvimage` lay it out:
//!
//! ```text
//! single:    [CRC32 LE of data: 4][data: size - 4]
//! redundant: [CRC32 LE of data: 4][flag: 1][data: size - 5]
//! data:      name=value\0name=value\0...\0  then padding
//! ```
//!
//! The CRC covers the whole data area, padding included. In a redundant environment the
//! copy with the newer flag wins, where "newer" is one more modulo 256 (U-Boot and
//! libubootenv both write the other copy with the current flag plus one).

use crate::uboot::vars::Vars;

/// Why bytes are not a valid environment copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvFormatError {
    #[error("a copy of {size} bytes is too small; it needs at least {min}")]
    TooSmall { size: usize, min: usize },
    #[error("CRC32 mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("no end marker (an empty entry) within the {size} data bytes")]
    NoEnd { size: usize },
    #[error("entry at data byte {at} has no '='")]
    NoEquals { at: usize },
    #[error("entry at data byte {at} has an empty name")]
    EmptyName { at: usize },
    #[error("variable {name:?} appears twice")]
    Duplicate { name: String },
    #[error("variable {name:?} cannot be stored: names must not contain '=' or NUL and values must not contain NUL")]
    Unstorable { name: String },
    #[error("the variables need {needed} bytes but a copy holds only {capacity}")]
    Full { needed: usize, capacity: usize },
}

/// The byte that pads the data area after the end marker (what `fw_setenv` writes).
const PAD: u8 = 0x00;

/// Bytes before the data: the CRC, plus the flag in a redundant environment.
pub fn header_len(redundant: bool) -> usize {
    if redundant {
        5
    } else {
        4
    }
}

/// A decoded copy: its flag (redundant only) and its variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCopy {
    pub flag: Option<u8>,
    pub vars: Vars,
}

/// Decodes one copy of `bytes.len()` bytes.
pub fn decode(bytes: &[u8], redundant: bool) -> Result<EnvCopy, EnvFormatError> {
    let header = header_len(redundant);
    let min = header + 2;
    if bytes.len() < min {
        return Err(EnvFormatError::TooSmall {
            size: bytes.len(),
            min,
        });
    }
    let stored = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let data = &bytes[header..];
    let computed = crc32fast::hash(data);
    if stored != computed {
        return Err(EnvFormatError::Crc { stored, computed });
    }
    let flag = redundant.then_some(bytes[4]);
    Ok(EnvCopy {
        flag,
        vars: parse_data(data)?,
    })
}

fn parse_data(data: &[u8]) -> Result<Vars, EnvFormatError> {
    let mut vars = Vars::default();
    let mut at = 0;
    loop {
        let Some(len) = data[at..].iter().position(|&b| b == 0) else {
            return Err(EnvFormatError::NoEnd { size: data.len() });
        };
        if len == 0 {
            return Ok(vars);
        }
        let entry = &data[at..at + len];
        let eq = entry
            .iter()
            .position(|&b| b == b'=')
            .ok_or(EnvFormatError::NoEquals { at })?;
        if eq == 0 {
            return Err(EnvFormatError::EmptyName { at });
        }
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if vars.get_bytes(name).is_some() {
            return Err(EnvFormatError::Duplicate {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        vars.push(name.to_vec(), value.to_vec());
        at += len + 1;
    }
}

/// Encodes `vars` as one copy of exactly `size` bytes.
pub fn encode(vars: &Vars, size: usize, flag: Option<u8>) -> Result<Vec<u8>, EnvFormatError> {
    let header = header_len(flag.is_some());
    let min = header + 2;
    if size < min {
        return Err(EnvFormatError::TooSmall { size, min });
    }
    let capacity = size - header;
    let mut data = Vec::with_capacity(capacity);
    for (name, value) in vars.iter() {
        if name.is_empty() || name.contains(&b'=') || name.contains(&0) || value.contains(&0) {
            return Err(EnvFormatError::Unstorable {
                name: String::from_utf8_lossy(name).into_owned(),
            });
        }
        data.extend_from_slice(name);
        data.push(b'=');
        data.extend_from_slice(value);
        data.push(0);
    }
    // The end marker; an empty environment still needs two NULs to read back cleanly.
    data.push(0);
    if vars.is_empty() {
        data.push(0);
    }
    if data.len() > capacity {
        return Err(EnvFormatError::Full {
            needed: data.len(),
            capacity,
        });
    }
    data.resize(capacity, PAD);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&crc32fast::hash(&data).to_le_bytes());
    if let Some(flag) = flag {
        out.push(flag);
    }
    out.extend_from_slice(&data);
    Ok(out)
}

/// Which of two valid redundant copies is the newer one (0 or 1), by U-Boot's rule:
/// 0 follows 255, otherwise the larger flag wins, and equal flags pick the first copy.
pub fn newer_copy(flag0: u8, flag1: u8) -> usize {
    match (flag0, flag1) {
        (255, 0) => 1,
        (0, 255) => 0,
        (a, b) if b > a => 1,
        _ => 0,
    }
}

/// Whether `bytes` look like never-written storage (all 0x00 or all 0xFF), which an
/// initialising commit may claim.
pub fn is_erased(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0) || bytes.iter().all(|&b| b == 0xFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vars {
        let mut v = Vars::default();
        v.set("bootcmd", "run distro_bootcmd");
        v.set("BOOT_ORDER", "A B");
        v
    }

    #[test]
    fn round_trips_single_and_redundant() {
        for flag in [None, Some(7)] {
            let bytes = encode(&sample(), 0x100, flag).unwrap();
            assert_eq!(bytes.len(), 0x100);
            let copy = decode(&bytes, flag.is_some()).unwrap();
            assert_eq!(copy.flag, flag);
            assert_eq!(copy.vars, sample());
        }
    }

    #[test]
    fn layout_matches_mkenvimage() {
        // mkenvimage -s 0x20 of "a=1": CRC, then "a=1\0\0", padding (ours is 0x00).
        let mut v = Vars::default();
        v.set("a", "1");
        let bytes = encode(&v, 0x20, None).unwrap();
        assert_eq!(&bytes[4..10], b"a=1\0\0\0");
        let crc = crc32fast::hash(&bytes[4..]);
        assert_eq!(bytes[..4], crc.to_le_bytes());
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let bytes = encode(&sample(), 0x40, Some(1)).unwrap();
        for i in (0..bytes.len()).filter(|&i| i != 4) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(decode(&bad, true).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn hostile_data_gets_typed_errors() {
        let with_crc = |data: &[u8]| {
            let mut b = crc32fast::hash(data).to_le_bytes().to_vec();
            b.extend_from_slice(data);
            b
        };
        assert!(matches!(
            decode(&with_crc(b"abc"), false),
            Err(EnvFormatError::NoEnd { .. })
        ));
        assert!(matches!(
            decode(&with_crc(b"abc\0\0"), false),
            Err(EnvFormatError::NoEquals { at: 0 })
        ));
        assert!(matches!(
            decode(&with_crc(b"=1\0\0"), false),
            Err(EnvFormatError::EmptyName { .. })
        ));
        assert!(matches!(
            decode(&with_crc(b"a=1\0a=2\0\0"), false),
            Err(EnvFormatError::Duplicate { .. })
        ));
        assert!(matches!(
            decode(&[0; 3], true),
            Err(EnvFormatError::TooSmall { .. })
        ));
    }

    #[test]
    fn full_environment_is_refused() {
        let mut v = Vars::default();
        v.set("x", &"y".repeat(40));
        assert!(matches!(
            encode(&v, 0x20, None),
            Err(EnvFormatError::Full { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn any_storable_vars_round_trip(
            entries in proptest::collection::btree_map(
                "[A-Za-z0-9_.:-]{1,12}", proptest::collection::vec(1u8..=255, 0..40), 0..8),
            redundant in proptest::bool::ANY,
        ) {
            let mut vars = Vars::default();
            for (name, value) in &entries {
                vars.push(name.as_bytes().to_vec(), value.clone());
            }
            let flag = redundant.then_some(3);
            let bytes = encode(&vars, 0x400, flag).unwrap();
            proptest::prop_assert_eq!(decode(&bytes, redundant).unwrap(), EnvCopy { flag, vars });
        }

        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode(&bytes, false);
            let _ = decode(&bytes, true);
            let mut with_crc = crc32fast::hash(&bytes).to_le_bytes().to_vec();
            with_crc.extend_from_slice(&bytes);
            let _ = decode(&with_crc, false);
        }
    }

    #[test]
    fn flag_order_wraps() {
        assert_eq!(newer_copy(1, 2), 1);
        assert_eq!(newer_copy(2, 1), 0);
        assert_eq!(newer_copy(255, 0), 1);
        assert_eq!(newer_copy(0, 255), 0);
        assert_eq!(newer_copy(4, 4), 0);
    }
}
