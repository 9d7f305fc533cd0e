//! The slot's verified root (docs/os-image.md, "Verified root"): the `skerry.verity=`
//! value `grub.cfg` puts on the kernel command line, parsed strictly, and the
//! device-mapper `verity` table line made from it. The image builder lays the tree out
//! as `veritysetup format --no-superblock` does (boards/image/src/verity.rs): 4096-byte
//! data and hash blocks, sha256, the tree right after the data in the same partition.
//! [`super::dm`] hands the line to the kernel; the value's spelling and strict parse are
//! [`skerry_tuf::verity`]'s, shared with the release that signs it.

pub use skerry_tuf::verity::{Verity, VerityError};

/// 512-byte sectors in a block.
pub const SECTORS_PER_BLOCK: u64 = skerry_tuf::verity::BLOCK / 512;
/// The name of the mapping PID 1 creates.
pub const MAPPING: &str = "skerry-root";

/// The mapping's length in 512-byte sectors.
pub fn sectors(v: &Verity) -> u64 {
    v.data_blocks * SECTORS_PER_BLOCK
}

/// The `verity` target's parameters over the partition `device` (`MAJOR:MINOR`), data
/// and tree on the same device; a corrupt block restarts the machine, so the
/// bootloader's counting turns it into a fallback.
pub fn table_params(v: &Verity, device: &str) -> String {
    let salt = if v.salt.is_empty() { "-" } else { &v.salt };
    let block = skerry_tuf::verity::BLOCK;
    format!(
        "1 {device} {device} {block} {block} {} {} sha256 {} {salt} 1 restart_on_corruption",
        v.data_blocks, v.hash_start, v.root_hash
    )
}

/// What the initramfs does about the verified root of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootPlan {
    /// Map the partition through dm-verity with these parameters.
    Verified(Verity),
    /// Mount the partition as it is (the board does not require a verified root and
    /// the command line names none).
    Plain,
}

/// The plan for `value` (`skerry.verity=`, if given) on a board that does or does not
/// require a verified root. A value that is given but malformed is always refused, and
/// so is a missing one on a board that requires it: never a silent unverified boot.
pub fn plan(value: Option<&str>, required: bool) -> Result<RootPlan, String> {
    match value {
        Some(v) => Verity::parse(v)
            .map(RootPlan::Verified)
            .map_err(|e| e.to_string()),
        None if required => Err(
            "the board requires a verified root and the kernel command line has no skerry.verity= (is SKERRY_VERITY_<slot> missing from the boot environment?)"
                .into(),
        ),
        None => Ok(RootPlan::Plain),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    const SALT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_valid_value_makes_the_verity_table_line() {
        let v = Verity::parse(&format!("126976:126976:{ROOT}:{SALT}")).unwrap();
        assert_eq!(sectors(&v), 126_976 * 8);
        assert_eq!(
            table_params(&v, "254:2"),
            format!("1 254:2 254:2 4096 4096 126976 126976 sha256 {ROOT} {SALT} 1 restart_on_corruption")
        );
        let unsalted = Verity::parse(&format!("1:1:{ROOT}:")).unwrap();
        assert!(table_params(&unsalted, "8:1").contains(&format!("{ROOT} - 1 ")));
    }

    #[test]
    fn a_board_requiring_a_verified_root_never_boots_plain() {
        let good = format!("8:8:{ROOT}:{SALT}");
        assert!(matches!(plan(Some(&good), true), Ok(RootPlan::Verified(_))));
        assert!(matches!(
            plan(Some(&good), false),
            Ok(RootPlan::Verified(_))
        ));
        assert!(plan(None, true)
            .unwrap_err()
            .contains("requires a verified root"));
        assert_eq!(plan(None, false), Ok(RootPlan::Plain));
        assert!(plan(Some("8:8:x:y"), false)
            .unwrap_err()
            .contains("ROOT_HASH"));
        assert!(plan(Some("8:8:x:y"), true).is_err());
    }
}
