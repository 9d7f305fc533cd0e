//! The verified root across an install (docs/os-image.md, "Verified root"): the root
//! hash cannot live inside the slot it hashes, so the release's signed verity
//! parameters go beside the boot state as `SKERRY_VERITY_<slot>`, which `grub.cfg`
//! appends to that slot's kernel command line. Written after the slot is read back and
//! verified and before its trial begins; a release without them is refused on a board
//! that mounts its root verified, and a stale value of the slot's previous release is
//! removed, never left to describe the new one.

use skerry_boot_state::grub::GrubEnvStore;
use skerry_boot_state::{FileMedium, SlotName, StoreSpec};
use skerry_tuf::verity::Verity;

/// The boot-environment variable of `slot`.
pub fn variable(slot: &SlotName) -> String {
    format!("SKERRY_VERITY_{slot}")
}

/// What the install leaves in `SKERRY_VERITY_<slot>`: the signed value, checked
/// strictly (`Some`), or nothing (`None`, the variable removed).
pub fn value_for(
    required: bool,
    release: &str,
    signed: Option<&str>,
) -> Result<Option<String>, String> {
    match signed {
        Some(text) => Verity::parse(text)
            .map(|v| Some(v.to_string()))
            .map_err(|e| format!("release {release}: its signed verity parameters: {e}")),
        None if required => Err(format!(
            "release {release} carries no verity parameters (custom.skerry.verity), and this board mounts its root verified (verified_root); publish the slot image with its .verity file beside it"
        )),
        None => Ok(None),
    }
}

/// Sets or removes `SKERRY_VERITY_<slot>` in the boot store, one power-safe commit.
pub fn write(spec: &StoreSpec, slot: &SlotName, value: Option<&str>) -> Result<(), String> {
    let StoreSpec::Grub { path } = spec else {
        return match value {
            Some(_) => Err(format!(
                "{spec}: verity parameters are kept in a GRUB environment only; this board's boot script reads no other store yet"
            )),
            None => Ok(()),
        };
    };
    let name = variable(slot);
    let medium = FileMedium::open(path).map_err(|e| format!("opening {spec}: {e}"))?;
    GrubEnvStore::new(medium)
        .commit_variables(&[(name.as_str(), value)])
        .map_err(|e| format!("writing {name} into {spec}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skerry_boot_state::{BootState, BootStore};

    const ROOT: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";

    #[test]
    fn a_required_root_needs_well_formed_signed_parameters() {
        let good = format!("8:8:{ROOT}:ab");
        assert_eq!(
            value_for(true, "1.1.0", Some(&good)),
            Ok(Some(good.clone()))
        );
        assert_eq!(value_for(false, "1.1.0", Some(&good)), Ok(Some(good)));
        assert!(value_for(true, "1.1.0", None)
            .unwrap_err()
            .contains("carries no verity parameters"));
        assert_eq!(value_for(false, "1.1.0", None), Ok(None));
        let e = value_for(false, "1.1.0", Some("8:7:x:")).unwrap_err();
        assert!(
            e.contains("release 1.1.0") && e.contains("HASH_START_BLOCK"),
            "{e}"
        );
    }

    #[test]
    fn the_slot_variable_is_set_and_removed_beside_the_boot_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grubenv");
        let slots = [SlotName::new("A").unwrap(), SlotName::new("B").unwrap()];
        let state = BootState::new(&slots, 3).unwrap();
        GrubEnvStore::new(FileMedium::create(&path))
            .commit(&state)
            .unwrap();
        let spec = StoreSpec::Grub { path: path.clone() };
        let value = format!("8:8:{ROOT}:ab");
        write(&spec, &slots[1], Some(&value)).unwrap();
        let store = GrubEnvStore::new(FileMedium::open(&path).unwrap());
        assert_eq!(
            store.variables().unwrap().get("SKERRY_VERITY_B"),
            Some(Ok(value.as_str()))
        );
        assert_eq!(store.load().unwrap(), state);
        write(&spec, &slots[1], None).unwrap();
        let store = GrubEnvStore::new(FileMedium::open(&path).unwrap());
        assert!(store.variables().unwrap().get("SKERRY_VERITY_B").is_none());
    }
}
