//! Folder walks on hostile trees: directory symlink loops, links to folders listed elsewhere,
//! non-UTF-8 and very long file names. Each file is listed once, problems become per-item errors,
//! and the listing stays serializable (the pipeline caches it as JSON).
#![cfg(unix)]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;

use atlas_data::{Benchmark, Dataset, ImageFolder, UnlabelledFolder};
use common::png_bytes;

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn ids(ds: &Dataset) -> Vec<&str> {
    ds.items.iter().map(|i| i.id.as_str()).collect()
}

/// `cat/c1.png`, `dog/d1.png`, `dog/sub/d2.png` and a loop `cat/loop -> ..` (the dataset root).
fn looped_tree(root: &Path) {
    write(&root.join("cat/c1.png"), &png_bytes(1));
    write(&root.join("dog/d1.png"), &png_bytes(2));
    write(&root.join("dog/sub/d2.png"), &png_bytes(3));
    symlink("..", root.join("cat/loop")).unwrap();
}

fn assert_loop_reported(ds: &Dataset, id: &str) {
    let e = ds
        .errors
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no listing error for {id}: {:?}", ds.errors));
    assert!(
        e.reason.contains("symlink") && e.reason.contains("not followed"),
        "{}",
        e.reason
    );
}

#[test]
fn folder_symlink_loop_lists_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    looped_tree(&root);
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["cat/c1.png", "dog/d1.png", "dog/sub/d2.png"]);
    assert_loop_reported(&ds, "cat/loop");
    // The fingerprint walks the same way (and terminates).
    let f = ImageFolder::new(&root).fingerprint().unwrap();
    assert_eq!(f, ImageFolder::new(&root).fingerprint().unwrap());
}

#[test]
fn link_into_another_class_folder_is_not_followed() {
    // `cat/dogs -> ../dog/sub`: without the rule, dog/sub/d2.png would also be a cat.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    write(&root.join("cat/c1.png"), &png_bytes(1));
    write(&root.join("dog/sub/d2.png"), &png_bytes(3));
    symlink("../dog/sub", root.join("cat/dogs")).unwrap();
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["cat/c1.png", "dog/sub/d2.png"]);
    assert_loop_reported(&ds, "cat/dogs");
}

#[test]
fn link_to_a_folder_outside_the_dataset_is_followed_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    let outside = dir.path().join("elsewhere");
    write(&outside.join("o1.png"), &png_bytes(7));
    write(&root.join("cat/c1.png"), &png_bytes(1));
    symlink(&outside, root.join("cat/more")).unwrap();
    // A second link to the same folder, and a loop inside it back to itself.
    symlink(&outside, root.join("cat/again")).unwrap();
    symlink(".", outside.join("self")).unwrap();
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["cat/again/o1.png", "cat/c1.png"]);
    assert_loop_reported(&ds, "cat/more");
    assert_loop_reported(&ds, "cat/again/self");
}

#[test]
fn unlabelled_and_benchmark_walks_survive_loops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ood");
    write(&root.join("images/a.png"), &png_bytes(1));
    write(&root.join("images/deep/b.png"), &png_bytes(2));
    symlink("..", root.join("images/deep/up")).unwrap();
    symlink("../..", root.join("images/deep/root")).unwrap();
    let ds = UnlabelledFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["images/a.png", "images/deep/b.png"]);
    assert_loop_reported(&ds, "images/deep/up");
    assert_loop_reported(&ds, "images/deep/root");

    // ImageNet-R layout (WNID folders) with a loop inside a class folder.
    let r = dir.path().join("imagenet-r");
    write(&r.join("n01443537/x.png"), &png_bytes(4));
    symlink("..", r.join("n01443537/loop")).unwrap();
    let ds = Benchmark::from_name("imagenet-r")
        .unwrap()
        .load(&r, None)
        .unwrap();
    assert_eq!(ids(&ds), ["n01443537/x.png"]);
    assert_loop_reported(&ds, "n01443537/loop");
}

#[test]
fn several_loops_are_each_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    looped_tree(&root);
    symlink("../..", root.join("dog/sub/up")).unwrap();
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ds.items.len(), 3);
    assert_eq!(ds.errors.len(), 2, "{:?}", ds.errors);
}

/// A name that is not UTF-8 (Latin-1 `é`), ending in `.png`.
fn latin1_png() -> &'static OsStr {
    OsStr::from_bytes(b"caf\xe9.png")
}

#[test]
fn non_utf8_file_name_is_a_per_item_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    write(&root.join("cat/c1.png"), &png_bytes(1));
    write(&root.join("cat").join(latin1_png()), &png_bytes(2));
    // A folder with a non-UTF-8 name inside a class: its images cannot be named either.
    write(
        &root
            .join("dog")
            .join(OsStr::from_bytes(b"sub\xff"))
            .join("d.png"),
        &png_bytes(3),
    );
    write(&root.join("dog/d1.png"), &png_bytes(4));
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["cat/c1.png", "dog/d1.png"]);
    assert_eq!(ds.errors.len(), 2, "{:?}", ds.errors);
    for e in &ds.errors {
        assert!(e.reason.contains("not valid UTF-8"), "{}", e.reason);
        assert!(e.reason.contains("rename"), "{}", e.reason);
    }
    // The listing is cached as JSON by the pipeline: it must serialize.
    let json = serde_json::to_vec(&ds).unwrap();
    let back: Dataset = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, ds);
    ImageFolder::new(&root).fingerprint().unwrap();

    // Same in an unlabelled folder.
    let ood = dir.path().join("ood");
    write(&ood.join("a.png"), &png_bytes(5));
    write(&ood.join(latin1_png()), &png_bytes(6));
    let ds = UnlabelledFolder::new(&ood).load(None).unwrap();
    assert_eq!(ids(&ds), ["a.png"]);
    assert_eq!(ds.errors.len(), 1);
    serde_json::to_vec(&ds).unwrap();
}

#[test]
fn non_utf8_class_folder_is_an_error_not_a_class() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    write(&root.join("cat/c1.png"), &png_bytes(1));
    write(
        &root.join(OsStr::from_bytes(b"d\xf6g")).join("d1.png"),
        &png_bytes(2),
    );
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ids(&ds), ["cat/c1.png"]);
    assert_eq!(ds.classnames.as_deref(), Some(&["cat".to_string()][..]));
    assert_eq!(ds.errors.len(), 1, "{:?}", ds.errors);
    assert!(ds.errors[0].reason.contains("not valid UTF-8"));
    serde_json::to_vec(&ds).unwrap();
}

#[test]
fn very_long_names_are_listed_or_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    write(&root.join("cat/c1.png"), &png_bytes(1));
    // 255 bytes: the longest name most filesystems allow.
    let long = format!("{}.png", "x".repeat(251));
    write(&root.join("cat").join(&long), &png_bytes(2));
    // Nested folders until the path no longer fits PATH_MAX (creation then fails and stops).
    let seg = "y".repeat(200);
    let mut deep = root.join("cat");
    let mut made = 0;
    while made < 30 {
        deep = deep.join(&seg);
        if fs::create_dir(&deep).is_err() {
            break;
        }
        made += 1;
    }
    let _ = fs::write(deep.join("deep.png"), png_bytes(3));
    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert!(ds.items.iter().any(|i| i.id == format!("cat/{long}")));
    assert!(ds.items.iter().any(|i| i.id == "cat/c1.png"));
    serde_json::to_vec(&ds).unwrap();
}
