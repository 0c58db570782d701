//! open_clip's `SimpleTokenizer` (CLIP BPE), id for id.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    Model, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, SplitDelimiterBehavior,
};

use crate::{TextTokenizer, TokenizerError, clean_lower, layout};

/// The vocabulary shipped in `data/clip-bpe/` (MIT, open_clip / OpenAI CLIP).
pub const BUNDLED_VOCAB_GZ: &[u8] =
    include_bytes!("../../../data/clip-bpe/bpe_simple_vocab_16e6.txt.gz");

/// Number of merges open_clip reads: lines `[1 : 49152 - 256 - 2 + 1]`.
pub const NUM_MERGES: usize = 49152 - 256 - 2;
/// Vocabulary size: 512 byte tokens + merges + 2 specials.
pub const VOCAB_SIZE: usize = 512 + NUM_MERGES + 2;
pub const SOT_TOKEN: &str = "<start_of_text>";
pub const EOT_TOKEN: &str = "<end_of_text>";
pub const SOT_ID: u32 = 49406;
pub const EOT_ID: u32 = 49407;
/// open_clip's default context length.
pub const DEFAULT_CONTEXT_LENGTH: usize = 77;

/// open_clip's split regex (compiled case-insensitively, as open_clip does).
const SPLIT_PATTERN: &str =
    r"(?i)<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// GPT-2 / CLIP `bytes_to_unicode`, in the dict's insertion order (printable bytes first);
/// the first 256 vocabulary ids follow this order.
pub fn bytes_to_unicode() -> Vec<(u8, char)> {
    let mut bs: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut cs = bs.clone();
    let mut n = 0;
    for b in 0..256u32 {
        if !bs.contains(&b) {
            bs.push(b);
            cs.push(256 + n);
            n += 1;
        }
    }
    bs.iter()
        .zip(cs.iter())
        .map(|(&b, &c)| (b as u8, char::from_u32(c).unwrap_or('\0')))
        .collect()
}

/// open_clip's CLIP BPE tokenizer (`clean='lower'`): `ftfy.fix_text`, `html.unescape` twice,
/// whitespace collapse, lowercase; open_clip's split regex; byte-level BPE with `</w>`;
/// `[SOT] + bpe + [EOT]`, zero padded, truncated to `context_length` with EOT last.
pub struct ClipBpeTokenizer {
    bpe: BPE,
    pre: tokenizers::pre_tokenizers::sequence::Sequence,
    context_length: usize,
    identity: [u8; 32],
}

impl std::fmt::Debug for ClipBpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipBpeTokenizer")
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

impl ClipBpeTokenizer {
    /// The vocabulary bundled in the crate (`data/clip-bpe/bpe_simple_vocab_16e6.txt.gz`).
    pub fn bundled(context_length: usize) -> Result<Self, TokenizerError> {
        Self::from_gz_bytes(BUNDLED_VOCAB_GZ, context_length)
    }

