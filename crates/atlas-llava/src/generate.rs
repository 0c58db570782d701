//! Decoding with a KV cache: the prompt (image features spliced in) is run once, then one
//! token per step. Greedy (argmax, ties to the lowest id as `torch.argmax`) or temperature
//! sampling from a seeded xoshiro256++ stream (reproducible for a seed; not PyTorch's stream).
//! Stops after `max_new_tokens` or at the end-of-sequence id (which is kept in the output, as
//! transformers' `generate` keeps it).

use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{Rng as _, SeedableRng};

use crate::error::{LlavaError, Result};
use crate::llama::KvCache;
use crate::model::{Llava, to_host};

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token.
    Greedy,
    /// A draw from `softmax(logits / temperature)`; `seed` fixes the stream.
    Temperature { temperature: f32, seed: u64 },
}

/// Generation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Stop after this id (`None`: never stop early).
    pub eos_token_id: Option<u32>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 512,
            sampling: Sampling::Greedy,
            eos_token_id: Some(2),
        }
    }
}

/// The index of the largest value (the first of equal ones).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || (logits[best].is_nan() && !v.is_nan()) {
            best = i;
        }
    }
    best
}

/// A draw from `softmax(logits / temperature)` with uniform `u` in `[0, 1)`.
pub fn sample(logits: &[f32], temperature: f32, u: f64) -> usize {
    let t = f64::from(temperature);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| ((x as f64 - max) / t).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    argmax(logits)
}

impl Llava {
    /// New token ids after `prompt` (already tokenized, `<image>` expanded), with the images'
    /// normalised pixels `[n, 3, size, size]` (row-major) when the prompt has image tokens.
    pub fn generate(
        &self,
        prompt: &[u32],
        pixels: Option<(&[f32], usize)>,
        opts: &GenerateOptions,
    ) -> Result<Vec<u32>> {
        if let Sampling::Temperature { temperature, .. } = opts.sampling
            && !(temperature > 0.0 && temperature.is_finite())
        {
            return Err(LlavaError::Input(format!(
                "temperature {temperature} must be positive and finite (use Sampling::Greedy \
                 for temperature 0)"
            )));
        }
        let mut rng = match opts.sampling {
            Sampling::Temperature { seed, .. } => Some(Xoshiro256PlusPlus::seed_from_u64(seed)),
            Sampling::Greedy => None,
        };
        let features = self.prompt_features(prompt, pixels)?;
        let vocab = self.config.text.vocab_size;
        let mut cache = KvCache::new();
        let mut out = Vec::with_capacity(opts.max_new_tokens);
        let mut input: Vec<u32> = prompt.to_vec();
        let mut features = features;
        while out.len() < opts.max_new_tokens {
            let logits = self.forward(&input, features.take(), &mut cache)?;
            let l = logits.dims()[1];
            let last = to_host(logits.narrow(1, l - 1, 1))?;
            if last.len() != vocab {
                return Err(LlavaError::Input(format!(
                    "internal: {} logits for a vocab of {vocab}",
                    last.len()
                )));
            }
            let next = match (&mut rng, opts.sampling) {
                (Some(rng), Sampling::Temperature { temperature, .. }) => {
                    // 53 random bits -> [0, 1).
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    sample(&last, temperature, u)
                }
                _ => argmax(&last),
            } as u32;
            out.push(next);
            if Some(next) == opts.eos_token_id {
                break;
            }
            input = vec![next];
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5]), 1);
    }

    #[test]
    fn sample_follows_weights() {
        let logits = [0.0f32, 10.0, 0.0];
        assert_eq!(sample(&logits, 1.0, 0.5), 1);
        assert_eq!(sample(&logits, 1.0, 0.0), 0);
        assert_eq!(sample(&logits, 1.0, 0.999_999_9), 2);
    }
}
