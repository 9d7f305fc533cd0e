//! The U-Boot store's layout bounds: an environment copy holds its header and at least
//! the two terminating NULs, and at most 16 MiB (the store reads a whole copy into
//! memory); both bounds are inclusive. A store reports the layout it was given.

use skerry_boot_state::uboot::{UbootEnvStore, UbootLayout};
use skerry_boot_state::{BootStore, MemoryMedium};

const MAX: usize = 16 << 20;

fn outside(size: usize, redundant: bool) -> bool {
    let layout = UbootLayout {
        offset: 0,
        size,
        redundant,
    };
    let store = UbootEnvStore::new(MemoryMedium::new(Vec::new()), layout);
    assert_eq!(store.layout(), layout);
    match store.load() {
        Err(e) => e.to_string().contains("is outside"),
        Ok(_) => false,
    }
}

#[test]
fn uboot_env_size_bounds_are_inclusive() {
    for (redundant, header) in [(false, 4), (true, 5)] {
        let min = header + 2;
        assert!(
            outside(min - 1, redundant),
            "{min} - 1, redundant {redundant}"
        );
        assert!(!outside(min, redundant), "{min}, redundant {redundant}");
        assert!(!outside(MAX, redundant), "16 MiB, redundant {redundant}");
        assert!(
            outside(MAX + 1, redundant),
            "16 MiB + 1, redundant {redundant}"
        );
    }
}
