//! ImageNet-D's LMM protocol: the two-way multiple-choice question built from a surrogate
//! classifier's ranking, and the scoring of the LMM's free-text answer into TRUE / FALSE /
//! DOUBLE / NEITHER, with accuracy = TRUE / (TRUE + FALSE).
//!
//! Re-implements github.com/chenshuang-zhang/imagenet_d (commit d8bb2df):
//! - [`category_name`]: `evaluate_vlm.py`, `test_model` (folder name → category string);
//! - [`distractor`], [`question`]: `LLaVA/llava/serve/eval_imagenet_d.py`, `main`;
//! - [`SYNONYMS`], [`mentions`], [`score`], [`Tally`]: `LLaVA/compute_accuracy.py`
//!   (`word_mapping_dict`, `test_word_mapping`, the per-row flag, `true_num / (true_num +
//!   false_num)`).
//!
//! As in the original, only the answer is lowercased: a category name is matched as given
//! (ImageNet-D's names are lower case after [`category_name`]), so a name with upper-case
//! letters never matches. Matching is plain substring search ("ant" matches "elephant"); the
//! two pairs whose names contain each other ("pen" / "can opener", "plate" / "drying rack for
//! plates") are decided by one name first, as the original does.
//!
//! `tests/imagenet_d.rs` checks every verdict and the accuracies against
//! `tools/reference/make_imagenet_d_scoring.py` (a Python re-implementation citing the same
//! files) on 263 made-up answers.

use crate::classification::argmax;
use crate::error::{MetricsError, Result};

/// `word_mapping_dict` of `compute_accuracy.py`: a category name and the other strings that
/// count as naming it (lower case).
pub const SYNONYMS: &[(&str, &[&str])] = &[
    ("dishcloth", &["dishrag"]),
    ("weight (exercise)", &["dumbbell", "weight"]),
    ("nail (fastener)", &["nail"]),
    ("tv", &["television"]),
    ("iron (for clothes)", &["iron"]),
    ("t shirt", &["t-shirt", "shirt"]),
    ("laptop (open)", &["laptop"]),
    ("dress shoe (men)", &["dress shoe"]),
    ("binder (closed)", &["binder"]),
    ("portable heater", &["heater"]),
    ("computer mouse", &["mouse"]),
    ("still camera", &["camera"]),
    ("lampshade", &["lamp shade"]),
    ("trash bin", &["trash can"]),
    ("winter glove", &["glove"]),
    ("band aid", &["band-aid", "bandaid"]),
    ("toilet paper roll", &["roll of toilet paper"]),
    ("pill bottle", &["pill"]),
    ("soup bowl", &["bowl of soup"]),
    ("water bottle", &["bottle of water"]),
    ("pop can", &["can of"]),
    ("weight scale", &["scale"]),
    ("sandal", &["flip flop"]),
    ("swimming trunks", &["swimming trunk"]),
    ("bread loaf", &["bread"]),
    (
        "coffee or french press",
        &[
            "coffee press",
            "french press",
            "coffee machine",
            "coffee maker",
        ],
    ),
    ("mixing or salad bowl", &["mixing bowl", "salad bowl"]),
    ("alarm clock", &["clock"]),
    ("wheel", &["bicycle wheel"]),
    ("ladle", &["spoon"]),
    ("matchstick", &["match"]),
    ("cellphone", &["cell phone", "mobile phone"]),
];

/// The verdict on one answer (`compute_accuracy.py` writes them as "LLaVa TRUE", "LLaVa
/// FALSE", "LLaVa DOUBLE" and "LLaVa TODO").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Names the ground truth only.
    True,
    /// Names the distractor only.
    False,
    /// Names both.
    Double,
    /// Names neither (the original's "TODO").
    Neither,
}

impl Verdict {
    /// "TRUE", "FALSE", "DOUBLE" or "NEITHER".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::True => "TRUE",
            Verdict::False => "FALSE",
            Verdict::Double => "DOUBLE",
            Verdict::Neither => "NEITHER",
        }
    }

    /// The inverse of [`Verdict::as_str`] (also accepts the original's "TODO").
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TRUE" => Some(Verdict::True),
            "FALSE" => Some(Verdict::False),
            "DOUBLE" => Some(Verdict::Double),
            "NEITHER" | "TODO" => Some(Verdict::Neither),
            _ => None,
        }
    }
}

/// The category string of a class folder name (`evaluate_vlm.py`): `_` and `-` become spaces,
/// `/` becomes " or ", then lower case ("coffee/french_press" → "coffee or french press").
pub fn category_name(folder: &str) -> String {
    folder
        .replace(['_', '-'], " ")
        .replace('/', " or ")
        .to_lowercase()
}

/// The distractor name: the surrogate's top-1 when it is not the ground truth, else its top-2.
pub fn distractor<'a>(gt: &'a str, top1: &'a str, top2: &'a str) -> &'a str {
    if top1 != gt { top1 } else { top2 }
}

