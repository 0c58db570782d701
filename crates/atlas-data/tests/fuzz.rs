//! Fuzz harnesses of the dataset parsers users feed: CSV and JSONL manifests, WebDataset tar
//! shards, Karpathy retrieval JSON (see `atlas-fuzz`; DEVELOPERS.md "Fuzzing").
//! `ATLAS_FUZZ_CASES=1000000 cargo test --release -p atlas-data --test fuzz -- --nocapture --test-threads 1`

mod common;

use std::path::Path;

use atlas_data::{ClassList, KarpathyJson, ManifestDataset, ManifestFormat, scan_tar};
use atlas_fuzz::{Mutator, Rng, Settings};

#[global_allocator]
static ALLOC: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;

fn manifest(format: ManifestFormat, name: &str) -> ManifestDataset {
    let names = ClassList::new(vec!["cat".into(), "dog".into()], "test classes");
    ManifestDataset::new(Path::new("/nonexistent/fuzz").join(name))
        .with_format(format)
        .with_label_names(names)
}

#[test]
fn fuzz_manifest_csv() {
    let m = manifest(ManifestFormat::Csv, "m.csv");
    let seeds = [
        "path,label,split\na/1.png,0,test\nb/2.jpg,dog,val\n\"c,3.png\",1,\"x\"\"y\"\n",
        "\u{feff}file, class_index \n1.png,7\n2.png,\n../../etc/passwd,1\n",
        "image_path\tlabel\nq.png\t1\n",
        "filename,target,note\r\nz.png,cat,\"multi\nline\"\r\nw.png,-3,\r\n",
    ];
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let dict: &[&[u8]] = &[
        b",",
        b"\"",
        b"\n",
        b"\r\n",
        b"path",
        b"label",
        b"\xef\xbb\xbf",
        b"\xff",
    ];
    atlas_fuzz::run("manifest-csv", &seeds, dict, |input| {
        m.parse_bytes(input).is_ok()
    });
}

#[test]
fn fuzz_manifest_jsonl() {
    let m = manifest(ManifestFormat::Jsonl, "m.jsonl");
    let seeds = [
        "{\"path\": \"a/1.png\", \"label\": 0, \"split\": \"test\"}\n{\"path\": \"b.png\", \"label\": \"dog\", \"x\": [1, {\"y\": null}]}\n",
        "{\"image\": \"q.png\", \"target\": 1.5e3}\n\n{\"image\": \"\\u00e9.png\", \"target\": null}\r\n",
        "{\"file\": \"z.png\", \"class_id\": -9223372036854775808}\n[1]\n\"s\"\n",
    ];
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let dict: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\u0000", b"\\ud800", b"1e999",
    ];
    atlas_fuzz::run("manifest-jsonl", &seeds, dict, |input| {
        m.parse_bytes(input).is_ok()
    });
}

#[test]
fn fuzz_karpathy_json() {
    let k = KarpathyJson::new("/nonexistent/dataset_coco.json", "/nonexistent/images");
    let seeds = [
        r#"{"images": [{"filepath": "val2014", "filename": "a.jpg", "split": "test", "sentences": [{"raw": "a cat"}, {"raw": "x"}]}, {"filename": "b.jpg", "split": "train", "sentences": []}, {"filepath": "", "filename": "c.jpg", "split": "test"}]}"#,
        r#"[{"image": "val2014/a.jpg", "caption": ["a dog", "two"]}, {"image": "val2014/a.jpg", "caption": "one"}, {"image": "", "caption": []}]"#,
        "\u{feff} [ ]",
    ];
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let dict: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"images",
        b"split",
        b"test",
        b"sentences",
        b"caption",
        b"null",
        b"[[[[[[[[[[[[[[[[",
        b"\\ud83d",
    ];
    atlas_fuzz::run("karpathy-json", &seeds, dict, |input| {
        k.parse_bytes(input).is_ok()
    });
}

/// A WebDataset shard covering the reader's paths: images, labels, captions, a GNU long name, a
/// PAX header, a directory, a member without extension.
fn tar_seed(variant: u8) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("tar append");
    };
    let png = common::png_bytes(variant);
    add("s0.png", &png);
    add("s0.cls", b"1\n");
    add("s0.txt", b"a caption\n");
    add("sub/s1.jpg", &png[..40]);
    add("sub/s1.cls", b"dog");
    add(&format!("{}/s2.webp", "d".repeat(110)), b"RIFF....WEBP");
    add("README", b"no extension");
    let mut b2 = b.into_inner().expect("tar");
    if variant % 2 == 1 {
        // A PAX extended header naming the next member.
        let mut pb = tar::Builder::new(Vec::new());
        pb.append_pax_extensions([("path", b"pax/long.png".as_slice())])
            .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_size(png.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        pb.append_data(&mut h, "short.png", &png[..])
            .expect("pax member");
        let extra = pb.into_inner().expect("tar");
        // Drop the first archive's end-of-archive blocks, then append.
        b2.truncate(b2.len() - 1024);
        b2.extend_from_slice(&extra);
    }
    b2
}

/// Most mutated headers would fail their checksum at once; recomputing it (3 times in 4) lets the
/// mutations reach the size, name and type fields behind it.
fn fix_tar_checksums(rng: &mut Rng, data: &mut [u8]) {
    if rng.one_in(4) {
        return;
    }
    for block in data.chunks_exact_mut(512) {
        if &block[257..262] != b"ustar" {
            continue;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| b as u32).sum();
        let field = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(field.as_bytes());
    }
}

#[test]
fn fuzz_wds_tar() {
    let seeds = vec![tar_seed(0), tar_seed(1)];
    let dict: &[&[u8]] = &[
        b"../",
        b"/",
        b".cls",
        b".png",
        b"././@LongLink",
        b"ustar\0",
        b"00",
    ];
    let mutator = Mutator::new(seeds, dict.iter().map(|d| d.to_vec()).collect());
    let report = atlas_fuzz::run_with(
        "wds-tar",
        Settings::from_env(),
        |rng| {
            let mut data = mutator.mutate(rng);
            fix_tar_checksums(rng, &mut data);
            data
        },
        |input| {
            let (items, _errors) = scan_tar(input, Path::new("/nonexistent/0.tar"), "test");
            for it in &items {
                // No listed key escapes the shard.
                let key = it.id.split_once('#').map_or("", |(_, k)| k);
                assert!(!key.starts_with('/'), "{}", it.id);
                assert!(!key.split('/').any(|c| c == ".."), "{}", it.id);
            }
            !items.is_empty()
        },
    );
    assert!(
        report.accepted > 0,
        "no mutated shard listed an item: the seeds are broken"
    );
}
