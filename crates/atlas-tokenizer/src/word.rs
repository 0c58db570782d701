//! [`WordTokenizer`]: the word-level tokenizer of the demo world's zoo, written as a HF
//! `tokenizer.json`.
//!
//! Layout of the vocabulary (ids): `<pad>` = 0, `<unk>` = 1, the world's words (lowercase, sorted,
//! deduplicated, punctuation as separate tokens) from 2, then `<start_of_text>` and
//! `<end_of_text>` as the two HIGHEST ids. The end-of-text token being the largest id is what makes
//! open_clip's `argmax` text pooling (the CLIP default) pool at the end-of-text position, exactly as
//! with the CLIP BPE vocabulary (SOT 49406, EOT 49407). Every sequence is
//! `<start_of_text> words... <end_of_text>`, truncated to `context_length` (the end-of-text token
//! is kept) and right-padded with `<pad>` (0) to `context_length`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::{HfClean, HfJsonOptions, TextTokenizer, TokenizerError};

type Result<T> = std::result::Result<T, TokenizerError>;

pub const PAD: &str = "<pad>";
pub const UNK: &str = "<unk>";
pub const SOT: &str = "<start_of_text>";
pub const EOT: &str = "<end_of_text>";

/// A word-level tokenizer: the vocabulary and the encoding rule of the `tokenizer.json` it writes.
#[derive(Debug, Clone)]
pub struct WordTokenizer {
    /// Token strings by id.
    tokens: Vec<String>,
    index: std::collections::HashMap<String, u32>,
    pub context_length: usize,
}

