//! A Hugging Face `tokenizer.json` behind [`TextTokenizer`].

use std::path::Path;

use tokenizers::Tokenizer;

use crate::{TextTokenizer, TokenizerError, layout};

/// Text cleaning applied before a `tokenizer.json` sees the text (open_clip `HFTokenizer`'s
/// `clean` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HfClean {
    /// Pass the text through unchanged.
    #[default]
    None,
    /// ftfy + html unescape twice + whitespace collapse (open_clip `clean='whitespace'`).
    Whitespace,
    /// As `Whitespace`, then lowercase (open_clip `clean='lower'`).
    Lower,
    /// ftfy + html unescape, `_` -> space, drop ASCII punctuation, lowercase, collapse
    /// whitespace (open_clip `clean='canonicalize'`, used by SigLIP).
    Canonicalize,
}

/// How a `tokenizer.json` is laid out into fixed-width rows.
/// Serializable, so a model can ship its layout in a `tokenizer_options.json` beside its
/// `tokenizer.json` (missing fields take the defaults).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HfJsonOptions {
    /// Row width.
    pub context_length: usize,
    /// Id written after the sequence.
    pub pad_id: u32,
    /// End-of-text id; the pooling position is its first index.
    pub eot_id: u32,
    /// Prepended by this crate (for tokenizer.json files without a post-processor); `None`
    /// when the tokenizer's own post-processor adds it, or there is none.
    pub sot_id: Option<u32>,
    /// Appended by this crate (for tokenizer.json files without a post-processor).
    pub append_eot: bool,
    /// Let the tokenizer.json's post-processor add its special tokens.
    pub add_special_tokens: bool,
    /// When a sequence is longer than the context, set its last id to `eot_id` (CLIP style).
    /// `false` just cuts it (SigLIP / HF `truncation=True` style).
    pub eot_on_truncate: bool,
    /// Pad rows to `context_length` with `pad_id`. [`TextTokenizer::tokenize`] always
    /// returns full rows; this only changes [`HfJsonTokenizer::encode`].
    pub pad_to_max: bool,
    /// Cleaning before tokenization.
    pub clean: HfClean,
}

impl Default for HfJsonOptions {
    fn default() -> Self {
        Self {
            context_length: 77,
            pad_id: 0,
            eot_id: 0,
            sot_id: None,
            append_eot: false,
            add_special_tokens: true,
            eot_on_truncate: false,
            pad_to_max: true,
            clean: HfClean::None,
        }
    }
}

/// A `tokenizer.json` (tokenizers crate) with a pad id, EOT id and context length.
pub struct HfJsonTokenizer {
    inner: Tokenizer,
    opts: HfJsonOptions,
    identity: [u8; 32],
}

impl std::fmt::Debug for HfJsonTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfJsonTokenizer")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl HfJsonTokenizer {
    /// Parse `tokenizer.json` contents.
    pub fn from_json_bytes(json: &[u8], opts: HfJsonOptions) -> Result<Self, TokenizerError> {
        if opts.context_length < 1 {
            return Err(TokenizerError::ContextLength(opts.context_length));
        }
        let mut inner = Tokenizer::from_bytes(json)
            .map_err(|e| TokenizerError::Backend(format!("parsing tokenizer.json: {e}")))?;
        // Layout (truncation, padding) is done here, not by the tokenizer.json settings.
        inner.with_truncation(None).map_err(|e| {
            TokenizerError::Backend(format!("disabling tokenizer.json truncation: {e}"))
        })?;
        inner.with_padding(None);
        let mut h = blake3::Hasher::new();
        h.update(b"atlas-tokenizer/hf-json/v1\0");
        h.update(json);
        h.update(format!("{opts:?}").as_bytes());
        if opts.clean != HfClean::None {
            h.update(crate::tables::TABLES_JSON.as_bytes());
        }
        Ok(Self {
            inner,
            opts,
            identity: *h.finalize().as_bytes(),
        })
    }

    /// Read a `tokenizer.json` file.
    pub fn from_file(path: impl AsRef<Path>, opts: HfJsonOptions) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_bytes(&bytes, opts).map_err(|e| match e {
            TokenizerError::Backend(msg) => {
                TokenizerError::Backend(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// The options this tokenizer lays rows out with.
    pub fn options(&self) -> &HfJsonOptions {
        &self.opts
    }

    /// The wrapped tokenizers-crate tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    fn clean(&self, text: &str) -> String {
        match self.opts.clean {
            HfClean::None => text.to_string(),
            HfClean::Whitespace => crate::clean_whitespace(text),
            HfClean::Lower => crate::clean_lower(text),
            HfClean::Canonicalize => crate::clean_canonicalize(text),
        }
    }

    fn row(&self, text: &str, pad: bool) -> Result<Vec<u32>, TokenizerError> {
        let cleaned = self.clean(text);
        let enc = self
            .inner
            .encode(cleaned.as_str(), self.opts.add_special_tokens)
            .map_err(|e| TokenizerError::Backend(format!("encoding {text:?}: {e}")))?;
        let o = &self.opts;
        let eot = if o.append_eot { o.eot_id } else { u32::MAX };
        let mut row = layout(
            o.sot_id,
            enc.get_ids(),
            eot,
            o.context_length,
            o.pad_id,
            o.eot_on_truncate,
        );
        if o.eot_on_truncate && !o.append_eot {
            // layout() only forces EOT when it appends one; do it here for post-processed ids.
            let n = o.sot_id.map_or(0, |_| 1) + enc.get_ids().len();
            if n > o.context_length
                && let Some(last) = row.last_mut()
            {
                *last = o.eot_id;
            }
        }
        if !pad {
            let used =
                (o.sot_id.map_or(0, |_| 1) + enc.get_ids().len() + usize::from(o.append_eot))
                    .min(o.context_length);
            row.truncate(used);
        }
        Ok(row)
    }

    /// Rows, truncated to the context length and padded only when `pad_to_max` is set.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        crate::par_map(texts, |t| self.row(t, self.opts.pad_to_max))
    }
}

impl TextTokenizer for HfJsonTokenizer {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        crate::par_map(texts, |t| self.row(t, true))
    }
    fn context_length(&self) -> usize {
        self.opts.context_length
    }
    fn eot_id(&self) -> u32 {
        self.opts.eot_id
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
}
