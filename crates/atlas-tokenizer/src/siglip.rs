//! SigLIP's text tokenizer: a T5-style SentencePiece `tokenizer.json` (Unigram, `</s>` = EOS =
//! PAD, no BOS) laid out as open_clip or HF transformers lay it out.
//!
//! * [`SiglipMode::OpenClip`]: open_clip `HFTokenizer(clean="canonicalize")` — ftfy, html
//!   unescape twice, strip, then `canonicalize_text` (`_` -> space, drop ASCII punctuation,
//!   lowercase, collapse whitespace); encode with the file (its post-processor appends `</s>`);
//!   longer than the context: the first `context_length - 1` ids + `</s>`; right-padded with the
//!   pad id (`</s>`). The last position is thus always `</s>`.
//! * [`SiglipMode::HfProcessor`]: transformers `SiglipProcessor(padding="max_length",
//!   truncation=True)` with the slow `SiglipTokenizer`: no ftfy / html unescape; special tokens
//!   written in the text (`</s>`, `<unk>`; not `<pad>`) are split off first and kept as ids; each
//!   other chunk is canonicalized big_vision style (lowercase first, then drop ASCII
//!   punctuation — `_` included —, collapse whitespace, strip) and encoded with no word-start
//!   marker except for the first chunk (the tokenizer prefixes the text with `▁`); a lone `▁`
//!   before a special token is dropped; `</s>` is appended unless the ids already end with it.
//!   Here the Unigram model of `tokenizer.json` stands in for the slow SentencePiece model. They
//!   agree on the 11,441 parity strings except 16 (`tests/siglip.rs`), all with a combining
//!   acute accent U+0301 that does not compose with the character before it (after a deleted
//!   punctuation mark, a space, `▁` or a fullwidth letter/digit): SentencePiece emits `<unk>`
//!   (id 2) for it, the tokenizers crate's `Precompiled` normaliser + Unigram drops it.

use std::path::Path;

use serde_json::Value;
use tokenizers::Tokenizer;

use crate::pyclean::{py_lower, py_whitespace_clean};
use crate::{TextTokenizer, TokenizerError};

/// SigLIP's context length (open_clip `text_cfg.context_length`, HF `model_max_length`).
pub const SIGLIP_CONTEXT_LENGTH: usize = 64;

/// Whose text pipeline to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiglipMode {
    /// open_clip's `HFTokenizer(clean="canonicalize")`.
    OpenClip,
    /// transformers' `SiglipProcessor` / slow `SiglipTokenizer`.
    HfProcessor,
}

/// The SigLIP tokenizer (see the module docs).
pub struct SiglipTokenizer {
    inner: Tokenizer,
    /// The same tokenizer with no `▁` prepended to the first word (HF mode's later chunks).
    no_prefix: Tokenizer,
    mode: SiglipMode,
    context_length: usize,
    eos_id: u32,
    pad_id: u32,
    /// `(literal, id)` of the special tokens the HF mode splits off, longest first.
    specials: Vec<(String, u32)>,
    identity: [u8; 32],
}

impl std::fmt::Debug for SiglipTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiglipTokenizer")
            .field("mode", &self.mode)
            .field("context_length", &self.context_length)
            .field("eos_id", &self.eos_id)
            .field("pad_id", &self.pad_id)
            .finish_non_exhaustive()
    }
}

fn backend(what: &str, e: impl std::fmt::Display) -> TokenizerError {
    TokenizerError::Backend(format!("{what}: {e}"))
}

