//! The embed stage computes only what is missing, records bad images, and builds heads as
//! open_clip does — with small fake encoders, so no burn here.

use atlas_artifacts::ContentHash;
use atlas_embed::{
    EmbedOptions, ImageEncoder, ImageItems, TextEncoder, build_head, embed_images, embed_texts,
    load_image_rows, prompts_for,
};
use atlas_preprocess::PreprocessConfig;
use atlas_store::Store;
use atlas_tokenizer::{ClipBpeTokenizer, TextTokenizer};

struct MeanColour;
impl ImageEncoder for MeanColour {
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
                    img[c * plane..(c + 1) * plane].iter().sum::<f32>() / plane as f32 + 3.0
                })
            })
            .collect())
    }
}

struct TokenCount;
impl TextEncoder for TokenCount {
    fn embed_dim(&self) -> usize {
        2
    }
    fn encode_texts(&self, ids: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        Ok(ids
            .iter()
            .flat_map(|r| {
                let n = r.iter().filter(|&&t| t != 0).count() as f32;
                [n, 1.0]
            })
            .collect())
    }
}

fn png(rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn run(store: &Store, ns: &str, files: &[Vec<u8>]) -> atlas_embed::EmbedReport {
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
        shard_rows: 3,
        progress: None,
    };
    embed_images(
        store,
        ns,
        &MeanColour,
        &PreprocessConfig {
            size: 16,
            ..Default::default()
        },
        &items,
        &opts,
    )
    .unwrap()
}

#[test]
fn only_missing_items_are_embedded_and_bad_images_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let ns = "test-image-namespace".to_string();
    let mut files: Vec<Vec<u8>> = (0..4u8).map(|i| png([i * 50, 10, 200])).collect();
    files.push(b"this is not an image".to_vec());

    let first = run(&store, &ns, &files);
    assert_eq!((first.embedded, first.failed, first.cached), (4, 1, 0));

    let again = run(&store, &ns, &files);
    assert_eq!((again.embedded, again.failed, again.cached), (0, 0, 5));

    files.push(png([1, 2, 3]));
    files.push(png([4, 5, 6]));
    let more = run(&store, &ns, &files);
    assert_eq!((more.embedded, more.failed, more.cached), (2, 0, 5));

    let rows = load_image_rows(&store, &ns).unwrap();
    assert_eq!(rows.len(), 7);
    let bad = rows.errors.iter().flatten().count();
    assert_eq!(bad, 1);
    for i in 0..rows.len() {
        if rows.errors[i].is_none() {
            let n: f32 = rows.row(i).iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5, "row {i} is not unit length");
        }
    }
}

#[test]
fn heads_average_normalised_prompt_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let tok = ClipBpeTokenizer::bundled(77).unwrap();
    let ns = "test-text-namespace".to_string();
    let classes = vec!["cat".to_string(), "golden retriever".to_string()];
    let templates = vec!["a photo of a {c}.".to_string(), "{c}".to_string()];
    let prompts: Vec<String> = prompts_for(&classes, &templates).concat();
    let opts = EmbedOptions::default();
    let r = embed_texts(&store, &ns, &TokenCount, &tok, &prompts, &opts).unwrap();
    assert_eq!(r.embedded, 4);
    assert_eq!(
        embed_texts(&store, &ns, &TokenCount, &tok, &prompts, &opts)
            .unwrap()
            .cached,
        4
    );
    let head = build_head(&store, &ns, &classes, &templates).unwrap();
    // By hand: token counts with SOT/EOT: "a photo of a cat." = 2+5 -> [7,1]; "cat" -> [3,1].
    let ids = tok.tokenize(&["a photo of a cat.", "cat"]).unwrap();
    let n0 = ids[0].iter().filter(|&&t| t != 0).count() as f64;
    let n1 = ids[1].iter().filter(|&&t| t != 0).count() as f64;
    let a = [n0 / (n0 * n0 + 1.0).sqrt(), 1.0 / (n0 * n0 + 1.0).sqrt()];
    let b = [n1 / (n1 * n1 + 1.0).sqrt(), 1.0 / (n1 * n1 + 1.0).sqrt()];
    let m = [(a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0];
    let norm = (m[0] * m[0] + m[1] * m[1]).sqrt();
    assert!((head.weights[0] as f64 - m[0] / norm).abs() < 1e-6);
    assert!((head.weights[1] as f64 - m[1] / norm).abs() < 1e-6);
    assert!(build_head(&store, &ns, &["dog".to_string()], &templates).is_err());
}
