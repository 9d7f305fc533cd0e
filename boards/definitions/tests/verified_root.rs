//! `verified_root`: the shipped QEMU board mounts its root through dm-verity, and a
//! definition asking for a verified root without the verity module is refused.

use std::path::Path;

use skerry_boards::{shipped, BoardDefinition};

const QEMU: &str = include_str!("../boards/qemu-x86_64.toml");

#[test]
fn the_qemu_board_requires_a_verified_root_and_loads_dm_verity() {
    let board = shipped("qemu-x86_64").unwrap().unwrap();
    assert!(board.verified_root);
    assert!(board.modules.iter().any(|m| m == "dm-verity"));
    assert!(!shipped("rpi4").unwrap().unwrap().verified_root);
}

#[test]
fn a_verified_root_without_the_verity_module_is_refused() {
    let text = QEMU.replace(", \"dm-verity\"", "");
    assert_ne!(text, QEMU, "the shipped modules line changed");
    let e = BoardDefinition::from_toml(&text, Path::new("boards/qemu-x86_64.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("verified_root") && e.contains("dm-verity"),
        "{e}"
    );
    let off = text.replace("verified_root = true", "verified_root = false");
    BoardDefinition::from_toml(&off, Path::new("boards/qemu-x86_64.toml")).unwrap();
}
