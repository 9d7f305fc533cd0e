//! The `skerryctl install` command line the install tests run against a local repository.

use std::path::Path;

use super::release::s;

/// `install` of `board`'s release from the repository at `repo` (over `file://`, trusting
/// its first root) into `slot`, keeping the installer's state in `state`.
pub fn install(repo: &Path, board: &str, slot: &Path, state: &Path) -> Vec<String> {
    let url = format!("file://{}", repo.display());
    let root = repo.join("metadata/1.root.json");
    [
        "install",
        "--repo",
        &url,
        "--trusted-root",
        s(&root),
        "--board",
        board,
        "--slot",
        s(slot),
        "--state",
        s(state),
    ]
    .map(String::from)
    .to_vec()
}
