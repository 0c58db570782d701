mod common;

use std::fs;
use std::path::Path;

use atlas_data::{
    ClassList, DataError, DatasetSource, HashCache, HubDataset, HubUri, ImageFolder, Location,
    ManifestDataset, TemplateSet, WebDataset,
};
use common::{blake3_of, png_bytes, samples_dir, tar_add};

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn image_folder_sorted_classes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pets");
    write(&root.join("dog/d1.png"), &png_bytes(1));
    write(&root.join("dog/nested/d2.PNG"), &png_bytes(2));
    write(&root.join("cat/c1.png"), &png_bytes(3));
    // Readable but not a valid image: listed (decoding failures are the embed stage's business).
    write(
        &root.join("cat/corrupt.jpg"),
        b"\xff\xd8 this is not a jpeg",
    );
    // Not an image: ignored.
    write(&root.join("cat/notes.txt"), b"hello");
    write(&root.join("README.md"), b"top-level file");
    // Unreadable: a dangling symlink.
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("nowhere.png"), root.join("cat/broken.png")).unwrap();

    let ds = ImageFolder::new(&root).load(None).unwrap();
    assert_eq!(ds.name, "pets");
    assert_eq!(
        ds.classnames.as_deref(),
        Some(&["cat".to_string(), "dog".to_string()][..])
    );
    let ids: Vec<&str> = ds.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "cat/c1.png",
            "cat/corrupt.jpg",
            "dog/d1.png",
            "dog/nested/d2.PNG"
        ]
    );
    let labels: Vec<Option<i64>> = ds.items.iter().map(|i| i.label).collect();
    assert_eq!(labels, [Some(0), Some(0), Some(1), Some(1)]);
    assert_eq!(ds.items[0].meta["class_folder"], "cat");
    assert_eq!(ds.items[0].bytes_hash, blake3_of(&png_bytes(3)));
    assert_eq!(ds.read_bytes(&ds.items[2]).unwrap(), png_bytes(1));
    #[cfg(unix)]
    {
        assert_eq!(ds.errors.len(), 1, "{:?}", ds.errors);
        assert_eq!(ds.errors[0].id, "cat/broken.png");
        assert!(ds.errors[0].reason.contains("broken.png"));
    }

    // Fingerprint: stable, changes when a file is added; a HashCache avoids re-hashing.
    let f1 = ImageFolder::new(&root).fingerprint().unwrap();
    assert_eq!(f1, ImageFolder::new(&root).fingerprint().unwrap());
    write(&root.join("dog/d3.png"), &png_bytes(4));
    let f2 = ImageFolder::new(&root).fingerprint().unwrap();
    assert_ne!(f1, f2);
    let cache = HashCache::from_dataset(&ds);
    assert_eq!(cache.len(), 4);
    let ds2 = ImageFolder::new(&root).load(Some(&cache)).unwrap();
    assert_eq!(ds2.items.len(), 5);
    let d3 = ds2.items.iter().find(|i| i.id == "dog/d3.png").unwrap();
    assert_eq!(d3.bytes_hash, blake3_of(&png_bytes(4)));
    assert_eq!(ds2.items[3].id, "dog/d3.png");

    // A modified file is re-hashed (size changes), and stale listings refuse to read it.
    write(&root.join("dog/d1.png"), &png_bytes(9)[..50]);
    let ds3 = ImageFolder::new(&root)
        .load(Some(&HashCache::from_dataset(&ds2)))
        .unwrap();
    let d1 = ds3.items.iter().find(|i| i.id == "dog/d1.png").unwrap();
    assert_eq!(d1.bytes_hash, blake3_of(&png_bytes(9)[..50]));
    let err = ds.read_bytes(&ds.items[2]).unwrap_err();
    assert!(matches!(err, DataError::Changed { .. }), "{err}");
    assert!(err.to_string().contains("list the dataset again"));

    // The listing serializes for caching.
    let json = serde_json::to_string(&ds3).unwrap();
    let back: atlas_data::Dataset = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ds3);
}

