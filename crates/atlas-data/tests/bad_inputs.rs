//! Hostile dataset inputs: each is a per-item error or a clear error naming the file, and the
//! listing goes on where that is meaningful.

mod common;

use std::fs;
use std::path::Path;

use atlas_data::{Location, MAX_TEXT_MEMBER, ManifestDataset, WebDataset, read_location, scan_tar};

/// A tar member whose name is written raw (the `tar` crate's builder refuses `..`).
fn raw_member(out: &mut Vec<u8>, name: &str, size_field: u64, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(size_field);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    let bytes = h.as_mut_bytes();
    bytes[..100].fill(0);
    bytes[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

#[test]
fn traversal_and_absolute_member_names_are_item_errors_and_the_shard_goes_on() {
    let png = common::png_bytes(1);
    let mut t = Vec::new();
    raw_member(&mut t, "../evil.png", png.len() as u64, &png);
    raw_member(&mut t, "/etc/evil.png", png.len() as u64, &png);
    raw_member(&mut t, "a/../../evil.cls", 1, b"1");
    raw_member(&mut t, "C:\\win\\evil.png", png.len() as u64, &png);
    // Dots and colons inside a name are fine.
    raw_member(&mut t, "dir..x/a:b.png", png.len() as u64, &png);
    raw_member(&mut t, "ok.png", png.len() as u64, &png);
    raw_member(&mut t, "ok.cls", 1, b"0");
    let (items, errors) = scan_tar(&finish(t)[..], Path::new("/data/0.tar"), "test");
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        ["test/0.tar#dir..x/a:b", "test/0.tar#ok"],
        "{errors:?}"
    );
    assert_eq!(items[1].label, Some(0));
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[3].reason.contains("absolute path"),
        "{}",
        errors[3].reason
    );
    assert!(
        errors[0].reason.contains("`..` component"),
        "{}",
        errors[0].reason
    );
    assert!(
        errors[1].reason.contains("absolute path"),
        "{}",
        errors[1].reason
    );
    assert!(
        errors[2].reason.contains("path traversal"),
        "{}",
        errors[2].reason
    );
    assert!(errors.iter().all(|e| e.reason.contains("/data/0.tar")));
}

#[test]
fn absurd_member_sizes_allocate_nothing() {
    let png = common::png_bytes(2);
    // A caption member whose size field claims 8 GB: refused from the header, not read.
    let mut t = Vec::new();
    raw_member(&mut t, "a.png", png.len() as u64, &png);
    raw_member(&mut t, "a.txt", 8 << 30, b"short");
    let (items, errors) = scan_tar(&finish(t)[..], Path::new("s.tar"), "x");
    assert!(
        errors
            .iter()
            .any(|e| e.reason.contains(&format!("{MAX_TEXT_MEMBER}-byte limit"))),
        "{errors:?}"
    );
    // The image before it is still listed (its key has no label member).
    assert_eq!(
        items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["x/s.tar#a"]
    );

    // An image whose size field runs past the data: truncation, earlier items kept.
    let mut t = Vec::new();
    raw_member(&mut t, "b.png", png.len() as u64, &png);
    raw_member(&mut t, "c.png", 1 << 29, &png);
    let (items, errors) = scan_tar(&t[..], Path::new("s.tar"), "x");
    assert_eq!(items.len(), 1);
    assert!(
        errors.iter().any(|e| e.reason.contains("truncated")),
        "{errors:?}"
    );
}

#[test]
fn a_stale_tar_location_is_an_error_not_a_giant_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dir.path().join("0.tar");
    fs::write(&shard, vec![0u8; 2048]).unwrap();
    for (offset, len) in [(512, 1 << 40), (u64::MAX - 4, 16), (4096, 1)] {
        let e = read_location(&Location::TarMember {
            shard: shard.clone(),
            offset,
            len,
        })
        .expect_err("past the end");
        assert!(e.to_string().contains("list the dataset again"), "{e}");
    }
}

#[test]
fn a_whole_wds_root_with_a_hostile_shard_still_lists_the_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wds");
    fs::create_dir_all(root.join("test")).unwrap();
    let png = common::png_bytes(3);
    let mut good = Vec::new();
    raw_member(&mut good, "k.png", png.len() as u64, &png);
    fs::write(root.join("test/0.tar"), finish(good)).unwrap();
    let mut bad = Vec::new();
    raw_member(&mut bad, "../../x.png", png.len() as u64, &png);
    fs::write(root.join("test/1.tar"), finish(bad)).unwrap();
    fs::write(root.join("test/2.tar"), b"not a tar at all").unwrap();
    let ds = WebDataset::new(&root, "test").load().expect("listing");
    assert_eq!(ds.items.len(), 1);
    assert!(ds.errors.iter().any(|e| e.id.starts_with("test/1.tar")));
    assert!(ds.errors.iter().any(|e| e.id.starts_with("test/2.tar")));
}

#[test]
fn manifest_rows_that_cannot_be_items_are_reported_per_row() {
    let m = ManifestDataset::new("dir/m.csv");
    let (ids, errors) = m
        .parse_bytes(b"path,label\na.png,1\n,2\nb.png,cat\nc.png,1,extra\n\"unterminated,3\n")
        .expect("header is fine");
    assert_eq!(ids, ["a.png"]);
    assert_eq!(errors.len(), 4, "{errors:?}");
    // A manifest with no usable header is a file-level error naming the columns expected.
    let e = m.parse_bytes(b"").expect_err("no header");
    assert!(e.to_string().contains("m.csv"), "{e}");
    let j = ManifestDataset::new("dir/m.jsonl");
    let (ids, errors) = j
        .parse_bytes(b"{\"path\": \"a.png\", \"label\": 3}\n[1,2]\n{\"path\": 7}\n{bad\n\xff\xfe\n")
        .expect("some rows");
    assert_eq!(ids, ["a.png", "7"]);
    assert_eq!(errors.len(), 3, "{errors:?}");
}
