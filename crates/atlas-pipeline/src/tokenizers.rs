//! Which tokenizer a CLIP model's prompts go through, decided the way the model's own library
//! decides it:
//!
//! - `[[model]] tokenizer = "FILE"` always wins (a `tokenizer.json`).
//! - A SigLIP text tower (last-token pooling, no causal mask): its SentencePiece
//!   `tokenizer.json` (beside the weights, or `tokenizer`) laid out as open_clip does for an
//!   open_clip checkpoint, as `SiglipProcessor` does for an HF `SiglipModel`.
//! - An open_clip checkpoint with CLIP's 49,408-token vocabulary: the CLIP BPE tokenizer, as
//!   open_clip (which never reads a `tokenizer.json`): a `tokenizer.json` beside it is ignored.
//! - An HF `CLIPModel`: the `tokenizer.json` beside it, laid out as `CLIPProcessor` with
//!   `truncation=True` (a prompt longer than the context keeps its first tokens and ends with
//!   the end-of-text id; never an error); without one, the CLIP BPE tokenizer.
//! - Any other vocabulary (e.g. the demo zoo's word tokenizer): the `tokenizer.json` beside the
//!   weights, with a `tokenizer_options.json` beside it when present; none is an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use atlas_models::{ResolvedFiles, TextPool};
use atlas_tokenizer::{
    ClipBpeTokenizer, HfJsonOptions, HfJsonTokenizer, SiglipMode, SiglipTokenizer, TextTokenizer,
};

use crate::PipelineError;
use crate::config::{LoadedConfig, ModelEntry};

/// CLIP's BPE vocabulary size (open_clip `SimpleTokenizer`).
const CLIP_VOCAB: usize = 49408;

/// The model's tokenizer (see the module docs).
pub(crate) fn tokenizer_for(
    cfg: &LoadedConfig,
    entry: &ModelEntry,
    described: &atlas_models::Described,
) -> Result<Arc<dyn TextTokenizer>, PipelineError> {
    let text = &described.config.text;
    let ctx = text.context_length;
    let name = entry.name.get_ref();
    let beside = described
        .files
        .weights()
        .parent()
        .map(|d| d.join("tokenizer.json"))
        .filter(|p| p.is_file());
    let explicit = entry.tokenizer.as_ref().map(|p| cfg.resolve(p));
    let hf_layout = matches!(described.files, ResolvedFiles::Hf { .. });
    if text.pool == TextPool::Last && !text.causal_mask {
        let path = explicit.or(beside).ok_or_else(|| {
            PipelineError::Config(format!(
                "model `{name}` has a SigLIP text tower, which needs its SentencePiece \
                 tokenizer.json: put it beside {} (hub snapshots of SigLIP models ship one) or \
                 set `tokenizer = \"PATH\"` on the [[model]]",
                described.files.weights().display()
            ))
        })?;
        let mode = if hf_layout {
            SiglipMode::HfProcessor
        } else {
            SiglipMode::OpenClip
        };
        return Ok(Arc::new(SiglipTokenizer::from_path(&path, ctx, mode)?));
    }
    if let Some(path) = explicit {
        return Ok(Arc::new(hf_tokenizer(&path, ctx)?));
    }
    match beside {
        Some(path) if hf_layout || text.vocab_size != CLIP_VOCAB => {
            Ok(Arc::new(hf_tokenizer(&path, ctx)?))
        }
        Some(path) => {
            tracing::debug!(model = %name, file = %path.display(), "open_clip checkpoint: tokenizing with the CLIP BPE vocabulary as open_clip does (the tokenizer.json beside it is not read)");
            Ok(Arc::new(ClipBpeTokenizer::bundled(ctx)?))
        }
        None if text.vocab_size == CLIP_VOCAB => Ok(Arc::new(ClipBpeTokenizer::bundled(ctx)?)),
        None => Err(PipelineError::Config(format!(
            "model `{name}` has a {}-token text vocabulary, not CLIP's: put its tokenizer.json \
             beside {} or set `tokenizer = \"PATH\"` on the [[model]]",
            text.vocab_size,
            described.files.weights().display()
        ))),
    }
}

