//! A slot's dm-verity parameters as Skerry passes them around: signed in a release's
//! `custom.skerry.verity` (beside the image digest that pins the tree they describe),
//! kept per slot in the boot environment (`SKERRY_VERITY_<slot>`) and handed to the
//! kernel as `skerry.verity=`, always in one spelling,
//! `DATA_BLOCKS:HASH_START_BLOCK:ROOT_HASH:SALT`, and always parsed strictly here: the
//! tree of `veritysetup format --no-superblock` with 4096-byte blocks and sha256, right
//! after the data in the same partition (boards/image/src/verity.rs writes it).

/// Data and hash block size.
pub const BLOCK: u64 = 4096;
/// The most data blocks taken (64 GiB, the image builder's own limit).
pub const MAX_DATA_BLOCKS: u64 = 1 << 24;
/// The longest salt taken, in bytes (dm-verity's own limit is 256).
pub const MAX_SALT_BYTES: usize = 256;

/// The verity parameters of one slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verity {
    /// Data blocks covered (the filesystem's size in blocks).
    pub data_blocks: u64,
    /// The first block of the tree in the same partition.
    pub hash_start: u64,
    /// The root hash, 64 lowercase hex digits.
    pub root_hash: String,
    /// The salt, lowercase hex (empty: none).
    pub salt: String,
}

/// Why a `skerry.verity=` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("skerry.verity={shown:?} refused: {reason} (expected DATA_BLOCKS:HASH_START_BLOCK:ROOT_HASH:SALT)")]
pub struct VerityError {
    /// The value, cut to 100 characters.
    pub shown: String,
    /// What is wrong with it.
    pub reason: String,
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn number(field: &str, what: &str) -> Result<u64, String> {
    if field.is_empty() || field.len() > 20 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {field:?} is not a decimal number"));
    }
    if field.len() > 1 && field.starts_with('0') {
        return Err(format!("{what} {field:?} has a leading zero"));
    }
    field
        .parse()
        .map_err(|_| format!("{what} {field:?} is too large"))
}

impl Verity {
    /// Parses the value of `skerry.verity=`.
    pub fn parse(value: &str) -> Result<Verity, VerityError> {
        Self::parse_fields(value).map_err(|reason| VerityError {
            shown: value.chars().take(100).collect(),
            reason,
        })
    }

    fn parse_fields(value: &str) -> Result<Verity, String> {
        let fields: Vec<&str> = value.splitn(5, ':').collect();
        let [data, hash, root, salt] = fields[..] else {
            return Err(format!("{} fields, 4 are taken", fields.len()));
        };
        let data_blocks = number(data, "DATA_BLOCKS")?;
        if data_blocks == 0 || data_blocks > MAX_DATA_BLOCKS {
            return Err(format!(
                "DATA_BLOCKS {data_blocks} is not within 1..={MAX_DATA_BLOCKS}"
            ));
        }
        let hash_start = number(hash, "HASH_START_BLOCK")?;
        // The tree follows the data it covers, so the two can never overlap.
        if hash_start < data_blocks || hash_start > 2 * MAX_DATA_BLOCKS {
            return Err(format!(
                "HASH_START_BLOCK {hash_start} is not within {data_blocks}..={} (the tree follows the data)",
                2 * MAX_DATA_BLOCKS
            ));
        }
        if root.len() != 64 || !is_lower_hex(root) {
            return Err("ROOT_HASH is not 64 lowercase hex digits (sha256)".into());
        }
        if salt.len() > 2 * MAX_SALT_BYTES || salt.len() % 2 != 0 || !is_lower_hex(salt) {
            return Err(format!(
                "SALT is not an even number of lowercase hex digits, at most {}",
                2 * MAX_SALT_BYTES
            ));
        }
        Ok(Verity {
            data_blocks,
            hash_start,
            root_hash: root.to_owned(),
            salt: salt.to_owned(),
        })
    }
}

impl std::fmt::Display for Verity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.data_blocks, self.hash_start, self.root_hash, self.salt
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    const SALT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_valid_value_round_trips() {
        let text = format!("126976:126976:{ROOT}:{SALT}");
        let v = Verity::parse(&text).unwrap();
        assert_eq!((v.data_blocks, v.hash_start), (126_976, 126_976));
        assert_eq!(v.to_string(), text);
        assert_eq!(Verity::parse(&format!("1:1:{ROOT}:")).unwrap().salt, "");
    }

    #[test]
    fn malformed_values_are_refused_naming_the_field() {
        let cases = [
            (format!("126976:{ROOT}:{SALT}"), "3 fields"),
            (format!("1:1:{ROOT}:{SALT}:x"), "5 fields"),
            (format!("0:0:{ROOT}:{SALT}"), "DATA_BLOCKS 0"),
            (format!("+5:5:{ROOT}:{SALT}"), "not a decimal"),
            (format!("05:5:{ROOT}:{SALT}"), "leading zero"),
            (format!("99999999999999999999:5:{ROOT}:{SALT}"), "too large"),
            (
                format!("16777217:16777217:{ROOT}:{SALT}"),
                "DATA_BLOCKS 16777217",
            ),
            (format!("10:9:{ROOT}:{SALT}"), "HASH_START_BLOCK 9"),
            (format!("10:10:{}:{SALT}", &ROOT[1..]), "ROOT_HASH"),
            (format!("10:10:{}:{SALT}", ROOT.to_uppercase()), "ROOT_HASH"),
            (format!("10:10:{ROOT}:abc"), "SALT"),
            (format!("10:10:{ROOT}:{}", "ab".repeat(257)), "SALT"),
            (format!("10:10:{ROOT}:zz"), "SALT"),
            (String::new(), "1 fields"),
        ];
        for (value, needle) in cases {
            let e = Verity::parse(&value).unwrap_err().to_string();
            assert!(e.contains(needle), "{value}: {e}");
        }
    }
}
