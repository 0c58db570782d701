//! The demo LMM's word-level tokenizer, written as the HF `tokenizer.json` that atlas-llava's
//! `LlavaTokenizer` (and `tokenizers.Tokenizer.from_file`) reads.
//!
//! Ids: `<unk>` 0, `<s>` 1, `</s>` 2 (LLaMA's), `<image>` 3 and `<pad>` 4 (added special
//! tokens, as llava-hf adds them), then the words (lowercase, sorted). Encoding: the special
//! tokens are matched in the raw text first (`<image>` is the image placeholder the processor
//! expands), the rest is lowercased, split on whitespace and every punctuation character is a
//! token of its own (`WhitespaceSplit` + `Punctuation(Isolated)`, as the zoo's CLIP tokenizer);
//! the post-processor puts `<s>` first, as LLaMA's does. Decoding joins the tokens with spaces
//! (no decoder), special tokens skipped.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use atlas_tokenizer::word::split_words;
use serde_json::{Value, json};

use crate::error::{Result, io_err};

pub const UNK: &str = "<unk>";
pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const IMAGE: &str = "<image>";
pub const PAD: &str = "<pad>";
/// The special tokens, in id order.
pub const SPECIALS: [&str; 5] = [UNK, BOS, EOS, IMAGE, PAD];
pub const BOS_ID: u32 = 1;
pub const EOS_ID: u32 = 2;
pub const IMAGE_ID: u32 = 3;
pub const PAD_ID: u32 = 4;

/// A word-level LLaMA-style vocabulary.
#[derive(Debug, Clone)]
pub struct LlavaVocab {
    tokens: Vec<String>,
    index: HashMap<String, u32>,
}

impl LlavaVocab {
    /// The special tokens plus every word of `texts`.
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut words = BTreeSet::new();
        for t in texts {
            for part in t.split(IMAGE) {
                words.extend(split_words(part));
            }
        }
        for s in SPECIALS {
            words.remove(s);
        }
        let tokens: Vec<String> = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(words)
            .collect();
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Self { tokens, index }
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The id of `token` (a word or a special token).
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }

    /// Ids of plain text (no special tokens matched, no `<s>`); unknown words are `<unk>`.
    pub fn encode_words(&self, text: &str) -> Vec<u32> {
        split_words(text)
            .iter()
            .map(|w| self.index.get(w).copied().unwrap_or(0))
            .collect()
    }

    /// Words of `text` outside the vocabulary.
    pub fn unknown_words(&self, text: &str) -> Vec<String> {
        split_words(text)
            .into_iter()
            .filter(|w| !self.index.contains_key(w))
            .collect()
    }

    /// The model's ids of a prompt as `LlavaTokenizer::encode` gives them: `<s>`, then the
    /// text with each `<image>` expanded to `image_tokens` image ids.
    pub fn encode_prompt(&self, prompt: &str, image_tokens: usize) -> Vec<u32> {
        let mut ids = vec![BOS_ID];
        for (i, part) in prompt.split(IMAGE).enumerate() {
            if i > 0 {
                ids.extend(std::iter::repeat_n(IMAGE_ID, image_tokens));
            }
            ids.extend(self.encode_words(part));
        }
        ids
    }

    /// Text of ids: tokens joined by spaces, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .filter(|&&i| i as usize >= SPECIALS.len())
            .filter_map(|&i| self.tokens.get(i as usize).map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The HF `tokenizer.json`.
    pub fn to_hf_json(&self) -> Value {
        let vocab: serde_json::Map<String, Value> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let added: Vec<Value> = SPECIALS
            .iter()
            .enumerate()
            .map(|(id, content)| {
                json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                       "rstrip": false, "normalized": false, "special": true})
            })
            .collect();
        let special = json!({"SpecialToken": {"id": BOS, "type_id": 0}});
        let seq = |name: &str, type_id: u32| json!({"Sequence": {"id": name, "type_id": type_id}});
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}]},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [special.clone(), seq("A", 0)],
                "pair": [special.clone(), seq("A", 0), special, seq("B", 1)],
                "special_tokens": {
                    BOS: {"id": BOS, "ids": [BOS_ID], "tokens": [BOS]},
                }
            },
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK}
        })
    }

    /// Writes `tokenizer.json` and the `tokenizer_config.json` transformers reads with it.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join("tokenizer.json");
        let text = serde_json::to_string(&self.to_hf_json()).unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(io_err(&path))?;
        let config = json!({
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD,
            "image_token": IMAGE,
            "add_bos_token": true, "add_eos_token": false,
            "clean_up_tokenization_spaces": false,
            "model_max_length": 1024,
        });
        let path = dir.join("tokenizer_config.json");
        let text = serde_json::to_string_pretty(&config).unwrap_or_default();
        std::fs::write(&path, text + "\n").map_err(io_err(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_ids() {
        let v = LlavaVocab::from_texts(["What is it? a circle", "USER: ASSISTANT:"]);
        assert_eq!(v.id("<image>"), Some(IMAGE_ID));
        let ids = v.encode_prompt("USER: <image>\nWhat is it? ASSISTANT:", 2);
        let words = |s: &str| v.encode_words(s);
        let mut want = vec![BOS_ID];
        want.extend(words("user :"));
        want.extend([IMAGE_ID, IMAGE_ID]);
        want.extend(words("what is it ? assistant :"));
        assert_eq!(ids, want);
        assert!(!ids.contains(&0));
        assert_eq!(
            v.decode(&[BOS_ID, v.id("circle").unwrap(), EOS_ID]),
            "circle"
        );
    }
}
