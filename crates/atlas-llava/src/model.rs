//! transformers `LlavaForConditionalGeneration` (LLaVA-1.5): CLIP ViT hidden states at
//! `vision_feature_layer` (class token dropped with the `default` strategy), the MLP
//! projector, and the LLaMA decoder whose input embeddings at the image-token positions are
//! replaced by the projected image features in order (`inputs_embeds.masked_scatter`, as
//! `LlavaModel.forward` does; the processor has expanded each `<image>` into
//! [`LlavaConfig::image_tokens`] image tokens), then `lm_head`.

use atlas_models::vit::VisionTransformer;
use atlas_models::{AttentionImpl, load_hf_clip_vision};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::{LlavaConfig, SelectStrategy};
use crate::error::{LlavaError, Result};
use crate::llama::{KvCache, Llama};
use crate::projector::Projector;
use crate::weights::{Checkpoint, KeyLayout};

/// The output head: its own `lm_head`, or the token embeddings (`tie_word_embeddings`).
#[derive(Debug)]
pub enum LmHead {
    Linear(Linear),
    /// `[vocab, hidden]`, applied as `x @ E^T`.
    Tied(Tensor<2>),
}

/// A loaded `LlavaForConditionalGeneration`.
#[derive(Debug)]
pub struct Llava {
    pub vision_tower: VisionTransformer,
    pub projector: Projector,
    pub language_model: Llama,
    pub lm_head: LmHead,
    pub config: LlavaConfig,
    pub device: Device,
}

impl Llava {
    /// Build from a checkpoint; every tensor of it must be used.
    pub fn load(ckpt: &Checkpoint, config: &LlavaConfig, device: &Device) -> Result<Self> {
        let layout = KeyLayout::detect(ckpt)?;
        let (vision_tower, used) = load_hf_clip_vision(
            ckpt,
            layout.vision,
            &config.vision,
            config.vision_activation,
            AttentionImpl::Matmul,
            device,
        )?;
        ckpt.mark_used(used);
        let projector = Projector::load(ckpt, layout.projector, config, device)?;
        let language_model = Llama::load(ckpt, layout.text, &config.text, device)?;
        let t = &config.text;
        let head_key = format!("{}weight", layout.lm_head);
        let lm_head = if ckpt.has(&head_key) || !t.tie_word_embeddings {
            let prefix = layout.lm_head.trim_end_matches('.');
            LmHead::Linear(ckpt.linear(prefix, t.hidden_size, t.vocab_size, false, device)?)
        } else {
            LmHead::Tied(language_model.embed_tokens.weight.val())
        };
        ckpt.finish()?;
        Ok(Llava {
            vision_tower,
            projector,
            language_model,
            lm_head,
            config: config.clone(),
            device: device.clone(),
        })
    }

    /// Projected image features `[images * image_tokens, hidden]` from normalised pixels
    /// `[images, 3, size, size]` (`LlavaModel.get_image_features`).
    pub fn image_features(&self, pixels: Tensor<4>) -> Result<Tensor<2>> {
        let [n, c, hh, ww] = pixels.dims();
        let s = self.config.vision.image_size as usize;
        if c != 3 || hh != s || ww != s {
            return Err(LlavaError::Input(format!(
                "pixels are [{n}, {c}, {hh}, {ww}], the vision tower needs [n, 3, {s}, {s}] \
                 (preprocess with the model's image processor)"
            )));
        }
        let mut parts = Vec::with_capacity(self.config.vision_feature_layers.len());
        for &layer in &self.config.vision_feature_layers {
            let blocks = self.config.hidden_state_index(layer).ok_or_else(|| {
                LlavaError::Input(format!("vision_feature_layer {layer} out of range"))
            })?;
            parts.push(self.vision_tower.hidden_state(pixels.clone(), blocks));
        }
        let x = Tensor::cat(parts, 2);
        let x = match self.config.select_strategy {
            SelectStrategy::Default => {
                let tokens = x.dims()[1] - 1;
                x.narrow(1, 1, tokens)
            }
            SelectStrategy::Full => x,
        };
        let x = self.projector.forward(x);
        let [n, t, d] = x.dims();
        Ok(x.reshape([n * t, d]))
    }

