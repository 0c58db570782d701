use atlas_stagekit::testing as util;

use arrow::datatypes::DataType;
use util::{Owned, mixed, one_hot_head};

use super::*;

fn params(ks: &[usize]) -> Params {
    Params {
        ks: ks.to_vec(),
        bootstrap: 100,
        ..Params::default()
    }
}

fn recall(out: &RetrievalOutput, d: Direction, k: usize) -> Option<f64> {
    out.rows
        .iter()
        .find(|r| r.direction == d && r.k == k)
        .unwrap()
        .recall
        .map(|c| c.estimate)
}

#[test]
fn captions_equal_to_images_give_recall_one() {
    let imgs = Owned::pointing(one_hot_head(4), vec![-1; 4], &[0, 1, 2, 3]);
    let texts: Vec<String> = (0..4).map(|i| format!("caption {i}")).collect();
    let image = [0usize, 1, 2, 3];
    let caps = Captions {
        texts: &texts,
        embeddings: &imgs.emb,
        image: &image,
    };
    let out = compute(
        &imgs.set("m", "coco", "retrieval", None),
        &caps,
        &params(&[1, 5]),
    )
    .unwrap();
    assert_eq!(recall(&out, Direction::TextToImage, 1), Some(1.0));
    assert_eq!(recall(&out, Direction::ImageToText, 1), Some(1.0));
    // k = 5 > 4 candidates: documented null.
    assert_eq!(recall(&out, Direction::TextToImage, 5), None);
    assert!(
        out.rows
            .iter()
            .find(|r| r.k == 5)
            .unwrap()
            .note
            .as_deref()
            .unwrap()
            .contains("exceeds")
    );
}

#[test]
fn known_ranks_and_any_caption_rule() {
    // 3 images e0, e1, e2. Captions: c0 -> img0 (= e0); c1 -> img1 but looks like e2;
    // c2 -> img1 (= e1); c3 -> img2 but looks like e0 (weakly).
    let imgs = Owned::pointing(one_hot_head(3), vec![-1; 3], &[0, 1, 2]);
    let emb = [
        mixed(3, &[(0, 1.0)]),
        mixed(3, &[(2, 1.0)]),
        mixed(3, &[(1, 1.0)]),
        mixed(3, &[(0, 1.0), (2, 0.5)]),
    ]
    .concat();
    let texts: Vec<String> = (0..4).map(|i| format!("c{i}")).collect();
    let image = [0usize, 1, 1, 2];
    let caps = Captions {
        texts: &texts,
        embeddings: &emb,
        image: &image,
    };
    let out = compute(
        &imgs.set("m", "flickr", "retrieval", None),
        &caps,
        &params(&[1, 2, 3]),
    )
    .unwrap();
    // text -> image: c0 rank 0, c1: scores [0, 0, 1] -> img1 rank 2, c2 rank 0, c3: scores [.89, 0, .45] -> img2 rank 1.
    assert_eq!(recall(&out, Direction::TextToImage, 1), Some(0.5));
    assert_eq!(recall(&out, Direction::TextToImage, 2), Some(0.75));
    assert_eq!(recall(&out, Direction::TextToImage, 3), Some(1.0));
    // image -> text: img0 best c0 (rank 0); img1 has c2 at score 1 (rank 0 counting c1? c1 scores 0) ;
    // img2: c1 (1.0) outranks its own c3 (0.45) -> rank 1.
    assert!((recall(&out, Direction::ImageToText, 1).unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(recall(&out, Direction::ImageToText, 2), Some(1.0));
    let r = out
        .rows
        .iter()
        .find(|r| r.direction == Direction::TextToImage && r.k == 1)
        .unwrap();
    assert_eq!(r.n_queries, 4);
    let ci = r.recall.unwrap();
    assert!(ci.lower <= ci.estimate && ci.estimate <= ci.upper);
}

#[test]
fn caption_lists_from_meta_and_failed_images() {
    let mut imgs = Owned::pointing(one_hot_head(3), vec![-1; 3], &[0, 1, 2]).with_meta(
        "caption",
        vec![
            r#"["a cat", "the cat"]"#.into(),
            "a dog".into(),
            r#"["x", "y", "z"]"#.into(),
        ],
    );
    let (texts, image) = captions_from_meta(&imgs.index, "caption").unwrap();
    assert_eq!(texts.len(), 6);
    assert_eq!(image, vec![0, 0, 1, 2, 2, 2]);
    let emb: Vec<f32> = image
        .iter()
        .flat_map(|&i| imgs.emb[i * 3..(i + 1) * 3].to_vec())
        .collect();
    imgs.status[2] = atlas_artifacts::ItemStatus::Failed("truncated".into());
    let caps = Captions {
        texts: &texts,
        embeddings: &emb,
        image: &image,
    };
    let out = compute(
        &imgs.set("m", "coco", "retrieval", None),
        &caps,
        &params(&[1]),
    )
    .unwrap();
    assert_eq!(
        (
            out.n_images,
            out.n_captions,
            out.failed_images,
            out.dropped_captions
        ),
        (2, 3, 1, 3)
    );
    assert_eq!(recall(&out, Direction::TextToImage, 1), Some(1.0));
    assert!(captions_from_meta(&imgs.index, "nope").is_err());
}

#[test]
fn misaligned_captions_are_an_error() {
    let imgs = Owned::pointing(one_hot_head(3), vec![-1; 3], &[0, 1, 2]);
    let texts = vec!["a".to_string()];
    let caps = Captions {
        texts: &texts,
        embeddings: &imgs.emb[..3],
        image: &[7],
    };
    assert!(compute(&imgs.set("m", "c", "retrieval", None), &caps, &params(&[1])).is_err());
    let caps = Captions {
        texts: &texts,
        embeddings: &imgs.emb,
        image: &[0],
    };
    assert!(compute(&imgs.set("m", "c", "retrieval", None), &caps, &params(&[1])).is_err());
}

#[test]
fn schema() {
    let imgs = Owned::pointing(one_hot_head(4), vec![-1; 4], &[0, 1, 2, 3]);
    let texts: Vec<String> = (0..4).map(|i| format!("caption {i}")).collect();
    let image = [0usize, 1, 2, 3];
    let caps = Captions {
        texts: &texts,
        embeddings: &imgs.emb,
        image: &image,
    };
    let out = compute(
        &imgs.set("m", "coco", "retrieval", None),
        &caps,
        &params(&[1, 5, 10]),
    )
    .unwrap();
    let b = out.to_batches().unwrap();
    assert_eq!(b[0].0, "retrieval");
    let s = b[0].1.schema();
    for (n, t) in [
        ("model", DataType::Utf8),
        ("dataset", DataType::Utf8),
        ("direction", DataType::Utf8),
        ("k", DataType::Int64),
        ("recall", DataType::Float64),
    ] {
        assert_eq!(s.field_with_name(n).unwrap().data_type(), &t);
    }
    assert_eq!(b[0].1.num_rows(), 6);
    assert_eq!(out.headline().len(), 2);
}