#[test]
fn image_folder_with_wnid_class_list() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("val");
    write(&root.join("n01440764/a.JPEG"), &png_bytes(1));
    write(&root.join("n01443537/b.JPEG"), &png_bytes(2));
    write(&root.join("n99999999/c.JPEG"), &png_bytes(3));
    let ds = ImageFolder::imagenet(&root).load(None).unwrap();
    let labels: Vec<Option<i64>> = ds.items.iter().map(|i| i.label).collect();
    assert_eq!(labels, [Some(0), Some(1)]);
    assert_eq!(ds.classnames.as_ref().map(Vec::len), Some(1000));
    assert_eq!(ds.templates.as_ref().map(Vec::len), Some(80));
    assert_eq!(ds.errors.len(), 1);
    assert_eq!(ds.errors[0].id, "n99999999");
    assert!(ds.errors[0].reason.contains("n99999999") && ds.errors[0].reason.contains("wnids"));

    let err = ImageFolder::new(dir.path().join("nope"))
        .load(None)
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn csv_and_jsonl_manifests() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("imgs/a.png"), &png_bytes(1));
    write(&dir.path().join("imgs/b.png"), &png_bytes(2));
    write(&dir.path().join("imgs/c.png"), &png_bytes(3));
    let csv = dir.path().join("list.csv");
    fs::write(
        &csv,
        "path,label,split,caption\n\
         imgs/a.png,0,val,\"a, with comma\"\n\
         imgs/b.png,cat,val,x\n\
         imgs/missing.png,1,val,y\n\
         imgs/c.png,dog,val\n\
         imgs/c.png,,test,z\n",
    )
    .unwrap();
    let ds = ManifestDataset::new(&csv)
        .with_label_names(ClassList::new(vec!["dog".into(), "cat".into()], "test"))
        .load(None)
        .unwrap();
    let got: Vec<(&str, Option<i64>)> = ds.items.iter().map(|i| (i.id.as_str(), i.label)).collect();
    assert_eq!(
        got,
        [
            ("imgs/a.png", Some(0)),
            ("imgs/b.png", Some(1)),
            ("imgs/c.png", None)
        ]
    );
    assert_eq!(ds.items[0].meta["caption"], "a, with comma");
    assert_eq!(ds.items[0].meta["split"], "val");
    assert_eq!(ds.items[2].meta["split"], "test");
    assert_eq!(ds.errors.len(), 2, "{:?}", ds.errors);
    assert_eq!(ds.errors[0].id, format!("{}:5", csv.display()));
    assert!(ds.errors[0].reason.contains("3 fields"), "{:?}", ds.errors);
    assert_eq!(ds.errors[1].id, "imgs/missing.png");

    // Without label names, a non-integer label is an item error.
    let ds = ManifestDataset::new(&csv).load(None).unwrap();
    assert!(
        ds.errors
            .iter()
            .any(|e| e.id == "imgs/b.png" && e.reason.contains("\"cat\""))
    );

    let jsonl = dir.path().join("list.jsonl");
    fs::write(
        &jsonl,
        "{\"image\": \"imgs/a.png\", \"target\": 3, \"score\": 0.5}\n\
         \n\
         not json\n\
         {\"image\": \"imgs/b.png\", \"target\": null, \"tags\": [\"x\"]}\n",
    )
    .unwrap();
    let ds = ManifestDataset::new(&jsonl).load(None).unwrap();
    assert_eq!(ds.items.len(), 2);
    assert_eq!(ds.items[0].label, Some(3));
    assert_eq!(ds.items[0].meta["score"], "0.5");
    assert_eq!(ds.items[1].label, None);
    assert_eq!(ds.items[1].meta["tags"], "[\"x\"]");
    assert_eq!(ds.errors.len(), 1);
    assert!(ds.errors[0].id.ends_with(":3"));

    // No recognisable path column: a clear error naming the option.
    let bad = dir.path().join("bad.csv");
    fs::write(&bad, "foo,bar\n1,2\n").unwrap();
    let err = ManifestDataset::new(&bad)
        .load(None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("with_path_column") && err.contains("foo"),
        "{err}"
    );
    let ds = ManifestDataset::new(&bad)
        .with_path_column("foo")
        .with_label_column("")
        .load(None)
        .unwrap();
    assert_eq!(ds.errors.len(), 1);
    assert_eq!(ds.errors[0].id, "1");

    let f1 = ManifestDataset::new(&csv).fingerprint().unwrap();
    write(&dir.path().join("imgs/a.png"), &png_bytes(7)[..40]);
    assert_ne!(f1, ManifestDataset::new(&csv).fingerprint().unwrap());
}

