//! A model whose outputs are not finite (NaN/Inf weights) is an error naming its namespace,
//! never a table of NaN confidences, and never blamed on the images.

use atlas_artifacts::ContentHash;
use atlas_artifacts::kinds;
use atlas_embed::{
    EmbedError, EmbedOptions, ImageEncoder, ImageItems, TextEncoder, embed_images, embed_texts,
};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Store;
use atlas_tokenizer::ClipBpeTokenizer;

/// Finite for every image but the `bad`-th of each batch, which gets `value`.
struct Broken {
    bad: usize,
    value: f32,
}

impl ImageEncoder for Broken {
    fn embed_dim(&self) -> usize {
        4
    }
    fn encode_images(&self, _px: &[f32], batch: usize) -> Result<Vec<f32>, String> {
        let mut out = vec![0.5; batch * 4];
        if self.bad < batch {
            out[self.bad * 4 + 2] = self.value;
        }
        Ok(out)
    }
}

impl TextEncoder for Broken {
    fn embed_dim(&self) -> usize {
        4
    }
    fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        let mut out = vec![0.5; ids.len() * 4];
        if self.bad < ids.len() {
            out[self.bad * 4] = self.value;
        }
        Ok(out)
    }
}

fn png(rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(20, 20, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn embed(store: &Store, ns: &str, enc: &Broken) -> Result<atlas_embed::EmbedReport, EmbedError> {
    let files: Vec<Vec<u8>> = (0..5u8).map(|i| png([i * 40, 9, 99])).collect();
    let ids: Vec<String> = (0..files.len()).map(|i| format!("img{i}.png")).collect();
    let hashes: Vec<ContentHash> = files.iter().map(|b| ContentHash::of(b)).collect();
    let read = |i: usize| Ok(files[i].clone());
    let items = ImageItems {
        ids: &ids,
        hashes: &hashes,
        read: &read,
        border_crop: 0,
    };
    let opts = EmbedOptions {
        batch_size: 2,
        shard_rows: 100,
        progress: None,
    };
    let pre = PreprocessConfig {
        size: 8,
        ..Default::default()
    };
    embed_images(store, ns, enc, &pre, &items, &opts)
}

#[test]
fn nan_image_embeddings_are_a_model_error() {
    for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ns = "test-image-namespace".to_string();
        let err = embed(&store, &ns, &Broken { bad: 1, value }).unwrap_err();
        assert!(matches!(err, EmbedError::NonFinite { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&ns), "{msg}");
        assert!(msg.contains("non-finite"), "{msg}");
        assert!(msg.contains("checkpoint"), "{msg}");
        // Nothing was stored: no rows, and no per-image error rows blaming the images.
        assert!(
            store
                .shard_items(kinds::IMAGE_EMBEDDINGS, &ns, "item_hash")
                .unwrap()
                .is_empty()
        );
    }
    // The same stage with a finite model works (the check has no false alarm).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ns = "test-image-namespace".to_string();
    let r = embed(
        &store,
        &ns,
        &Broken {
            bad: 99,
            value: 0.0,
        },
    )
    .unwrap();
    assert_eq!((r.embedded, r.failed), (5, 0));
}

#[test]
fn nan_text_embeddings_are_a_model_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tok = ClipBpeTokenizer::bundled(16).unwrap();
    let ns = "test-text-namespace".to_string();
    let prompts: Vec<String> = ["a photo of a cat.", "a photo of a dog.", "a sketch"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let opts = EmbedOptions {
        batch_size: 8,
        shard_rows: 100,
        progress: None,
    };
    let enc = Broken {
        bad: 2,
        value: f32::NAN,
    };
    let err = embed_texts(&store, &ns, &enc, &tok, &prompts, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, EmbedError::NonFinite { .. }), "{msg}");
    assert!(msg.contains(&ns) && msg.contains("non-finite"), "{msg}");
    assert!(msg.contains("a sketch"), "{msg}");
    assert!(
        store
            .shard_items(kinds::TEXT_EMBEDDINGS, &ns, "item_hash")
            .unwrap()
            .is_empty()
    );
}