impl SiglipTokenizer {
    /// Read `tokenizer.json` from a tokenizer directory (a hub snapshot of e.g.
    /// `timm/ViT-B-16-SigLIP`) or the file itself.
    pub fn from_path(
        path: impl AsRef<Path>,
        context_length: usize,
        mode: SiglipMode,
    ) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let file = if path.is_dir() {
            path.join("tokenizer.json")
        } else {
            path.to_path_buf()
        };
        let bytes = std::fs::read(&file).map_err(|source| TokenizerError::Io {
            path: file.clone(),
            source,
        })?;
        Self::from_json_bytes(&bytes, context_length, mode).map_err(|e| match e {
            TokenizerError::Backend(m) => {
                TokenizerError::Backend(format!("{}: {m}", file.display()))
            }
            other => other,
        })
    }

    /// Parse `tokenizer.json` contents. EOS and PAD are the `</s>` token.
    pub fn from_json_bytes(
        json: &[u8],
        context_length: usize,
        mode: SiglipMode,
    ) -> Result<Self, TokenizerError> {
        if context_length < 2 {
            return Err(TokenizerError::ContextLength(context_length));
        }
        let mut inner = Tokenizer::from_bytes(json).map_err(|e| backend("tokenizer.json", e))?;
        inner
            .with_truncation(None)
            .map_err(|e| backend("disabling truncation", e))?;
        inner.with_padding(None);
        let mut value: Value =
            serde_json::from_slice(json).map_err(|e| backend("tokenizer.json", e))?;
        if let Some(pre) = value.get_mut("pre_tokenizer")
            && pre.get("type").and_then(Value::as_str) == Some("Metaspace")
        {
            pre["prepend_scheme"] = Value::from("never");
        }
        let no_prefix = Tokenizer::from_bytes(value.to_string().as_bytes())
            .map_err(|e| backend("tokenizer.json (no prefix)", e))?;
        let mut no_prefix = no_prefix;
        no_prefix
            .with_truncation(None)
            .map_err(|e| backend("disabling truncation", e))?;
        no_prefix.with_padding(None);
        let eos_id = inner.token_to_id("</s>").ok_or_else(|| {
            TokenizerError::Backend(
                "tokenizer.json has no `</s>` token (not a SigLIP tokenizer?)".into(),
            )
        })?;
        // The slow SiglipTokenizer's special tokens: eos `</s>`, unk `<unk>`, pad `</s>`
        // (`<pad>` is an ordinary piece there and gets canonicalized to "pad").
        let mut specials: Vec<(String, u32)> = ["</s>", "<unk>"]
            .iter()
            .filter_map(|t| inner.token_to_id(t).map(|id| (t.to_string(), id)))
            .collect();
        specials.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let mut h = blake3::Hasher::new();
        h.update(b"atlas-tokenizer/siglip/v1\0");
        h.update(json);
        h.update(format!("{mode:?}/{context_length}").as_bytes());
        if mode == SiglipMode::OpenClip {
            h.update(crate::tables::TABLES_JSON.as_bytes());
        }
        Ok(Self {
            inner,
            no_prefix,
            mode,
            context_length,
            eos_id,
            pad_id: eos_id,
            specials,
            identity: *h.finalize().as_bytes(),
        })
    }

    pub fn mode(&self) -> SiglipMode {
        self.mode
    }

    /// The pad id (`</s>`, as SigLIP's `pad_token`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The wrapped tokenizers-crate tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    fn encode(
        &self,
        tok: &Tokenizer,
        text: &str,
        specials: bool,
    ) -> Result<Vec<u32>, TokenizerError> {
        tok.encode(text, specials)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| backend(&format!("encoding {text:?}"), e))
    }

    /// The ids of `text` before padding (at most `context_length`, ending with `</s>`).
    pub fn encode_unpadded(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let ctx = self.context_length;
        match self.mode {
            SiglipMode::OpenClip => {
                let cleaned = crate::clean_canonicalize(text);
                // The post-processor appends </s>; longest_first truncation keeps ctx - 1 ids.
                let mut ids = self.encode(&self.inner, &cleaned, true)?;
                if ids.len() > ctx {
                    ids.truncate(ctx - 1);
                    ids.push(self.eos_id);
                }
                Ok(ids)
            }
            SiglipMode::HfProcessor => {
                let mut ids = self.hf_content_ids(text)?;
                ids.truncate(ctx - 1);
                if ids.last() != Some(&self.eos_id) {
                    ids.push(self.eos_id);
                }
                Ok(ids)
            }
        }
    }

    /// HF `SiglipTokenizer.tokenize` + `convert_tokens_to_ids` (no EOS, no truncation).
    fn hf_content_ids(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let text = format!("\u{2581}{}", text.replace('\u{2581}', " "));
        let mut ids = Vec::new();
        let mut first = true;
        // (is_special, id of a special) per token; a lone "▁" first token is dropped when a
        // special follows it.
        let mut lone_prefix_at: Option<usize> = None;
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let next = self
                .specials
                .iter()
                .filter_map(|(t, id)| rest.find(t.as_str()).map(|at| (at, t.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            let (chunk, special) = match next {
                Some((at, len, id)) => (&rest[..at], Some((id, at + len))),
                None => (rest, None),
            };
            if !chunk.is_empty() {
                let canon = hf_canonicalize(chunk);
                if !canon.is_empty() {
                    let tok = if first { &self.inner } else { &self.no_prefix };
                    let piece_ids = self.encode(tok, &canon, false)?;
                    if first && canon == "\u{2581}" {
                        lone_prefix_at = Some(ids.len());
                    }
                    ids.extend(piece_ids);
                }
            }
            first = false;
            match special {
                Some((id, end)) => {
                    if let Some(at) = lone_prefix_at.take()
                        && at + 1 == ids.len()
                        && at == 0
                    {
                        ids.pop();
                    }
                    ids.push(id);
                    rest = &rest[end..];
                }
                None => break,
            }
        }
        Ok(ids)
    }

    fn row(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut ids = self.encode_unpadded(text)?;
        ids.resize(self.context_length, self.pad_id);
        Ok(ids)
    }
}

/// big_vision / HF `SiglipTokenizer.canonicalize_text`: lowercase, drop ASCII punctuation,
/// `re.sub(r"\s+", " ")`, strip.
pub fn hf_canonicalize(text: &str) -> String {
    let lower = py_lower(text);
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    py_whitespace_clean(&no_punct)
}

impl TextTokenizer for SiglipTokenizer {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        crate::par_map(texts, |t| self.row(t))
    }
    fn context_length(&self) -> usize {
        self.context_length
    }
    /// `</s>`. NB SigLIP pools the last position of the padded row, not the first EOS.
    fn eot_id(&self) -> u32 {
        self.eos_id
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
}
