//! The demo LMM's two-way accuracy, measured on the saved model as atlas-llava runs it: per
//! image the ImageNet-D question with the ground truth first and a distractor (another class,
//! drawn from a seeded stream per split), greedy answer of at most [`MAX_NEW_TOKENS`] tokens,
//! scored by `imagenet_d::score`; accuracy = TRUE / (TRUE + FALSE).

use atlas_llava::{GenerateOptions, LoadedLlava, Sampling};
use atlas_metrics::imagenet_d::{Tally, score};
use atlas_preprocess::PreprocessConfig;
use serde::{Deserialize, Serialize};

use super::train::{pixels, two_way_prompt};
use super::vocab::EOS_ID;
use crate::data::{Rng, Split};
use crate::error::{Result, TrainError};

/// Answer length cap of the evaluation (a class name and `</s>`).
pub const MAX_NEW_TOKENS: usize = 6;

/// Two-way accuracy on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoWayAccuracy {
    pub split: String,
    pub n: usize,
    /// TRUE / (TRUE + FALSE).
    pub accuracy: f64,
    pub true_: usize,
    pub false_: usize,
    pub double: usize,
    pub neither: usize,
}

/// The distractor of item `i`: another class, from the split's seeded stream.
pub fn distractors(labels: &[usize], classes: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed ^ 0xD157_AC70);
    labels
        .iter()
        .map(|&gt| (gt + 1 + rng.below(classes - 1)) % classes)
        .collect()
}

/// Two-way accuracy of `model` on the first `limit` images of `split`.
pub fn two_way_accuracy(
    model: &LoadedLlava,
    name: &str,
    split: &Split,
    pre: &PreprocessConfig,
    seed: u64,
    limit: usize,
) -> Result<TwoWayAccuracy> {
    let tok = model
        .tokenizer
        .as_ref()
        .ok_or_else(|| TrainError::Tokenizer("the saved demo LMM has no tokenizer.json".into()))?;
    let names = &split.classnames;
    let n = split.len().min(limit);
    let wrong = distractors(&split.labels[..n], names.len(), seed);
    let opts = GenerateOptions {
        max_new_tokens: MAX_NEW_TOKENS,
        sampling: Sampling::Greedy,
        eos_token_id: Some(EOS_ID),
    };
    let mut tally = Tally::default();
    let llava_err = |e: atlas_llava::LlavaError| TrainError::Model(e.to_string());
    for (i, &d) in wrong.iter().enumerate() {
        let (gt, distractor) = (&names[split.labels[i]], &names[d]);
        let ids = tok
            .encode(&two_way_prompt(gt, distractor))
            .map_err(llava_err)?;
        let px = pixels(split, i, pre);
        let out = model
            .model
            .generate(&ids, Some((&px, 1)), &opts)
            .map_err(llava_err)?;
        let answer = tok.decode(&out, true).map_err(llava_err)?;
        tally.add(score(gt, distractor, &answer));
    }
    Ok(TwoWayAccuracy {
        split: name.to_string(),
        n,
        accuracy: tally.accuracy().unwrap_or(0.0),
        true_: tally.true_,
        false_: tally.false_,
        double: tally.double,
        neither: tally.neither,
    })
}