/// A `tokenizer.json` with its layout options: from `tokenizer_options.json` beside it when
/// present (a model can ship its own layout), else `CLIPProcessor`'s (pad 0, EOT = the `<eot>` /
/// `<|endoftext|>` / `</s>` token, a longer prompt truncated with EOT kept last).
fn hf_tokenizer(path: &Path, context_length: usize) -> Result<HfJsonTokenizer, PipelineError> {
    let opts_path: PathBuf = path.with_file_name("tokenizer_options.json");
    let opts = if opts_path.is_file() {
        let bytes =
            std::fs::read(&opts_path).map_err(|e| PipelineError::Io(opts_path.clone(), e))?;
        serde_json::from_slice::<HfJsonOptions>(&bytes)
            .map_err(|e| PipelineError::Config(format!("{}: {e}", opts_path.display())))?
    } else {
        let probe = HfJsonTokenizer::from_file(path, HfJsonOptions::default())?;
        let eot = ["<eot>", "<|endoftext|>", "<end_of_text>", "</s>"]
            .iter()
            .find_map(|t| probe.inner().token_to_id(t))
            .ok_or_else(|| {
                PipelineError::Config(format!(
                    "{}: no end-of-text token (`<|endoftext|>`, `</s>`, `<eot>`) found; write a \
                     tokenizer_options.json beside it (fields of atlas_tokenizer::HfJsonOptions: \
                     context_length, pad_id, eot_id, ...)",
                    path.display()
                ))
            })?;
        HfJsonOptions {
            context_length,
            eot_id: eot,
            eot_on_truncate: true,
            ..HfJsonOptions::default()
        }
    };
    Ok(HfJsonTokenizer::from_file(path, opts)?)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../atlas-models/tests/fixtures"
    );

    /// A word-level `tokenizer.json` laid out as HF's CLIP one is: a post-processor that wraps
    /// the words in `<|startoftext|>` ... `<|endoftext|>`.
    fn clip_like_tokenizer_json() -> String {
        let mut vocab = serde_json::Map::new();
        for (i, w) in [
            "<|startoftext|>",
            "<|endoftext|>",
            "[UNK]",
            "a",
            "photo",
            "of",
        ]
        .iter()
        .enumerate()
        {
            vocab.insert(w.to_string(), serde_json::json!(i));
        }
        serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": null,
            "pre_tokenizer": { "type": "Whitespace" },
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [
                    { "SpecialToken": { "id": "<|startoftext|>", "type_id": 0 } },
                    { "Sequence": { "id": "A", "type_id": 0 } },
                    { "SpecialToken": { "id": "<|endoftext|>", "type_id": 0 } }
                ],
                "pair": [
                    { "Sequence": { "id": "A", "type_id": 0 } },
                    { "Sequence": { "id": "B", "type_id": 1 } }
                ],
                "special_tokens": {
                    "<|startoftext|>": { "id": "<|startoftext|>", "ids": [0], "tokens": ["<|startoftext|>"] },
                    "<|endoftext|>": { "id": "<|endoftext|>", "ids": [1], "tokens": ["<|endoftext|>"] }
                }
            },
            "decoder": null,
            "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]" }
        })
        .to_string()
    }

    /// A copy of a fixture checkpoint folder with the CLIP-like tokenizer.json beside it.
    fn with_tokenizer_json(sub: &str, dir: &Path) -> ModelEntryAndConfig {
        with_tokenizer(sub, dir, Some(clip_like_tokenizer_json().as_bytes()))
    }

    fn with_tokenizer(sub: &str, dir: &Path, json: Option<&[u8]>) -> ModelEntryAndConfig {
        let to = dir.join("model");
        fs::create_dir_all(&to).unwrap();
        for e in fs::read_dir(Path::new(FIXTURES).join(sub))
            .unwrap()
            .flatten()
        {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        if let Some(json) = json {
            fs::write(to.join("tokenizer.json"), json).unwrap();
        }
        let text = "[[model]]\nname = \"m\"\nsource = \"local-dir:model\"\nfixture = true\n";
        let cfg = LoadedConfig::parse(text, &dir.join("pipeline.toml")).unwrap();
        let src: atlas_models::CheckpointSource =
            format!("local-dir:{}", to.display()).parse().unwrap();
        let described =
            atlas_models::describe(&src, &atlas_models::LoadOptions::default()).unwrap();
        (cfg, described)
    }

    type ModelEntryAndConfig = (LoadedConfig, atlas_models::Described);

    #[test]
    fn an_open_clip_checkpoint_ignores_a_tokenizer_json_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, described) = with_tokenizer_json("qg_p8/open_clip", dir.path());
        let entry = &cfg.config.models[0];
        let tok = tokenizer_for(&cfg, entry, &described).unwrap();
        let ctx = described.config.text.context_length;
        let bpe = ClipBpeTokenizer::bundled(ctx).unwrap();
        assert_eq!(
            tok.identity(),
            bpe.identity(),
            "open_clip tokenizes with CLIP BPE"
        );
    }

    #[test]
    fn an_hf_checkpoint_truncates_long_prompts_as_clip_processor_does() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, described) = with_tokenizer_json("gelu_p16/hf", dir.path());
        let entry = &cfg.config.models[0];
        let tok = tokenizer_for(&cfg, entry, &described).unwrap();
        let ctx = described.config.text.context_length;
        let long = vec!["a photo of"; 40].join(" "); // 120 words
        let rows = tok.tokenize(&[&long, "a photo"]).unwrap();
        assert_eq!(rows[0].len(), ctx);
        assert_eq!(rows[0][0], 0, "starts with <|startoftext|>");
        assert_eq!(
            rows[0][ctx - 1],
            1,
            "ends with <|endoftext|> (was cut without one)"
        );
        assert_eq!(rows[0][1..4], [3, 4, 5]);
        assert_eq!(rows[1][..4], [0, 3, 4, 1]);
    }

    #[test]
    fn siglip_towers_use_their_sentencepiece_tokenizer_in_their_library_s_layout() {
        let sp = Path::new(FIXTURES).join("siglip/tokenizer/tokenizer.json");
        let json = fs::read(&sp).unwrap();
        for (sub, mode) in [
            ("siglip/open_clip", SiglipMode::OpenClip),
            ("siglip/hf", SiglipMode::HfProcessor),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (cfg, described) = with_tokenizer(sub, dir.path(), Some(&json));
            let tok = tokenizer_for(&cfg, &cfg.config.models[0], &described).unwrap();
            let ctx = described.config.text.context_length;
            let want = SiglipTokenizer::from_path(&sp, ctx, mode).unwrap();
            assert_eq!(tok.identity(), want.identity(), "{sub}");
            let dir = tempfile::tempdir().unwrap();
            let (cfg, described) = with_tokenizer(sub, dir.path(), None);
            let err = tokenizer_for(&cfg, &cfg.config.models[0], &described)
                .err()
                .expect("no tokenizer.json is an error")
                .to_string();
            assert!(err.contains("SigLIP") && err.contains("tokenizer"), "{err}");
        }
    }
}