#[test]
fn shared_imagenet_samples_via_manifest() {
    let manifest = samples_dir().join("manifest.csv");
    let ds = ManifestDataset::new(&manifest)
        .with_name("imagenet-samples")
        .with_classnames(ClassList::imagenet_classnames())
        .with_templates(TemplateSet::openai_80())
        .load(None)
        .unwrap();
    assert!(ds.errors.is_empty(), "{:?}", ds.errors);
    assert_eq!(ds.items.len(), 300);
    let wnids = ClassList::imagenet_wnids();
    let names = ClassList::imagenet_classnames();
    for item in &ds.items {
        let label = item.label.unwrap() as usize;
        assert_eq!(
            wnids.get(label),
            Some(item.meta["wnid"].as_str()),
            "{}",
            item.id
        );
        assert_eq!(
            names.get(label),
            Some(item.meta["classname"].as_str()),
            "{}",
            item.id
        );
        assert!(matches!(label % 10, 0 | 3 | 6));
        assert!(item.id.ends_with(".JPEG"));
    }
    let first = &ds.items[0];
    assert_eq!(first.id, "n01440764_tench.JPEG");
    let bytes = fs::read(samples_dir().join(&first.id)).unwrap();
    assert_eq!(first.bytes_hash, blake3_of(&bytes));
    assert_eq!(ds.read_bytes(first).unwrap(), bytes);
    let mut hashes: Vec<[u8; 32]> = ds.items.iter().map(|i| i.bytes_hash).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 300);
}

/// Writes a CLIP_benchmark-style WebDataset root.
fn make_wds(root: &Path) -> Vec<Vec<u8>> {
    fs::create_dir_all(root.join("test")).unwrap();
    fs::write(root.join("classnames.txt"), "cat\ndog\n").unwrap();
    fs::write(
        root.join("zeroshot_classification_templates.txt"),
        "a photo of a {c}.\nan image of a {c}.\n",
    )
    .unwrap();
    let imgs: Vec<Vec<u8>> = (0..5).map(png_bytes).collect();
    let mut b = tar::Builder::new(fs::File::create(root.join("test/0.tar")).unwrap());
    tar_add(&mut b, "s0000000.png", &imgs[0]);
    tar_add(&mut b, "s0000000.cls", b"1\n");
    tar_add(&mut b, "s0000001.png", &imgs[1]);
    tar_add(&mut b, "s0000001.cls", b"0");
    tar_add(&mut b, "s0000001.txt", b"a small cat\n");
    tar_add(&mut b, "s0000002.cls", b"0"); // no image
    b.into_inner().unwrap();
    let mut b = tar::Builder::new(fs::File::create(root.join("test/1.tar")).unwrap());
    // A long member name (GNU long-name header) must still give the right data offset.
    let long = format!("{}/s0000003.webp", "d".repeat(120));
    tar_add(&mut b, &long, &imgs[3]);
    tar_add(&mut b, &long.replace(".webp", ".cls"), b"1");
    tar_add(&mut b, "s0000004.jpg", &imgs[4]);
    tar_add(&mut b, "s0000004.cls", b"dog"); // bad class
    b.into_inner().unwrap();
    // A shard numbered 10 sorts after 1 and 2.
    let mut b = tar::Builder::new(fs::File::create(root.join("test/10.tar")).unwrap());
    tar_add(&mut b, "s0000010.jpg", &imgs[2]);
    tar_add(&mut b, "s0000010.cls", b"0");
    b.into_inner().unwrap();
    let mut b = tar::Builder::new(fs::File::create(root.join("test/2.tar")).unwrap());
    tar_add(&mut b, "s0000020.jpg", &imgs[2]);
    tar_add(&mut b, "s0000021.jpg", &imgs[3]);
    b.into_inner().unwrap();
    // Truncate shard 2 inside its second member.
    let p = root.join("test/2.tar");
    let len = fs::metadata(&p).unwrap().len();
    let bytes = fs::read(&p).unwrap();
    let cut = 512 + imgs[2].len().div_ceil(512) * 512 + 512 + 20;
    assert!((cut as u64) < len);
    fs::write(&p, &bytes[..cut]).unwrap();
    imgs
}

