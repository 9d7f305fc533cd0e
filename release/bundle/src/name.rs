//! File names in a bundle: repository paths such as `metadata/3.root.json` or
//! `targets/rpi4/1.1.0/<sha256>.image.pack`.

use crate::error::BundleError;
use crate::limits::MAX_NAME_LEN;

/// Checks a name: `/`-separated segments of ASCII letters, digits, `.`, `_`, `-` and `+`
/// (semantic versions' build metadata), none empty, `.` or `..`, at most
/// [`MAX_NAME_LEN`] bytes. So a name never leads outside the repository it describes.
pub fn check_name(name: &str) -> Result<(), BundleError> {
    let bad = |reason| {
        Err(BundleError::BadName {
            name: name.chars().take(MAX_NAME_LEN).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("too long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-+/".contains(&b))
    {
        return bad("a character outside letters, digits, '.', '_', '-', '+' and '/'");
    }
    for segment in name.split('/') {
        match segment {
            "" => return bad("an empty segment (a leading, trailing or double '/')"),
            "." | ".." => return bad("a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn repository_paths_pass_and_traversal_does_not() {
        for ok in [
            "metadata/1.root.json",
            "targets/rpi4/1.1.0+build.7/0a1b.image.pack",
            "bundle.json",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a b",
            "é",
            &"a".repeat(256),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
