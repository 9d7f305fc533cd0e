//! The `skerryctl release` commands that keep a published test repository current: a
//! root rotation and a re-signed timestamp. Callers append any further flags.

use std::path::Path;

use super::release::s;

/// `release rotate-root`: `keys` hands the root role of `repo` over to `new_keys`.
pub fn rotate_root<'a>(keys: &'a Path, new_keys: &'a Path, repo: &'a Path) -> [&'a str; 8] {
    [
        "release",
        "rotate-root",
        "--keys",
        s(keys),
        "--new-keys",
        s(new_keys),
        "--repo",
        s(repo),
    ]
}

/// `release timestamp`: a fresh timestamp for `repo`, signed with `keys`.
pub fn timestamp<'a>(keys: &'a Path, repo: &'a Path) -> [&'a str; 6] {
    ["release", "timestamp", "--keys", s(keys), "--repo", s(repo)]
}