#[test]
fn webdataset_tar_layout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wds_toy");
    let imgs = make_wds(&root);
    let wds = WebDataset::new(&root, "test");
    let shards: Vec<String> = wds
        .shards()
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(shards, ["0.tar", "1.tar", "2.tar", "10.tar"]);

    let ds = wds.load().unwrap();
    assert_eq!(ds.name, "wds_toy");
    assert_eq!(
        ds.classnames.as_deref(),
        Some(&["cat".to_string(), "dog".to_string()][..])
    );
    assert_eq!(ds.templates.as_ref().map(Vec::len), Some(2));
    let got: Vec<(&str, Option<i64>)> = ds.items.iter().map(|i| (i.id.as_str(), i.label)).collect();
    let long_key = format!("{}/s0000003", "d".repeat(120));
    assert_eq!(
        got,
        [
            ("test/0.tar#s0000000", Some(1)),
            ("test/0.tar#s0000001", Some(0)),
            (format!("test/1.tar#{long_key}").as_str(), Some(1)),
            ("test/2.tar#s0000020", None),
            ("test/10.tar#s0000010", Some(0)),
        ]
    );
    assert_eq!(ds.items[1].meta["caption"], "a small cat");
    assert_eq!(ds.items[1].meta["shard"], "test/0.tar");
    let expected = [&imgs[0], &imgs[1], &imgs[3], &imgs[2], &imgs[2]];
    for (item, want) in ds.items.iter().zip(expected) {
        assert!(matches!(item.location, Location::TarMember { .. }));
        assert_eq!(item.bytes_hash, blake3_of(want), "{}", item.id);
        assert_eq!(&ds.read_bytes(item).unwrap(), want, "{}", item.id);
    }
    let mut reasons: Vec<String> = ds
        .errors
        .iter()
        .map(|e| format!("{} {}", e.id, e.reason))
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("test/0.tar#s0000002") && reasons[0].contains("no image"));
    assert!(reasons[1].starts_with("test/1.tar#s0000004") && reasons[1].contains("\"dog\""));
    assert!(reasons[2].starts_with("test/2.tar") && reasons[2].contains("2.tar"));

    let f1 = wds.fingerprint().unwrap();
    assert_eq!(f1, WebDataset::new(&root, "test").fingerprint().unwrap());
    assert_eq!(
        WebDataset::new(&root, "test")
            .with_max_shards(1)
            .load()
            .unwrap()
            .items
            .len(),
        2
    );

    let err = WebDataset::new(&root, "train")
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("train"), "{err}");
}

/// Builds a mirror of the Hugging Face hub cache for `clip-benchmark/wds_imagenet1k`
/// (`datasets--owner--name/{blobs,refs/main,snapshots/<commit>}` with symlinks into blobs) from
/// the first `n` shared ImageNet samples.
fn make_hub_mirror(hub: &Path, n: usize) -> Vec<(Vec<u8>, i64)> {
    let repo = hub.join("datasets--clip-benchmark--wds_imagenet1k");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit);
    fs::create_dir_all(snap.join("test")).unwrap();
    fs::create_dir_all(repo.join("blobs")).unwrap();

    let mut rdr = csv::Reader::from_path(samples_dir().join("manifest.csv")).unwrap();
    let mut samples = Vec::new();
    let tmp_tar = hub.join("tmp.tar");
    let mut b = tar::Builder::new(fs::File::create(&tmp_tar).unwrap());
    for (i, rec) in rdr.records().take(n).enumerate() {
        let rec = rec.unwrap();
        let bytes = fs::read(samples_dir().join(&rec[0])).unwrap();
        let label: i64 = rec[1].parse().unwrap();
        tar_add(&mut b, &format!("s{i:07}.jpg"), &bytes);
        tar_add(
            &mut b,
            &format!("s{i:07}.cls"),
            label.to_string().as_bytes(),
        );
        samples.push((bytes, label));
    }
    b.into_inner().unwrap();

    let place = |rel: &str, data: &[u8]| {
        let etag = blake3::hash(data).to_hex().to_string();
        fs::write(repo.join("blobs").join(&etag), data).unwrap();
        let link = snap.join(rel);
        #[cfg(unix)]
        {
            let depth = rel.split('/').count();
            let target = format!("{}blobs/{etag}", "../".repeat(depth + 1));
            std::os::unix::fs::symlink(target, &link).unwrap();
        }
        #[cfg(not(unix))]
        fs::write(&link, data).unwrap();
    };
    place(
        "classnames.txt",
        &fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/imagenet/classnames_openai.txt"),
        )
        .unwrap(),
    );
    place(
        "zeroshot_classification_templates.txt",
        &fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data/imagenet/templates_openai_80.txt"),
        )
        .unwrap(),
    );
    place("test/0.tar", &fs::read(&tmp_tar).unwrap());
    fs::remove_file(&tmp_tar).unwrap();
    samples
}

