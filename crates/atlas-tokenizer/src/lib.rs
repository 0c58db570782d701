//! Text tokenizers for clip-atlas, behind one [`TextTokenizer`] trait.
//!
//! * [`ClipBpeTokenizer`]: open_clip's CLIP BPE tokenizer (`SimpleTokenizer`, `clean='lower'`),
//!   id for id. Built on the `tokenizers` crate: a BPE model (`end_of_word_suffix = "</w>"`,
//!   with its cache) behind a `Split` pre-tokenizer with open_clip's regex and a `ByteLevel`
//!   mapping. The vocabulary `data/clip-bpe/bpe_simple_vocab_16e6.txt.gz` (MIT, see
//!   `data/clip-bpe/LICENSE`) is compiled in ([`ClipBpeTokenizer::bundled`]).
//! * [`HfJsonTokenizer`]: any Hugging Face `tokenizer.json` with a pad id, EOT id, context length.
//! * [`SiglipTokenizer`]: SigLIP's SentencePiece `tokenizer.json` as open_clip's
//!   `HFTokenizer(clean="canonicalize")` ([`SiglipMode::OpenClip`], id for id) or transformers'
//!   `SiglipProcessor` ([`SiglipMode::HfProcessor`]) lays it out (context 64, `</s>` = EOS = PAD).
//! * [`WordTokenizer`]: the demo zoo's word-level vocabulary, built from texts and written as a
//!   HF `tokenizer.json` that [`HfJsonTokenizer`] reads back id for id.
//!
//! # Cleaning (open_clip `clean='lower'`)
//! `ftfy.fix_text` -> `html.unescape` twice -> `str.strip` -> `" ".join(s.split())` ->
//! `str.lower`. The Python string semantics used (`str.isspace`, `html.unescape` with the full
//! HTML5 entity table, numeric references, entities without semicolons and the longest-prefix
//! rule) are reproduced; the tables come from CPython/ftfy via
//! `tools/parity/make_tokenizer_fixtures.py --tables` (`src/ftfy_tables.json`).
//!
//! ## ftfy coverage
//! A port of `ftfy.fix_text` 6.3 with its default configuration, per line segment, to a fixed
//! point: `unescape_html` (auto: skipped for a segment with `<` and all later ones; ftfy's
//! entity table including upper-cased names), `fix_encoding` (mojibake: ftfy's `is_bad`
//! heuristic regex, the ten single-byte encodings ftfy tries with their sloppy variants,
//! `restore_byte_a0`, `replace_lossy_sequences`, the `utf-8-variants` codec (CESU-8, `C0 80`),
//! `decode_inconsistent_utf8`, the latin-1 -> windows-1252 fallback), `fix_c1_controls`,
//! `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`, `fix_line_breaks`,
//! `remove_terminal_escapes`, `remove_control_chars`, NFC.
//!
//! Not covered / known differences:
//! * `fix_surrogates` is a no-op: a Rust `&str` cannot hold lone surrogates.
//! * Unicode versions: CPython 3.11 (Unicode 14) drives NFC, `str.lower`, `str.isalnum` (`\w`
//!   in ftfy's heuristics, emitted as explicit classes) and the `regex` module's `\p{L}` /
//!   `\p{N}`; here NFC comes from `unicode-normalization`, lowercase from Rust's std and
//!   `\p{L}`/`\p{N}` from `regex-syntax` (Unicode 16), while the `regex` module 2026.x that
//!   open_clip's split uses knows Unicode 17. Characters assigned after Unicode 14 may
//!   tokenize differently; e.g. a CJK Extension J ideograph (U+32AED) is `\p{L}` for Python's
//!   `regex` but not here (the one mismatch in a 6,000-string mojibake/entity fuzz run).
//! * `max_decode_length` segmentation counts chars as ftfy does, but a segment boundary inside
//!   a grapheme is as arbitrary as in ftfy.
//! * Non-default ftfy options (`fix_text(..., normalization='NFKC')` etc.) are not exposed.

mod clip;
mod ftfy;
mod hf;
mod pyclean;
mod siglip;
mod tables;
pub mod word;

