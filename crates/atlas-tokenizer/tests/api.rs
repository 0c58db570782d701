//! API behaviour of the tokenizers (layout, errors, identity, HF tokenizer.json).

use atlas_tokenizer::{
    ClipBpeTokenizer, EOT_ID, HfClean, HfJsonOptions, HfJsonTokenizer, SOT_ID, TextTokenizer,
    TokenizerError,
};

fn word_level_json() -> String {
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": {"<pad>": 0, "<unk>": 1, "<sot>": 2, "<eot>": 3, "red": 4, "cube": 5, "a": 6},
            "unk_token": "<unk>"
        }
    })
    .to_string()
}

#[test]
fn truncation_sets_last_id_to_eot() {
    let tok = ClipBpeTokenizer::bundled(8).unwrap();
    let long = "one two three four five six seven eight nine ten";
    let row = &tok.tokenize(&[long]).unwrap()[0];
    assert_eq!(row.len(), 8);
    assert_eq!(row[0], SOT_ID);
    assert_eq!(row[7], EOT_ID);
    let full = tok.encode(long).unwrap();
    assert_eq!(&row[1..7], &full[..6]);
}

#[test]
fn empty_and_batch() {
    let tok = ClipBpeTokenizer::bundled(77).unwrap();
    let texts: Vec<String> = (0..200).map(|i| format!("a photo of {i} cats")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let rows = tok.tokenize(&refs).unwrap();
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r.len() == 77));
    let empty = &tok.tokenize(&[""]).unwrap()[0];
    assert_eq!(&empty[..3], &[SOT_ID, EOT_ID, 0]);
}

#[test]
fn errors_name_the_cause() {
    assert!(matches!(
        ClipBpeTokenizer::bundled(1),
        Err(TokenizerError::ContextLength(1))
    ));
    let e = ClipBpeTokenizer::from_gz_bytes(b"not gzip", 77).unwrap_err();
    assert!(e.to_string().contains("gunzip"), "{e}");
    let e = ClipBpeTokenizer::from_path("/nonexistent/bpe.txt.gz", 77).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/bpe.txt.gz"), "{e}");
    let e = HfJsonTokenizer::from_json_bytes(b"{}", HfJsonOptions::default()).unwrap_err();
    assert!(e.to_string().contains("tokenizer.json"), "{e}");
}

#[test]
fn identity_depends_on_config() {
    let a = ClipBpeTokenizer::bundled(77).unwrap();
    let b = ClipBpeTokenizer::bundled(77).unwrap();
    let c = ClipBpeTokenizer::bundled(64).unwrap();
    assert_eq!(a.identity(), b.identity());
    assert_ne!(a.identity(), c.identity());
}

#[test]
fn hf_word_level_layout() {
    let opts = HfJsonOptions {
        context_length: 6,
        pad_id: 0,
        eot_id: 3,
        sot_id: Some(2),
        append_eot: true,
        add_special_tokens: true,
        eot_on_truncate: true,
        pad_to_max: false,
        clean: HfClean::Whitespace,
    };
    let tok = HfJsonTokenizer::from_json_bytes(word_level_json().as_bytes(), opts).unwrap();
    let rows = tok
        .tokenize(&["A  red cube", "a red red red red red cube"])
        .unwrap();
    assert_eq!(rows[0], vec![2, 6, 4, 5, 3, 0]);
    assert_eq!(rows[1], vec![2, 6, 4, 4, 4, 3]);
    assert_eq!(tok.eot_id(), 3);
    assert_eq!(tok.context_length(), 6);
    let unpadded = tok.encode(&["red cube"]).unwrap();
    assert_eq!(unpadded[0], vec![2, 4, 5, 3]);
    let other = HfJsonTokenizer::from_json_bytes(
        word_level_json().as_bytes(),
        HfJsonOptions {
            context_length: 7,
            ..tok.options().clone()
        },
    )
    .unwrap();
    assert_ne!(tok.identity(), other.identity());
}

#[test]
fn trait_objects() {
    let toks: Vec<Box<dyn TextTokenizer>> = vec![
        Box::new(ClipBpeTokenizer::bundled(77).unwrap()),
        Box::new(
            HfJsonTokenizer::from_json_bytes(
                word_level_json().as_bytes(),
                HfJsonOptions {
                    eot_id: 3,
                    sot_id: Some(2),
                    append_eot: true,
                    ..HfJsonOptions::default()
                },
            )
            .unwrap(),
        ),
    ];
    for t in &toks {
        let rows = t.tokenize(&["a red cube"]).unwrap();
        assert_eq!(rows[0].len(), t.context_length());
        assert!(rows[0].contains(&t.eot_id()));
    }
}
