//! Caption views for contrastive training: each time a caption is drawn it may lose its colour
//! word, its pattern word, or gain a wrapper ("a photo of ...").
//!
//! Why: in the texture-correlated world the colour and pattern words predict the class 90% of
//! the time, so a text tower trained on the full captions can match images without reading the
//! shape noun at all (demo-zoo/v1 did exactly that: 25% zero-shot top-1 on `id-test` with
//! "a photo of a {c}." while matching captions of the right class 85% of the time). Web
//! alt-text does not always name colour and texture; dropping those words at random makes the
//! noun carry information on its own. The images, and so the texture shortcut of the image
//! tower, are unchanged.

use serde::{Deserialize, Serialize};

use crate::data::Rng;

/// Prefixes a wrapped caption gets (alt-text style; they share words with the world's prompt
/// templates, as web captions share words with CLIP's prompts).
pub const WRAPPERS: [&str; 3] = ["a photo of", "an image of", "a picture of"];

/// How captions are varied during contrastive training. All zero = the world's captions as
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CaptionViews {
    /// Probability that the colour word is dropped (independently of the pattern word).
    pub drop_color: f32,
    /// Probability that the pattern word is dropped.
    pub drop_pattern: f32,
    /// Probability that the caption is cut to its object words: count, style and noun ("two
    /// crosses", "an outline of a triangle"), dropping size, colour, pattern, background and the
    /// trailing clauses (alt-text that names only the object).
    #[serde(default)]
    pub object_only: f32,
    /// Probability that the caption is prefixed with one of [`WRAPPERS`].
    pub wrap: f32,
}

impl CaptionViews {
    /// No variation.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_identity(&self) -> bool {
        self.drop_color <= 0.0
            && self.drop_pattern <= 0.0
            && self.object_only <= 0.0
            && self.wrap <= 0.0
    }

    /// One random view of `caption`. Deterministic in the state of `rng`.
    pub fn view(&self, caption: &str, rng: &mut Rng) -> String {
        // Always draw the same number of values so the stream does not depend on the caption.
        let (dc, dp, w, k) = (unit(rng), unit(rng), unit(rng), rng.below(WRAPPERS.len()));
        let o = unit(rng);
        if self.is_identity() {
            return caption.to_string();
        }
        let object_only = o < self.object_only;
        let caption = if object_only {
            object_words(caption)
        } else {
            caption
        };
        let words: Vec<&str> = caption.split(' ').collect();
        let mut kept: Vec<&str> = Vec::with_capacity(words.len() + 3);
        for word in words {
            let bare = word.trim_end_matches(',');
            let dropped = ((object_only || dc < self.drop_color) && is_color(bare))
                || ((object_only || dp < self.drop_pattern) && is_pattern(bare))
                || (object_only && SIZES.contains(&bare));
            // Keep a word that carries the trailing comma of its clause.
            if !dropped || bare.len() != word.len() {
                kept.push(if dropped { "," } else { word });
            }
        }
        let mut text = fix_articles(&kept).replace(" ,", ",");
        if w < self.wrap {
            text = format!("{} {}", WRAPPERS[k], text);
        }
        text
    }
}

/// Size words of captions (`atlas_world::vocab::size_word`).
const SIZES: [&str; 3] = ["small", "medium", "large"];

/// The object phrase of a caption: everything before " on " (the background) and before the
/// first comma (occlusion, light).
fn object_words(caption: &str) -> &str {
    let end = [caption.find(" on "), caption.find(',')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(caption.len());
    &caption[..end]
}

fn unit(rng: &mut Rng) -> f32 {
    (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32
}

fn is_color(word: &str) -> bool {
    atlas_world::Color::OBJECT.iter().any(|c| c.name() == word)
}

fn is_pattern(word: &str) -> bool {
    atlas_world::Pattern::ALL
        .iter()
        .any(|p| p.adjective() == word)
}

/// Re-chooses "a" / "an" for the word that now follows each article.
fn fix_articles(words: &[&str]) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        if (*w == "a" || *w == "an")
            && let Some(next) = words.get(i + 1)
        {
            let vowel = matches!(next.chars().next(), Some('a' | 'e' | 'i' | 'o' | 'u'));
            out.push(if vowel { "an" } else { "a" });
        } else {
            out.push(w);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> CaptionViews {
        CaptionViews {
            drop_color: 1.0,
            drop_pattern: 1.0,
            object_only: 0.0,
            wrap: 0.0,
        }
    }

    #[test]
    fn drops_colour_and_pattern_and_fixes_articles() {
        let mut rng = Rng::new(0);
        assert_eq!(
            all().view("an orange dotted star on a plain background", &mut rng),
            "a star on a plain background"
        );
        assert_eq!(
            all().view("a yellow outline of a triangle, in dim light", &mut rng),
            "an outline of a triangle, in dim light"
        );
        assert_eq!(
            all().view("two small green gridded crosses", &mut rng),
            "two small crosses"
        );
    }

    #[test]
    fn identity_keeps_caption_and_wrap_prefixes() {
        let mut rng = Rng::new(1);
        let c = "a red solid circle on a plain background";
        assert_eq!(CaptionViews::none().view(c, &mut rng), c);
        let wrap = CaptionViews {
            wrap: 1.0,
            ..CaptionViews::none()
        };
        let v = wrap.view(c, &mut rng);
        assert!(WRAPPERS.iter().any(|w| v == format!("{w} {c}")), "{v}");
    }

    #[test]
    fn object_only_keeps_count_style_and_noun() {
        let v = CaptionViews {
            object_only: 1.0,
            ..CaptionViews::none()
        };
        let mut rng = Rng::new(2);
        assert_eq!(
            v.view(
                "two small green gridded crosses on a gradient background",
                &mut rng
            ),
            "two crosses"
        );
        assert_eq!(
            v.view(
                "a large yellow outline of a triangle, in dim light",
                &mut rng
            ),
            "an outline of a triangle"
        );
        assert_eq!(
            v.view("a pink wavy heart, partly hidden", &mut rng),
            "a heart"
        );
    }

    #[test]
    fn half_dropout_varies_and_is_seeded() {
        let v = CaptionViews {
            drop_color: 0.5,
            drop_pattern: 0.5,
            object_only: 0.0,
            wrap: 0.25,
        };
        let c = "a red solid circle";
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200).map(|_| v.view(c, &mut rng)).collect::<Vec<_>>()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        let full = a.iter().filter(|s| s.as_str() == c).count();
        let bare = a.iter().filter(|s| s.as_str() == "a circle").count();
        // Expected 200 * 0.25 * 0.75 = 37.5 each.
        assert!((15..70).contains(&full), "{full}");
        assert!((15..70).contains(&bare), "{bare}");
    }
}
