//! Generation throughput of a loaded model: `cargo xtask bench llava` runs this and
//! `tools/lmm/bench_llava.py` (transformers' `LlavaForConditionalGeneration.generate`) on the
//! same directory, image and prompts, and prints both and the ratio.
//!
//! Both sides decode greedily, one prompt at a time (batch 1, as the LMM stage asks), exactly
//! `max_new_tokens` new tokens per prompt (no early stop at EOS, so both generate the same
//! number of tokens), after one untimed warm-up prompt. The prompts are ImageNet-D's two-way
//! question over made-up class pairs in the `llava_v1` template with the image first.

use std::time::Instant;

use crate::error::{LlavaError, Result};
use crate::generate::{GenerateOptions, Sampling};
use crate::load::LoadedLlava;
use crate::template::llava_v1_prompt;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Timed prompts.
    pub prompts: usize,
    pub max_new_tokens: usize,
}

/// Measured throughput, and the generated ids (for the same-tokens check against the
/// reference).
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub prompts: usize,
    pub new_tokens: usize,
    /// Prompt tokens per prompt after `<image>` expansion (the prefill length).
    pub prompt_tokens: Vec<usize>,
    pub seconds: f64,
    pub generated: Vec<Vec<u32>>,
}

impl BenchResult {
    pub fn prompts_per_s(&self) -> f64 {
        self.prompts as f64 / self.seconds.max(1e-12)
    }
    pub fn tokens_per_s(&self) -> f64 {
        self.new_tokens as f64 / self.seconds.max(1e-12)
    }
}

/// The `n` prompt strings (before `<image>` expansion): ImageNet-D's question over pairs of
/// made-up class names, different per prompt so no two prefills are identical.
pub fn bench_prompts(n: usize) -> Vec<String> {
    const NAMES: [&str; 8] = [
        "ball", "cup", "tree", "chair", "fish", "lamp", "shoe", "boat",
    ];
    (0..n)
        .map(|i| {
            let a = NAMES[i % NAMES.len()];
            let mut j = (i / NAMES.len() + i + 1) % NAMES.len();
            if j == i % NAMES.len() {
                j = (j + 1) % NAMES.len();
            }
            let b = NAMES[j];
            let question = format!(
                "What is the main object in this image? Choose from the following list: {a}, {b}."
            );
            llava_v1_prompt(&question, true)
        })
        .collect()
}

/// Greedy generation of `spec.max_new_tokens` tokens for each of `spec.prompts` prompts on
/// `image` (encoded PNG / JPEG bytes), after one warm-up prompt.
pub fn bench_generate(m: &LoadedLlava, image: &[u8], spec: &BenchSpec) -> Result<BenchResult> {
    let tok = m.tokenizer.as_ref().ok_or_else(|| {
        LlavaError::Input("the model directory has no tokenizer.json: the bench needs one".into())
    })?;
    let pixels = m.pixels(image)?;
    let opts = GenerateOptions {
        max_new_tokens: spec.max_new_tokens,
        sampling: Sampling::Greedy,
        eos_token_id: None,
    };
    let prompts = bench_prompts(spec.prompts + 1);
    let ids = prompts
        .iter()
        .map(|p| tok.encode(p))
        .collect::<Result<Vec<_>>>()?;
    // Warm-up: first-use allocations and kernel selection are not part of the rate.
    m.model.generate(&ids[0], Some((&pixels, 1)), &opts)?;
    let start = Instant::now();
    let mut generated = Vec::with_capacity(spec.prompts);
    for p in &ids[1..] {
        generated.push(m.model.generate(p, Some((&pixels, 1)), &opts)?);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(BenchResult {
        prompts: spec.prompts,
        new_tokens: generated.iter().map(Vec::len).sum(),
        prompt_tokens: ids[1..].iter().map(Vec::len).collect(),
        seconds,
        generated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_differ_and_hold_the_image_once() {
        let p = bench_prompts(20);
        assert_eq!(p.len(), 20);
        for s in &p {
            assert_eq!(s.matches(crate::template::IMAGE_PLACEHOLDER).count(), 1);
            assert!(s.contains("Choose from the following list: "));
            let list = s.split("list: ").nth(1).unwrap_or_default();
            let (a, b) = list
                .trim_end_matches(" ASSISTANT:")
                .split_once(", ")
                .unwrap_or_default();
            assert_ne!(a, b.trim_end_matches('.'), "{s}");
        }
        let distinct: std::collections::BTreeSet<_> = p.iter().collect();
        assert!(distinct.len() > 10, "{} distinct prompts", distinct.len());
    }
}
