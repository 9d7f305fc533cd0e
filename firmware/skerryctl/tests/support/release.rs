//! The `skerryctl release` command lines that publish a test repository: signing keys,
//! a new repository and an image release. Callers append any further flags.

use std::path::Path;

/// A path as a command-line argument (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `release keygen`: a fresh key set in `out`.
pub fn keygen(out: &Path) -> [&str; 4] {
    ["release", "keygen", "--out", s(out)]
}

/// `release init`: a new repository at `repo` signed with `keys`.
pub fn init<'a>(keys: &'a Path, repo: &'a Path) -> [&'a str; 6] {
    ["release", "init", "--keys", s(keys), "--repo", s(repo)]
}

/// `release add`: publishes `image` as `board` `version` in `repo`, signed with `keys`.
pub fn add<'a>(
    keys: &'a Path,
    repo: &'a Path,
    board: &'a str,
    version: &'a str,
    image: &'a Path,
) -> [&'a str; 12] {
    [
        "release",
        "add",
        "--keys",
        s(keys),
        "--repo",
        s(repo),
        "--board",
        board,
        "--version",
        version,
        "--image",
        s(image),
    ]
}
