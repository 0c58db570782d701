//! Which MLP activation a (model, pretrained tag) pair was trained with (openclip-parity.md 5.6).
//!
//! The table below was read from open_clip 3.3.0's `pretrained.py` (`quick_gelu=True` entries and
//! the GELU tags of the same architectures). Running a QuickGELU checkpoint with GELU (or the
//! reverse) gives plausible but wrong embeddings, so the loader refuses contradictions.

use std::fmt;
use std::str::FromStr;

use burn::tensor::Tensor;
use burn::tensor::activation::{gelu, gelu_approximate, sigmoid};

use crate::error::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP and its derivatives).
    QuickGelu,
    /// Exact erf GELU (`torch.nn.GELU()`).
    Gelu,
    /// GELU with the tanh approximation (`nn.GELU(approximate='tanh')`, HF `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    /// `act(x)` with burn's ops (any device, autodiff included). The towers call
    /// `crate::cpu::activation`, which is this function in one SIMD pass on the CPU backend.
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::QuickGelu => x.clone() * sigmoid(x * 1.702),
            Activation::Gelu => gelu(x),
            Activation::GeluTanh => gelu_approximate(x),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::QuickGelu => "quick_gelu",
            Activation::Gelu => "gelu",
            Activation::GeluTanh => "gelu_tanh",
        }
    }

    /// From an HF `hidden_act` string.
    pub fn from_hf(act: &str) -> Option<Self> {
        match act {
            "quick_gelu" => Some(Self::QuickGelu),
            "gelu" => Some(Self::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Self::GeluTanh),
            _ => None,
        }
    }

    pub fn from_quick_gelu_flag(quick_gelu: bool) -> Self {
        if quick_gelu {
            Self::QuickGelu
        } else {
            Self::Gelu
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, ModelError> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "quick_gelu" | "quickgelu" => Ok(Self::QuickGelu),
            "gelu" => Ok(Self::Gelu),
            "gelu_tanh" | "gelu_pytorch_tanh" => Ok(Self::GeluTanh),
            _ => Err(ModelError::Parse {
                what: "activation",
                value: s.to_string(),
                expected: "quick_gelu, gelu, gelu_tanh",
            }),
        }
    }
}

/// (architecture, pretrained tag, trained with QuickGELU) from open_clip 3.3.0 `pretrained.py`.
const KNOWN_TAGS: &[(&str, &str, bool)] = &[
    ("RN50", "openai", true),
    ("RN50", "yfcc15m", true),
    ("RN50", "cc12m", true),
    ("RN101", "openai", true),
    ("RN101", "yfcc15m", true),
    ("RN50x4", "openai", true),
    ("RN50x16", "openai", true),
    ("RN50x64", "openai", true),
    ("ViT-B-32", "openai", true),
    ("ViT-B-32", "laion400m_e31", true),
    ("ViT-B-32", "laion400m_e32", true),
    ("ViT-B-32", "metaclip_400m", true),
    ("ViT-B-32", "metaclip_fullcc", true),
    ("ViT-B-32", "laion2b_e16", false),
    ("ViT-B-32", "laion2b_s34b_b79k", false),
    ("ViT-B-32", "datacomp_xl_s13b_b90k", false),
    ("ViT-B-32", "datacomp_m_s128m_b4k", false),
    ("ViT-B-32", "datacomp_s_s13m_b4k", false),
    ("ViT-B-32-256", "datacomp_s34b_b86k", false),
    ("ViT-B-16", "openai", true),
    ("ViT-B-16", "dfn2b", true),
    ("ViT-B-16", "metaclip_400m", true),
    ("ViT-B-16", "metaclip_fullcc", true),
    ("ViT-B-16", "laion400m_e31", false),
    ("ViT-B-16", "laion400m_e32", false),
    ("ViT-B-16", "laion2b_s34b_b88k", false),
    ("ViT-B-16", "datacomp_xl_s13b_b90k", false),
    ("ViT-B-16", "datacomp_l_s1b_b8k", false),
    ("ViT-L-14", "openai", true),
    ("ViT-L-14", "metaclip_400m", true),
    ("ViT-L-14", "metaclip_fullcc", true),
    ("ViT-L-14", "dfn2b", true),
    ("ViT-L-14", "dfn2b_s39b", false),
    ("ViT-L-14", "laion400m_e31", false),
    ("ViT-L-14", "laion400m_e32", false),
    ("ViT-L-14", "laion2b_s32b_b82k", false),
    ("ViT-L-14", "datacomp_xl_s13b_b90k", false),
    ("ViT-L-14-336", "openai", true),
    ("ViT-H-14", "metaclip_fullcc", true),
    ("ViT-H-14", "dfn5b", true),
    ("ViT-H-14", "laion2b_s32b_b79k", false),
    ("ViT-H-14", "metaclip_altogether", false),
    ("ViT-H-14-378", "dfn5b", true),
    ("ViT-H-14-worldwide", "metaclip2_worldwide", true),
    ("ViT-g-14", "laion2b_s12b_b42k", false),
    ("ViT-g-14", "laion2b_s34b_b88k", false),
    ("ViT-bigG-14", "metaclip_fullcc", true),
    ("ViT-bigG-14", "laion2b_s39b_b160k", false),
];

/// The architecture name without open_clip's `-quickgelu` alias suffix.
pub fn base_arch(arch: &str) -> &str {
    arch.strip_suffix("-quickgelu").unwrap_or(arch)
}

/// The activation a known (arch, tag) pair was trained with; `None` for pairs not in the table.
pub fn known_activation(arch: &str, pretrained_tag: &str) -> Option<Activation> {
    let arch = base_arch(arch);
    KNOWN_TAGS
        .iter()
        .find(|(a, t, _)| *a == arch && t.eq_ignore_ascii_case(pretrained_tag))
        .map(|&(_, _, quick)| Activation::from_quick_gelu_flag(quick))
}

/// The activation for a model: QuickGELU for the tags open_clip flags `quick_gelu=True` and for
/// `*-quickgelu` architecture aliases; GELU otherwise.
pub fn activation_for(arch: &str, pretrained_tag: Option<&str>) -> Activation {
    if let Some(act) = pretrained_tag.and_then(|tag| known_activation(arch, tag)) {
        return act;
    }
    if arch.ends_with("-quickgelu") {
        return Activation::QuickGelu;
    }
    Activation::Gelu
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry() {
        assert_eq!(
            activation_for("ViT-B-32", Some("openai")),
            Activation::QuickGelu
        );
        assert_eq!(
            activation_for("ViT-B-32", Some("laion2b_s34b_b79k")),
            Activation::Gelu
        );
        assert_eq!(
            activation_for("ViT-H-14", Some("dfn5b")),
            Activation::QuickGelu
        );
        assert_eq!(
            activation_for("ViT-L-14-quickgelu", Some("dfn2b")),
            Activation::QuickGelu
        );
        assert_eq!(
            activation_for("ViT-L-14", Some("dfn2b_s39b")),
            Activation::Gelu
        );
        assert_eq!(
            activation_for("ViT-B-32-quickgelu", None),
            Activation::QuickGelu
        );
        assert_eq!(activation_for("ViT-B-32", None), Activation::Gelu);
        assert_eq!(known_activation("ViT-B-32", "my_own_run"), None);
    }
}
