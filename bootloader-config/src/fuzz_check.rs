//! What the fuzzing entry points of the partition-based backends (GPT, tryboot) check
//! alike: a state that loads survives a commit unchanged, and input that does not load
//! still exercises the write path.

use crate::state::{BootState, SlotName};
use crate::store::{BootStore, StoreError};

/// Slots A on partition 2 and B on partition 3, the layout both fuzz targets assume.
pub(crate) fn slots_a2_b3() -> Result<Vec<(SlotName, u32)>, StoreError> {
    match (SlotName::new("A"), SlotName::new("B")) {
        (Ok(a), Ok(b)) => Ok(vec![(a, 2), (b, 3)]),
        _ => Err(StoreError::NoValidCopy {
            path: "<fuzz>".into(),
        }),
    }
}

/// Loads `store` and commits the state back; it must load back unchanged. When the
/// bytes do not load, commits the state `fresh` makes instead (any input that parses
/// far enough can be written) and, if that works, checks it loads back unchanged; the
/// load error is returned. Panics only when a committed state does not load back.
pub(crate) fn load_commit_load<S: BootStore>(
    store: &mut S,
    fresh: impl FnOnce() -> Result<BootState, StoreError>,
) -> Result<BootState, StoreError> {
    match store.load() {
        Ok(state) => {
            store.commit(&state)?;
            let back = store.load()?;
            assert_eq!(
                back, state,
                "a loaded state must survive a commit unchanged"
            );
            Ok(state)
        }
        Err(e) => {
            let fresh = fresh()?;
            if store.commit(&fresh).is_ok() {
                let back = store.load()?;
                assert_eq!(back, fresh, "a committed state must load back unchanged");
            }
            Err(e)
        }
    }
}