    /// Input embeddings `[1, len, hidden]` of `ids`, image-token positions filled in order with
    /// the rows of `image_features` (there must be exactly as many). Without features every id
    /// is embedded as a token, image-token ids included (transformers without `pixel_values`,
    /// as in its decoding steps, where the model may emit the image-token id).
    pub fn embed(&self, ids: &[u32], image_features: Option<Tensor<2>>) -> Result<Tensor<3>> {
        let vocab = self.config.text.vocab_size;
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(LlavaError::Input(format!(
                "token id {bad} >= vocab size {vocab}; tokenize with the model's tokenizer"
            )));
        }
        let weight = self.language_model.embed_tokens.weight.val();
        let Some(features) = image_features else {
            let idx: Vec<i64> = ids.iter().map(|&t| t as i64).collect();
            let idx: Tensor<1, Int> =
                Tensor::from_data(TensorData::new(idx, [ids.len()]), &self.device);
            return Ok(weight.select(0, idx).unsqueeze::<3>());
        };
        let image = self.config.image_token_id;
        let n_image = ids.iter().filter(|&&t| t == image).count();
        let rows = features.dims()[0];
        if n_image != rows {
            return Err(LlavaError::Input(format!(
                "the prompt has {n_image} image tokens but the images give {rows} feature rows \
                 ({} per image); put one `<image>` per image in the prompt and expand it with \
                 LlavaTokenizer::encode",
                self.config.image_tokens()
            )));
        }
        let mut parts = Vec::new();
        let (mut i, mut next_row) = (0, 0);
        while i < ids.len() {
            let is_image = ids[i] == image;
            let run = ids[i..]
                .iter()
                .take_while(|&&t| (t == image) == is_image)
                .count();
            if is_image {
                parts.push(features.clone().narrow(0, next_row, run));
                next_row += run;
            } else {
                let idx: Vec<i64> = ids[i..i + run].iter().map(|&t| t as i64).collect();
                let idx: Tensor<1, Int> =
                    Tensor::from_data(TensorData::new(idx, [run]), &self.device);
                parts.push(weight.clone().select(0, idx));
            }
            i += run;
        }
        let x = Tensor::cat(parts, 0);
        Ok(x.unsqueeze::<3>())
    }

    /// Logits `[1, len, vocab]` of `ids` (after the cached positions), with image features
    /// for the image tokens among them.
    pub fn forward(
        &self,
        ids: &[u32],
        image_features: Option<Tensor<2>>,
        cache: &mut KvCache,
    ) -> Result<Tensor<3>> {
        if ids.is_empty() {
            return Err(LlavaError::Input("forward: no token ids".into()));
        }
        let max = self.config.text.max_position_embeddings;
        if cache.len() + ids.len() > max {
            return Err(LlavaError::Input(format!(
                "{} positions exceed max_position_embeddings {max}; shorten the prompt or \
                 max_new_tokens",
                cache.len() + ids.len()
            )));
        }
        let embeds = self.embed(ids, image_features)?;
        let hidden = self.language_model.forward(embeds, cache);
        Ok(match &self.lm_head {
            LmHead::Linear(l) => l.forward(hidden),
            LmHead::Tied(e) => hidden.matmul(e.clone().transpose().unsqueeze::<3>()),
        })
    }

    /// [`Self::forward`] from host pixels `[images, 3, size, size]` (row-major, normalised),
    /// returning host logits `[len, vocab]` (row-major f32).
    /// A prompt with image tokens needs its images.
    pub fn logits(&self, ids: &[u32], pixels: Option<(&[f32], usize)>) -> Result<Vec<f32>> {
        let features = self.prompt_features(ids, pixels)?;
        let logits = self.forward(ids, features, &mut KvCache::new())?;
        to_host(logits)
    }

    /// The image features of a prompt's images; an error when the prompt has image tokens
    /// and no images are given.
    pub(crate) fn prompt_features(
        &self,
        ids: &[u32],
        pixels: Option<(&[f32], usize)>,
    ) -> Result<Option<Tensor<2>>> {
        match pixels {
            Some((p, n)) => Ok(Some(self.image_features(self.pixels(p, n)?)?)),
            None if ids.contains(&self.config.image_token_id) => Err(LlavaError::Input(format!(
                "the prompt has image tokens but no images were given; pass one image per \
                 `<image>` ({} image tokens each)",
                self.config.image_tokens()
            ))),
            None => Ok(None),
        }
    }

    /// Host pixels `[n, 3, size, size]` as a device tensor (checked).
    pub fn pixels(&self, pixels: &[f32], n: usize) -> Result<Tensor<4>> {
        let s = self.config.vision.image_size as usize;
        if n == 0 || pixels.len() != n * 3 * s * s {
            return Err(LlavaError::Input(format!(
                "got {} pixel values for {n} image(s); expected n x 3 x {s} x {s} (n > 0)",
                pixels.len()
            )));
        }
        Ok(Tensor::from_data(
            TensorData::new(pixels.to_vec(), [n, 3, s, s]),
            &self.device,
        ))
    }
}

/// A device tensor as host f32s.
pub(crate) fn to_host<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_vec_as::<f32>()
        .map_err(|e| LlavaError::Input(format!("reading a tensor back from the device: {e:?}")))
}
