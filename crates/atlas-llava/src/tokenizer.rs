//! The LLaMA tokenizer (`tokenizer.json` through the `tokenizers` crate) with
//! `LlavaProcessor`'s image-placeholder handling: each `<image>` in the prompt is replaced by
//! `image_tokens` copies of itself (`(size / patch)²`, plus one with the `full` strategy), then
//! the text is encoded with the tokenizer's special tokens (`<s>` first). `<image>` is an added
//! special token, so each copy is one id (the config's `image_token_index`).

use std::path::Path;

use tokenizers::Tokenizer;

use crate::config::LlavaConfig;
use crate::error::{LlavaError, Result};
use crate::template::IMAGE_PLACEHOLDER;

/// A LLaVA processor's text side.
pub struct LlavaTokenizer {
    inner: Tokenizer,
    image_token_id: u32,
    image_tokens: usize,
}

impl std::fmt::Debug for LlavaTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlavaTokenizer")
            .field("image_token_id", &self.image_token_id)
            .field("image_tokens", &self.image_tokens)
            .finish_non_exhaustive()
    }
}

impl LlavaTokenizer {
    /// Read `tokenizer.json` for a model of `config`; `<image>` must be in its vocabulary with
    /// the config's image token id.
    pub fn from_file(path: &Path, config: &LlavaConfig) -> Result<Self> {
        let inner = Tokenizer::from_file(path).map_err(|e| {
            LlavaError::Tokenizer(format!(
                "cannot read {}: {e}; save the processor with save_pretrained",
                path.display()
            ))
        })?;
        Self::new(inner, config)
    }

    /// Wrap a `tokenizers` tokenizer.
    pub fn new(inner: Tokenizer, config: &LlavaConfig) -> Result<Self> {
        match inner.token_to_id(IMAGE_PLACEHOLDER) {
            Some(id) if id == config.image_token_id => {}
            found => {
                return Err(LlavaError::Tokenizer(format!(
                    "the tokenizer maps {IMAGE_PLACEHOLDER} to {found:?}, the model config's \
                     image_token_index is {}; use the tokenizer saved with the model",
                    config.image_token_id
                )));
            }
        }
        Ok(Self {
            inner,
            image_token_id: config.image_token_id,
            image_tokens: config.image_tokens(),
        })
    }

    /// The prompt with each `<image>` expanded to the model's image-token count
    /// (`LlavaProcessor`: `sample.replace(image_token, image_token * num_image_tokens)`).
    pub fn expand_images(&self, prompt: &str) -> String {
        prompt.replace(
            IMAGE_PLACEHOLDER,
            &IMAGE_PLACEHOLDER.repeat(self.image_tokens),
        )
    }

    /// The model's input ids of `prompt` (with `<image>` placeholders), as
    /// `LlavaProcessor(text=prompt, images=...)["input_ids"]`.
    pub fn encode(&self, prompt: &str) -> Result<Vec<u32>> {
        let text = self.expand_images(prompt);
        let enc = self
            .inner
            .encode(text.as_str(), true)
            .map_err(|e| LlavaError::Tokenizer(format!("encoding a prompt: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of generated ids (special tokens skipped when `skip_special`).
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| LlavaError::Tokenizer(format!("decoding ids: {e}")))
    }

    /// The number of `<image>` placeholders in a prompt.
    pub fn count_images(prompt: &str) -> usize {
        prompt.matches(IMAGE_PLACEHOLDER).count()
    }

    pub fn image_token_id(&self) -> u32 {
        self.image_token_id
    }

    /// The underlying `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