use std::path::PathBuf;

use rayon::prelude::*;

pub use clip::{
    BUNDLED_VOCAB_GZ, ClipBpeTokenizer, DEFAULT_CONTEXT_LENGTH, EOT_ID, EOT_TOKEN, NUM_MERGES,
    SOT_ID, SOT_TOKEN, VOCAB_SIZE, bytes_to_unicode,
};
pub use ftfy::fix_text;
pub use hf::{HfClean, HfJsonOptions, HfJsonTokenizer};
pub use pyclean::html_unescape;
pub use siglip::{SIGLIP_CONTEXT_LENGTH, SiglipMode, SiglipTokenizer, hf_canonicalize};
pub use word::WordTokenizer;

/// A text tokenizer producing fixed-width id rows.
pub trait TextTokenizer: Send + Sync {
    /// Each row is exactly [`context_length`](Self::context_length) ids.
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError>;
    /// Row width.
    fn context_length(&self) -> usize;
    /// End-of-text id; the pooling position is the first index of this id.
    fn eot_id(&self) -> u32;
    /// blake3 of vocabulary, merges and configuration: part of text cache keys.
    fn identity(&self) -> [u8; 32];
}

/// Errors from building or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("cannot read tokenizer file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid BPE vocabulary: {0} (expected open_clip's bpe_simple_vocab_16e6.txt.gz)")]
    Vocab(String),
    #[error("context length {0} is too small (need room for the start and end tokens)")]
    ContextLength(usize),
    #[error("tokenizers backend: {0}")]
    Backend(String),
    #[error(
        "cannot write tokenizer file {path}: {source} (check that the directory exists and is writable)"
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// open_clip `basic_clean`: `ftfy.fix_text`, `html.unescape` twice, strip.
pub fn basic_clean(text: &str) -> String {
    let fixed = fix_text(text);
    let once = html_unescape(&fixed);
    let twice = html_unescape(&once);
    pyclean::py_strip(&twice).to_string()
}

/// open_clip `_clean_lower` (the default for CLIP): basic clean, whitespace collapse, lowercase.
pub fn clean_lower(text: &str) -> String {
    pyclean::py_lower(&pyclean::py_whitespace_clean(&basic_clean(text)))
}

/// open_clip `_clean_whitespace`: basic clean, whitespace collapse.
pub fn clean_whitespace(text: &str) -> String {
    pyclean::py_whitespace_clean(&basic_clean(text))
}

/// open_clip `_clean_canonicalize`: basic clean, `_` -> space, drop `string.punctuation`,
/// lowercase, whitespace collapse.
pub fn clean_canonicalize(text: &str) -> String {
    let basic = basic_clean(text).replace('_', " ");
    let no_punct: String = basic
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    pyclean::py_whitespace_clean(&pyclean::py_lower(&no_punct))
}

/// `[sot] + ids + [eot]`, cut to `context_length` (last id set to `eot` when cut and
/// `eot_on_truncate`), padded with `pad`. `eot == u32::MAX` means "do not append".
pub(crate) fn layout(
    sot: Option<u32>,
    ids: &[u32],
    eot: u32,
    context_length: usize,
    pad: u32,
    eot_on_truncate: bool,
) -> Vec<u32> {
    let mut row = Vec::with_capacity(ids.len() + 2);
    row.extend(sot);
    row.extend_from_slice(ids);
    if eot != u32::MAX {
        row.push(eot);
    }
    if row.len() > context_length {
        row.truncate(context_length);
        if eot_on_truncate
            && eot != u32::MAX
            && let Some(last) = row.last_mut()
        {
            *last = eot;
        }
    }
    row.resize(context_length, pad);
    row
}

pub(crate) fn par_map<F>(texts: &[&str], f: F) -> Result<Vec<Vec<u32>>, TokenizerError>
where
    F: Fn(&str) -> Result<Vec<u32>, TokenizerError> + Send + Sync,
{
    if texts.len() < 64 {
        texts.iter().map(|t| f(t)).collect()
    } else {
        texts.par_iter().map(|t| f(t)).collect()
    }
}