#[test]
fn hub_dataset_from_local_cache_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let hub = dir.path().join("hub");
    let samples = make_hub_mirror(&hub, 12);

    let hd = HubDataset::new("hf://datasets/clip-benchmark/wds_imagenet1k", "test")
        .unwrap()
        .with_cache_dir(&hub)
        .with_offline(true);
    let snap = hd.cached_snapshot().unwrap();
    assert!(snap.ends_with("snapshots/0123456789abcdef0123456789abcdef01234567"));
    let ds = hd.load().unwrap();
    assert!(ds.errors.is_empty(), "{:?}", ds.errors);
    assert_eq!(ds.name, "wds_imagenet1k");
    assert!(
        ds.source_description
            .starts_with("hf://datasets/clip-benchmark/wds_imagenet1k")
    );
    assert_eq!(ds.items.len(), 12);
    assert_eq!(ds.classnames.as_ref().map(Vec::len), Some(1000));
    assert_eq!(ds.templates.as_ref().map(Vec::len), Some(80));
    for (item, (bytes, label)) in ds.items.iter().zip(&samples) {
        assert_eq!(item.label, Some(*label));
        assert_eq!(item.bytes_hash, blake3_of(bytes));
        assert_eq!(&ds.read_bytes(item).unwrap(), bytes);
    }
    assert_eq!(hd.fingerprint().unwrap(), hd.clone().fingerprint().unwrap());

    // Through DatasetSource, and with a revision that is the commit itself.
    let src = DatasetSource::parse(
        "hf://datasets/clip-benchmark/wds_imagenet1k@0123456789abcdef0123456789abcdef01234567",
        Some("test"),
    )
    .unwrap();
    let DatasetSource::Hub(h) = src else {
        panic!("not a hub source")
    };
    let ds2 = h.with_cache_dir(&hub).with_offline(true).load().unwrap();
    assert_eq!(ds2.items.len(), 12);

    // Not cached: an error that says so, no panic.
    let missing = HubDataset::new("hf://datasets/clip-benchmark/wds_cars", "test")
        .unwrap()
        .with_cache_dir(&hub)
        .with_offline(true);
    let err = missing.load().unwrap_err().to_string();
    assert!(
        err.contains("wds_cars") && err.contains("not in the local cache"),
        "{err}"
    );
}

#[test]
fn hub_uri_parsing() {
    let u: HubUri = "hf://datasets/clip-benchmark/wds_imagenet1k"
        .parse()
        .unwrap();
    assert_eq!(u.repo_id, "clip-benchmark/wds_imagenet1k");
    assert_eq!(u.revision, "main");
    assert_eq!(u.to_string(), "hf://datasets/clip-benchmark/wds_imagenet1k");
    let u: HubUri = "hf://datasets/a/b@v1".parse().unwrap();
    assert_eq!((u.repo_id.as_str(), u.revision.as_str()), ("a/b", "v1"));
    for bad in [
        "hf://models/a/b",
        "hf://datasets/a",
        "hf://datasets/a/b/c",
        "hf://datasets/a/b@",
        "hf://datasets/../b",
    ] {
        assert!(bad.parse::<HubUri>().is_err(), "{bad}");
    }
}

#[test]
fn dataset_source_parse() {
    let dir = tempfile::tempdir().unwrap();
    let wds_root = dir.path().join("wds");
    make_wds(&wds_root);
    assert!(matches!(
        DatasetSource::parse(wds_root.to_str().unwrap(), Some("test")).unwrap(),
        DatasetSource::WebDataset(_)
    ));
    write(&dir.path().join("folder/a/x.png"), &png_bytes(0));
    let src = DatasetSource::parse(dir.path().join("folder").to_str().unwrap(), None).unwrap();
    assert!(matches!(src, DatasetSource::Folder(_)));
    assert_eq!(src.load(None).unwrap().items.len(), 1);
    src.fingerprint().unwrap();
    let m = dir.path().join("m.csv");
    fs::write(&m, "path\nfolder/a/x.png\n").unwrap();
    let src = DatasetSource::parse(m.to_str().unwrap(), None).unwrap();
    assert!(matches!(src, DatasetSource::Manifest(_)));
    let ds = src.load(None).unwrap();
    assert_eq!(ds.items[0].label, None);
    assert!(DatasetSource::parse(dir.path().join("none").to_str().unwrap(), None).is_err());
}