/// Splits text the way the `tokenizer.json` does: lowercase, split on whitespace, then every
/// ASCII/Unicode punctuation character is its own token.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for chunk in text.to_lowercase().split_whitespace() {
        let mut cur = String::new();
        for ch in chunk.chars() {
            if is_punctuation(ch) {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(ch.to_string());
            } else {
                cur.push(ch);
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

/// HF `Punctuation` pre-tokenizer rule for the characters the world uses: ASCII punctuation and
/// the common Unicode general-punctuation block. (HF also splits the rest of Unicode category P;
/// the world's text is ASCII, and the parity check compares ids on the world's own prompts.)
fn is_punctuation(ch: char) -> bool {
    ch.is_ascii_punctuation()
        || ('\u{2010}'..='\u{2027}').contains(&ch)
        || ('\u{3000}'..='\u{303F}').contains(&ch)
}

impl WordTokenizer {
    /// Builds the vocabulary from words and free texts (captions, class names, templates).
    pub fn from_texts<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        context_length: usize,
    ) -> Result<Self> {
        if context_length < 3 {
            // SOT, at least one word, EOT.
            return Err(TokenizerError::ContextLength(context_length));
        }
        let mut words = BTreeSet::new();
        for t in texts {
            for w in split_words(t) {
                words.insert(w);
            }
        }
        for special in [PAD, UNK, SOT, EOT] {
            words.remove(special);
        }
        let mut tokens = vec![PAD.to_string(), UNK.to_string()];
        tokens.extend(words);
        tokens.push(SOT.to_string());
        tokens.push(EOT.to_string());
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        Ok(Self {
            tokens,
            index,
            context_length,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
    pub fn sot_id(&self) -> u32 {
        (self.tokens.len() - 2) as u32
    }
    pub fn eot_id(&self) -> u32 {
        (self.tokens.len() - 1) as u32
    }
    pub fn pad_id(&self) -> u32 {
        0
    }
    pub fn unk_id(&self) -> u32 {
        1
    }

    /// Ids of one text, `context_length` long (see the module docs for the rule).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.context_length);
        ids.push(self.sot_id());
        for w in split_words(text) {
            if ids.len() == self.context_length - 1 {
                break;
            }
            ids.push(self.index.get(&w).copied().unwrap_or(self.unk_id()));
        }
        ids.push(self.eot_id());
        ids.resize(self.context_length, self.pad_id());
        ids
    }

    /// Number of words of `text` not in the vocabulary.
    pub fn unknown_words(&self, text: &str) -> Vec<String> {
        split_words(text)
            .into_iter()
            .filter(|w| !self.index.contains_key(w))
            .collect()
    }

    /// The HF `tokenizer.json` (WordLevel model, lowercase normaliser, whitespace + punctuation
    /// pre-tokenizer, SOT/EOT template, fixed padding and truncation to `context_length`).
    pub fn to_hf_json(&self) -> Value {
        let vocab: serde_json::Map<String, Value> = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), json!(i)))
            .collect();
        let added = |id: u32, content: &str| {
            json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        };
        let special = |name: &str| json!({"SpecialToken": {"id": name, "type_id": 0}});
        let seq = |name: &str| json!({"Sequence": {"id": name, "type_id": 0}});
        json!({
            "version": "1.0",
            "truncation": {"direction": "Right", "max_length": self.context_length,
                           "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": self.context_length}, "direction": "Right",
                        "pad_to_multiple_of": null, "pad_id": self.pad_id(), "pad_type_id": 0,
                        "pad_token": PAD},
            "added_tokens": [added(self.pad_id(), PAD), added(self.unk_id(), UNK),
                             added(self.sot_id(), SOT), added(self.eot_id(), EOT)],
            "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}]},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [special(SOT), seq("A"), special(EOT)],
                "pair": [special(SOT), seq("A"), special(EOT), seq("B"), special(EOT)],
                "special_tokens": {
                    SOT: {"id": SOT, "ids": [self.sot_id()], "tokens": [SOT]},
                    EOT: {"id": EOT, "ids": [self.eot_id()], "tokens": [EOT]},
                }
            },
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK}
        })
    }

    /// How [`HfJsonTokenizer`](crate::HfJsonTokenizer) must lay out rows of the written
    /// `tokenizer.json` to reproduce [`WordTokenizer::encode`] (the json's post-processor adds
    /// SOT/EOT).
    pub fn hf_options(&self) -> HfJsonOptions {
        HfJsonOptions {
            context_length: self.context_length,
            pad_id: self.pad_id(),
            eot_id: self.eot_id(),
            sot_id: None,
            append_eot: false,
            add_special_tokens: true,
            eot_on_truncate: true,
            pad_to_max: true,
            clean: HfClean::None,
        }
    }

    /// Writes `tokenizer.json` to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.to_hf_json())
            .map_err(|e| TokenizerError::Backend(format!("serialising tokenizer.json: {e}")))?;
        std::fs::write(path, text).map_err(|source| TokenizerError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

impl TextTokenizer for WordTokenizer {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        crate::par_map(texts, |t| Ok(self.encode(t)))
    }
    fn context_length(&self) -> usize {
        self.context_length
    }
    fn eot_id(&self) -> u32 {
        WordTokenizer::eot_id(self)
    }
    /// blake3 of the vocabulary (in id order) and the context length.
    fn identity(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"atlas-tokenizer/word/v1");
        h.update(&(self.context_length as u64).to_le_bytes());
        for t in &self.tokens {
            h.update(&(t.len() as u64).to_le_bytes());
            h.update(t.as_bytes());
        }
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_encode() {
        let t = WordTokenizer::from_texts(["A red circle.", "a blue square"], 8).unwrap();
        assert_eq!(
            split_words("A red, circle."),
            ["a", "red", ",", "circle", "."]
        );
        // vocab: <pad> <unk> . a blue circle red square <sot> <eot>
        assert_eq!(t.vocab_size(), 10);
        assert_eq!(t.encode("a red circle."), vec![8, 3, 6, 5, 2, 9, 0, 0]);
        assert_eq!(t.encode("a red zebra"), vec![8, 3, 6, 1, 9, 0, 0, 0]);
        // Truncation keeps the end-of-text token.
        assert_eq!(
            t.encode("a a a a a a a a a a"),
            vec![8, 3, 3, 3, 3, 3, 3, 9]
        );
    }

    #[test]
    fn hf_json_matches_rust_encoding() {
        let t = WordTokenizer::from_texts(["A red circle.", "a blue square, small"], 10).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        t.save(&path).unwrap();
        let hf = tokenizers::Tokenizer::from_file(&path).unwrap();
        for text in [
            "A red circle.",
            "a BLUE square, small circle",
            "unknown words here",
            "a a a a a a a a a a a a a a",
        ] {
            let enc = hf.encode(text, true).unwrap();
            assert_eq!(enc.get_ids(), t.encode(text).as_slice(), "{text}");
        }
        // Through the project's HF tokenizer interface (which does its own layout).
        let at = crate::HfJsonTokenizer::from_file(&path, t.hf_options()).unwrap();
        let texts = [
            "A red circle.",
            "a a a a a a a a a a a a a a",
            "blue square, small",
        ];
        let rows = at.tokenize(&texts).unwrap();
        assert_eq!(rows, t.tokenize(&texts).unwrap());
        for (text, row) in texts.iter().zip(rows) {
            assert_eq!(row, t.encode(text), "{text}");
        }
    }

    #[test]
    fn trait_and_errors() {
        assert!(matches!(
            WordTokenizer::from_texts(["a b"], 2),
            Err(TokenizerError::ContextLength(2))
        ));
        let t = WordTokenizer::from_texts(["A red circle."], 6).unwrap();
        let dynamic: &dyn TextTokenizer = &t;
        assert_eq!(dynamic.context_length(), 6);
        assert_eq!(dynamic.eot_id(), t.eot_id());
        let u = WordTokenizer::from_texts(["A red square."], 6).unwrap();
        let v = WordTokenizer::from_texts(["A red circle."], 7).unwrap();
        assert_eq!(t.identity(), t.clone().identity());
        assert_ne!(t.identity(), u.identity());
        assert_ne!(t.identity(), v.identity());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-dir").join("tokenizer.json");
        let e = t.save(&missing).unwrap_err();
        assert!(matches!(e, TokenizerError::Write { .. }), "{e}");
        assert!(e.to_string().contains("no-such-dir"), "{e}");
    }
}
