//! OCI layers and directories laid into a staged tree: whiteouts remove what lower
//! layers laid (never the layer's own entries), opaque directories are emptied,
//! symlinks and hard links land as such (or as copies), and what could write outside the
//! tree or over the image's own files is refused by name.

use std::path::Path;

use skerry_image::extension::{apply, Budget, Extension};
use skerry_image::tree::Tree;

/// A tar built with the tar crate's writer: `(path, kind)` where kind is `file:DATA`,
/// `dir`, `symlink:TARGET`, `link:TARGET` or `fifo`.
fn layer(path: &Path, entries: &[(&str, &str)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        let (k, arg) = kind.split_once(':').unwrap_or((kind, ""));
        let data: &[u8] = if k == "file" { arg.as_bytes() } else { b"" };
        h.set_entry_type(match k {
            "file" => tar::EntryType::Regular,
            "dir" => tar::EntryType::Directory,
            "symlink" => tar::EntryType::Symlink,
            "link" => tar::EntryType::Link,
            _ => tar::EntryType::Fifo,
        });
        if k == "symlink" || k == "link" {
            h.set_link_name(arg).unwrap();
        }
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data).unwrap();
    }
    b.finish().unwrap();
}

fn staged() -> (tempfile::TempDir, Tree) {
    let dir = tempfile::tempdir().unwrap();
    let tree = Tree::new(&dir.path().join("root")).unwrap();
    tree.file("sbin/skerryd", b"ours", true).unwrap();
    tree.file("etc/skerry/board.toml", b"ours", false).unwrap();
    tree.file("usr/share/old.txt", b"lower", false).unwrap();
    tree.file("usr/share/doc/lower.txt", b"lower", false)
        .unwrap();
    (dir, tree)
}

fn apply_layer(dir: &Path, tree: &Tree, entries: &[(&str, &str)]) -> Result<usize, String> {
    let tar = dir.join("layer.tar");
    layer(&tar, entries);
    apply(tree, &Extension::Layer(tar), &mut Budget::default()).map_err(|e| e.to_string())
}

#[test]
fn whiteouts_remove_lower_files_and_opaque_directories_keep_their_own_layer() {
    let (dir, tree) = staged();
    apply_layer(
        dir.path(),
        &tree,
        &[
            ("usr/share/doc/new.txt", "file:mine"),
            ("usr/share/doc/.wh..wh..opq", "file:"),
            ("usr/share/.wh.old.txt", "file:"),
            ("usr/bin/app", "file:#!app"),
            ("usr/bin/app-link", "symlink:app"),
            ("usr/bin/app-hard", "link:usr/bin/app"),
            ("./opt/rel.txt", "file:./ paths land inside"),
        ],
    )
    .unwrap();
    let root = tree.root();
    assert!(!root.join("usr/share/old.txt").exists(), "whiteout");
    assert!(!root.join("usr/share/doc/lower.txt").exists(), "opaque");
    assert_eq!(
        std::fs::read(root.join("usr/share/doc/new.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/app-link")).unwrap(),
        Path::new("app")
    );
    assert_eq!(
        std::fs::read(root.join("usr/bin/app-hard")).unwrap(),
        b"#!app"
    );
    assert!(root.join("opt/rel.txt").is_file());
    assert_eq!(std::fs::read(root.join("sbin/skerryd")).unwrap(), b"ours");
}

#[test]
fn hostile_layers_are_refused_by_name() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("etc/skerry/board.toml", "file:theirs")],
            "/etc/skerry/board.toml would replace /etc/skerry",
        ),
        (
            &[("sbin/.wh.skerryd", "file:")],
            "/sbin/skerryd would replace /sbin/skerryd",
        ),
        (
            &[("etc/.wh..wh..opq", "file:")],
            "opaque whiteout of /etc would remove /etc/skerry",
        ),
        (
            &[("lib", "symlink:/tmp")],
            "/lib would replace /lib/modules's parent",
        ),
        (
            &[("esc", "symlink:/tmp"), ("esc/evil", "file:x")],
            "its parent /esc is not a directory",
        ),
        (
            &[("dev/fifo", "fifo")],
            "only directories, files, symlinks and hard links",
        ),
    ];
    for (entries, needle) in cases {
        let (dir, tree) = staged();
        let err = apply_layer(dir.path(), &tree, entries).unwrap_err();
        assert!(err.contains(needle), "expected {needle:?}, got {err}");
        assert_eq!(
            std::fs::read(tree.root().join("sbin/skerryd")).unwrap(),
            b"ours"
        );
    }
}

#[test]
fn a_directory_extension_may_not_replace_a_directory_with_a_file() {
    let (dir, tree) = staged();
    let ext = dir.path().join("ext");
    std::fs::create_dir_all(&ext).unwrap();
    std::fs::write(ext.join("usr"), b"a file where /usr is").unwrap();
    let err = apply(&tree, &Extension::Dir(ext), &mut Budget::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/usr would replace a directory with a file"),
        "{err}"
    );
}

#[test]
fn an_opaque_whiteout_through_a_lower_layers_symlink_touches_nothing_outside() {
    let (dir, tree) = staged();
    let outside = dir.path().join("host");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("sub/precious"), b"host file").unwrap();
    let target = format!("symlink:{}", outside.display());
    apply_layer(dir.path(), &tree, &[("esc", target.as_str())]).unwrap();
    let err = apply_layer(dir.path(), &tree, &[("esc/sub/.wh..wh..opq", "file:")]).unwrap_err();
    assert!(err.contains("its parent /esc is not a directory"), "{err}");
    let err = apply_layer(dir.path(), &tree, &[("esc/sub/.wh.precious", "file:")]).unwrap_err();
    assert!(err.contains("its parent /esc is not a directory"), "{err}");
    assert!(
        outside.join("sub/precious").exists(),
        "a file outside the tree was removed"
    );
}