    /// Read a `bpe_simple_vocab_16e6.txt.gz`-style file.
    pub fn from_path(
        path: impl AsRef<Path>,
        context_length: usize,
    ) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_gz_bytes(&bytes, context_length).map_err(|e| match e {
            TokenizerError::Vocab(msg) => {
                TokenizerError::Vocab(format!("{}: {msg}", path.display()))
            }
            other => other,
        })
    }

    /// Build from the gzip'd merges file contents.
    pub fn from_gz_bytes(gz: &[u8], context_length: usize) -> Result<Self, TokenizerError> {
        if context_length < 2 {
            return Err(TokenizerError::ContextLength(context_length));
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .map_err(|e| {
                TokenizerError::Vocab(format!(
                    "cannot gunzip the BPE merges file as UTF-8 text: {e}"
                ))
            })?;
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() < NUM_MERGES + 1 {
            return Err(TokenizerError::Vocab(format!(
                "BPE merges file has {} lines, need at least {} (header + {NUM_MERGES} merges)",
                lines.len(),
                NUM_MERGES + 1
            )));
        }
        let b2u = bytes_to_unicode();
        let mut vocab: HashMap<String, u32> = HashMap::with_capacity(VOCAB_SIZE);
        let mut next_id = 0u32;
        let mut push = |vocab: &mut HashMap<String, u32>, tok: String| {
            vocab.insert(tok, next_id);
            next_id += 1;
        };
        for (_, c) in &b2u {
            push(&mut vocab, c.to_string());
        }
        for (_, c) in &b2u {
            push(&mut vocab, format!("{c}</w>"));
        }
        let mut merges = Vec::with_capacity(NUM_MERGES);
        for (i, line) in lines[1..=NUM_MERGES].iter().enumerate() {
            let mut parts = line.split_whitespace();
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(TokenizerError::Vocab(format!(
                    "BPE merges line {} is not two symbols: {line:?}",
                    i + 2
                )));
            };
            push(&mut vocab, format!("{a}{b}"));
            merges.push((a.to_string(), b.to_string()));
        }
        push(&mut vocab, SOT_TOKEN.to_string());
        push(&mut vocab, EOT_TOKEN.to_string());
        if vocab.len() != VOCAB_SIZE
            || vocab.get(SOT_TOKEN) != Some(&SOT_ID)
            || vocab.get(EOT_TOKEN) != Some(&EOT_ID)
        {
            return Err(TokenizerError::Vocab(format!(
                "vocabulary has {} distinct tokens (want {VOCAB_SIZE}) or misplaced specials",
                vocab.len()
            )));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(
                vocab
                    .into_iter()
                    .collect::<tokenizers::models::bpe::Vocab>(),
                merges,
            )
            .end_of_word_suffix("</w>".to_string())
            .cache_capacity(200_000)
            .build()
            .map_err(|e| TokenizerError::Backend(format!("building the BPE model: {e}")))?;
        let split = Split::new(
            SplitPattern::Regex(SPLIT_PATTERN.to_string()),
            SplitDelimiterBehavior::Removed,
            true,
        )
        .map_err(|e| TokenizerError::Backend(format!("compiling the split regex: {e}")))?;
        let pre = tokenizers::pre_tokenizers::sequence::Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, false, false).into(),
        ]);

        let mut h = blake3::Hasher::new();
        h.update(b"atlas-tokenizer/clip-bpe/v1\0clean=lower\0");
        h.update(&(context_length as u64).to_le_bytes());
        for line in &lines[..=NUM_MERGES] {
            h.update(line.as_bytes());
            h.update(b"\n");
        }
        h.update(crate::tables::TABLES_JSON.as_bytes());
        Ok(Self {
            bpe,
            pre,
            context_length,
            identity: *h.finalize().as_bytes(),
        })
    }

    /// BPE ids of one string (no SOT/EOT, no padding): open_clip's `SimpleTokenizer.encode`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let cleaned = clean_lower(text);
        let mut pts = PreTokenizedString::from(cleaned.as_str());
        self.pre
            .pre_tokenize(&mut pts)
            .map_err(|e| TokenizerError::Backend(format!("pre-tokenizing {text:?}: {e}")))?;
        let mut ids = Vec::new();
        for (piece, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::None) {
            match piece {
                SOT_TOKEN => ids.push(SOT_ID),
                EOT_TOKEN => ids.push(EOT_ID),
                _ => {
                    let toks = self.bpe.tokenize(piece).map_err(|e| {
                        TokenizerError::Backend(format!("BPE on {piece:?} of {text:?}: {e}"))
                    })?;
                    ids.extend(toks.into_iter().map(|t| t.id));
                }
            }
        }
        Ok(ids)
    }

    /// Tokenize with another context length than the configured one.
    pub fn tokenize_with_context(
        &self,
        texts: &[&str],
        context_length: usize,
    ) -> Result<Vec<Vec<u32>>, TokenizerError> {
        if context_length < 2 {
            return Err(TokenizerError::ContextLength(context_length));
        }
        crate::par_map(texts, |t| {
            let bpe = self.encode(t)?;
            Ok(layout(Some(SOT_ID), &bpe, EOT_ID, context_length, 0, true))
        })
    }
}

impl TextTokenizer for ClipBpeTokenizer {
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        self.tokenize_with_context(texts, self.context_length)
    }
    fn context_length(&self) -> usize {
        self.context_length
    }
    fn eot_id(&self) -> u32 {
        EOT_ID
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
}
