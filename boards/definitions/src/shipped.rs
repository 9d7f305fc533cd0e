//! The definitions shipped in `boards/`, built into the crate so tools can take
//! `--board NAME` without a path.

use std::path::Path;

use crate::definition::BoardDefinition;
use crate::load::BoardError;

/// Each shipped board's name and TOML.
pub const SHIPPED: [(&str, &str); 4] = [
    ("qemu-x86_64", include_str!("../boards/qemu-x86_64.toml")),
    ("rpi4", include_str!("../boards/rpi4.toml")),
    ("rpi5", include_str!("../boards/rpi5.toml")),
    (
        "x86-industrial",
        include_str!("../boards/x86-industrial.toml"),
    ),
];

/// The shipped board named `name`, decoded and validated; `None` if no board has that name.
pub fn shipped(name: &str) -> Option<Result<BoardDefinition, BoardError>> {
    let (file, text) = SHIPPED.iter().find(|(n, _)| *n == name)?;
    let origin = Path::new("boards/definitions/boards").join(format!("{file}.toml"));
    Some(BoardDefinition::from_toml(text, &origin))
}