/// The distractor class index from one item's surrogate scores (logits or probabilities over
/// the classes): the top-1 class when it is not `gt`, else the top-2 (ties to the lowest
/// index, as [`argmax`]). Needs at least two classes and `gt` in range.
pub fn distractor_index(scores: &[f32], gt: usize) -> Result<usize> {
    if scores.len() < 2 {
        return Err(MetricsError::InvalidParameter {
            what: "surrogate scores",
            reason: format!(
                "{} class score(s); a two-way question needs at least 2 classes",
                scores.len()
            ),
        });
    }
    if gt >= scores.len() {
        return Err(MetricsError::IndexOutOfRange {
            what: "ground-truth class",
            position: 0,
            index: gt,
            bound: scores.len(),
        });
    }
    if let Some(position) = scores.iter().position(|s| !s.is_finite()) {
        return Err(MetricsError::NonFinite {
            what: "surrogate scores",
            position,
        });
    }
    let top1 = argmax(scores);
    if top1 != gt {
        return Ok(top1);
    }
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if i != top1 && best.is_none_or(|b| s > scores[b]) {
            best = Some(i);
        }
    }
    // At least two classes were checked above, so `best` is set.
    best.ok_or(MetricsError::Empty {
        what: "surrogate scores",
    })
}

/// The question of `eval_imagenet_d.py`: ground truth first, distractor second.
pub fn question(gt: &str, distractor: &str) -> String {
    format!(
        "What is the main object in this image? Choose from the following list: {gt}, \
         {distractor}."
    )
}

/// `test_word_mapping(word, answer, word_mapping_dict)`: `word` or one of its [`SYNONYMS`] is
/// a substring of `answer_lower` (the answer already lowercased; `word` is used as given).
pub fn mentions(word: &str, answer_lower: &str) -> bool {
    if answer_lower.contains(word) {
        return true;
    }
    SYNONYMS
        .iter()
        .find(|(key, _)| *key == word)
        .is_some_and(|(_, syns)| syns.iter().any(|s| answer_lower.contains(s)))
}

/// The verdict on `answer` for the question with ground truth `gt` and distractor `pred`
/// (`compute_accuracy.py`'s per-row flag).
pub fn score(gt: &str, pred: &str, answer: &str) -> Verdict {
    let answer = answer.to_lowercase();
    let test_gt = mentions(gt, &answer);
    let test_pred = mentions(pred, &answer);
    let pred_first = (gt == "pen" && pred == "can opener")
        || (gt == "plate" && pred == "drying rack for plates");
    let gt_first = (gt == "can opener" && pred == "pen")
        || (gt == "drying rack for plates" && pred == "plate");
    if pred_first {
        return if test_pred {
            Verdict::False
        } else if test_gt {
            Verdict::True
        } else {
            Verdict::Neither
        };
    }
    if gt_first {
        return if test_gt {
            Verdict::True
        } else if test_pred {
            Verdict::False
        } else {
            Verdict::Neither
        };
    }
    match (test_gt, test_pred) {
        (true, true) => Verdict::Double,
        (true, false) => Verdict::True,
        (false, true) => Verdict::False,
        (false, false) => Verdict::Neither,
    }
}

/// Verdict counts of a set of answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub true_: usize,
    pub false_: usize,
    pub double: usize,
    pub neither: usize,
}

impl Tally {
    /// Counts of `verdicts`.
    pub fn of(verdicts: impl IntoIterator<Item = Verdict>) -> Self {
        let mut t = Tally::default();
        for v in verdicts {
            t.add(v);
        }
        t
    }

    /// Count one more verdict.
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::True => self.true_ += 1,
            Verdict::False => self.false_ += 1,
            Verdict::Double => self.double += 1,
            Verdict::Neither => self.neither += 1,
        }
    }

    /// All answers counted.
    pub fn total(&self) -> usize {
        self.true_ + self.false_ + self.double + self.neither
    }

    /// ImageNet-D's accuracy TRUE / (TRUE + FALSE); `None` when no answer was TRUE or FALSE
    /// (DOUBLE and NEITHER answers are left out of both counts).
    pub fn accuracy(&self) -> Option<f64> {
        let denom = self.true_ + self.false_;
        (denom > 0).then(|| self.true_ as f64 / denom as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distractor_is_top1_when_wrong_else_top2() {
        assert_eq!(distractor_index(&[0.1, 0.7, 0.2], 0).unwrap(), 1);
        assert_eq!(distractor_index(&[0.1, 0.7, 0.2], 1).unwrap(), 2);
        assert_eq!(distractor_index(&[0.5, 0.5, 0.2], 0).unwrap(), 1);
        assert_eq!(distractor_index(&[0.9, 0.1], 0).unwrap(), 1);
        assert!(distractor_index(&[1.0], 0).is_err());
        assert!(distractor_index(&[1.0, 2.0], 2).is_err());
        assert!(distractor_index(&[1.0, f32::NAN], 0).is_err());
        assert_eq!(distractor("dog", "dog", "cat"), "cat");
        assert_eq!(distractor("dog", "ant", "cat"), "ant");
    }

    #[test]
    fn question_text_and_names() {
        assert_eq!(
            question("dog", "cat"),
            "What is the main object in this image? Choose from the following list: dog, cat."
        );
        assert_eq!(
            category_name("coffee/french_press"),
            "coffee or french press"
        );
        assert_eq!(category_name("T-shirt"), "t shirt");
    }

    #[test]
    fn special_pairs_and_synonyms() {
        assert_eq!(score("pen", "can opener", "a can opener"), Verdict::False);
        assert_eq!(score("can opener", "pen", "a can opener"), Verdict::True);
        assert_eq!(score("dog", "cat", "a cat and a dog"), Verdict::Double);
        assert_eq!(score("tv", "cat", "TELEVISION"), Verdict::True);
        assert_eq!(score("Dog", "cat", "dog"), Verdict::Neither);
        let t = Tally::of([Verdict::True, Verdict::False, Verdict::Double]);
        assert_eq!(t.accuracy(), Some(0.5));
        assert_eq!(Tally::of([Verdict::Neither]).accuracy(), None);
    }
}
