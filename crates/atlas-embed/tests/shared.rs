//! Decode once for many models: `embed_images_shared` reads each missing image once and gives
//! every target exactly the rows and failure records that `embed_images` alone would store.

use std::sync::atomic::{AtomicUsize, Ordering};

use atlas_artifacts::{ContentHash, EmbeddingRows};
use atlas_embed::{
    EmbedOptions, EmbedTarget, ImageEncoder, ImageItems, embed_images, embed_images_shared,
    load_image_rows,
};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Store;

/// Channel means times `gain`, plus an offset so no row is zero.
struct Colour {
    gain: f32,
}
impl ImageEncoder for Colour {
    fn embed_dim(&self) -> usize {
        3
    }
    fn encode_images(&self, px: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let per = px.len() / batch;
        let plane = per / 3;
        Ok(px
            .chunks(per)
            .flat_map(|img| {
                (0..3).map(move |c| {
                    self.gain * img[c * plane..(c + 1) * plane].iter().sum::<f32>() / plane as f32
                        + 3.0
                })
            })
            .collect())
    }
}

fn png(rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(24, 20, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn files() -> Vec<Vec<u8>> {
    let mut f: Vec<Vec<u8>> = (0..9u8)
        .map(|i| png([i * 25, 200 - i * 20, 7 * i]))
        .collect();
    f.insert(4, b"not an image".to_vec());
    f
}

fn opts() -> EmbedOptions {
    EmbedOptions {
        batch_size: 3,
        shard_rows: 4,
        progress: None,
    }
}

fn pre() -> PreprocessConfig {
    PreprocessConfig {
        size: 16,
        ..Default::default()
    }
}

/// `(item_hash, id, error, values)` sorted by hash: a namespace's content, shard layout aside.
fn content(store: &Store, ns: &str) -> Vec<(String, String, Option<String>, Vec<f32>)> {
    let rows: EmbeddingRows = load_image_rows(store, ns).unwrap();
    let mut out: Vec<_> = (0..rows.len())
        .map(|i| {
            (
                rows.hashes[i].to_hex(),
                rows.ids[i].clone(),
                rows.errors[i].clone(),
                rows.row(i).to_vec(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn one_decode_per_missing_image_and_the_same_rows_as_one_model_at_a_time() {
    let files = files();
    let ids: Vec<String> = (0..files.len()).map(|i| format!("img{i}.png")).collect();
    let hashes: Vec<ContentHash> = files.iter().map(|b| ContentHash::of(b)).collect();
    let reads = AtomicUsize::new(0);
    let read = |i: usize| {
        reads.fetch_add(1, Ordering::SeqCst);
        Ok(files[i].clone())
    };
    let items = ImageItems {
        ids: &ids,
        hashes: &hashes,
        read: &read,
        border_crop: 0,
    };
    let (a, b, c) = (
        Colour { gain: 1.0 },
        Colour { gain: -2.0 },
        Colour { gain: 0.5 },
    );

    // Reference: each model alone, in its own store.
    let alone = tempfile::tempdir().unwrap();
    let alone = Store::open(alone.path()).unwrap();
    for (ns, enc) in [("a", &a), ("b", &b), ("c", &c)] {
        embed_images(&alone, ns, enc, &pre(), &items, &opts()).unwrap();
    }

    // Shared: model `c` already has the first 6 items (a partial earlier run).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first6 = ImageItems {
        ids: &ids[..6],
        hashes: &hashes[..6],
        read: &read,
        border_crop: 0,
    };
    embed_images(&store, "c", &c, &pre(), &first6, &opts()).unwrap();
    reads.store(0, Ordering::SeqCst);
    let targets = [
        EmbedTarget {
            namespace: "a",
            encoder: &a,
        },
        EmbedTarget {
            namespace: "b",
            encoder: &b,
        },
        EmbedTarget {
            namespace: "c",
            encoder: &c,
        },
    ];
    let reports = embed_images_shared(&store, &targets, &pre(), &items, &opts()).unwrap();
    assert_eq!(
        reads.load(Ordering::SeqCst),
        files.len(),
        "each missing image is read once for all three models"
    );
    let got: Vec<_> = reports
        .iter()
        .map(|r| (r.embedded, r.failed, r.cached))
        .collect();
    assert_eq!(got, [(9, 1, 0), (9, 1, 0), (4, 0, 6)]);
    for ns in ["a", "b", "c"] {
        assert_eq!(content(&store, ns), content(&alone, ns), "namespace {ns}");
    }
    assert_ne!(
        content(&store, "a"),
        content(&store, "b"),
        "the models differ"
    );

    // Nothing missing: nothing is read.
    reads.store(0, Ordering::SeqCst);
    let again = embed_images_shared(&store, &targets, &pre(), &items, &opts()).unwrap();
    assert_eq!(reads.load(Ordering::SeqCst), 0);
    assert!(
        again
            .iter()
            .all(|r| r.embedded == 0 && r.cached == files.len())
    );
}

#[test]
fn a_model_error_stops_the_pass_and_names_its_namespace() {
    struct Broken;
    impl ImageEncoder for Broken {
        fn embed_dim(&self) -> usize {
            3
        }
        fn encode_images(&self, _px: &[f32], batch: usize) -> Result<Vec<f32>, String> {
            Ok(vec![f32::NAN; 3 * batch])
        }
    }
    let files = files();
    let ids: Vec<String> = (0..files.len()).map(|i| format!("img{i}.png")).collect();
    let hashes: Vec<ContentHash> = files.iter().map(|b| ContentHash::of(b)).collect();
    let read = |i: usize| Ok(files[i].clone());
    let items = ImageItems {
        ids: &ids,
        hashes: &hashes,
        read: &read,
        border_crop: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = Colour { gain: 1.0 };
    let targets = [
        EmbedTarget {
            namespace: "good",
            encoder: &good,
        },
        EmbedTarget {
            namespace: "broken",
            encoder: &Broken,
        },
    ];
    let e = embed_images_shared(&store, &targets, &pre(), &items, &opts()).unwrap_err();
    assert!(e.to_string().contains("broken"), "{e}");
    assert!(
        load_image_rows(&store, "broken").unwrap().is_empty(),
        "nothing of the broken model is stored"
    );
}
