//! Supervised ImageNet classifiers (timm hub directories, torchvision state dicts) as one
//! [`Classifier`] module over the [`crate::timm`] families, and the public loading API:
//! [`load_classifier`] -> [`LoadedClassifier`] with `encode_images` (pre-logits) and `logits`.

use std::path::{Path, PathBuf};

use crate::cpu::linear as linear_op;
use atlas_preprocess::PreprocessConfig;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;

use crate::checkpoint::{CheckpointParams, Layout, SafetensorsFile};
use crate::config::read_json;
use crate::device::{AttentionImpl, Precision, select_device_resolved};
use crate::error::{ModelError, Result};
use crate::load::LoadOptions;
use crate::params::{ParamVisitor, VarPath, check_materialised, to_host};
use crate::source::{CheckpointSource, HF_CONFIG, HF_WEIGHTS, ResolvedFiles};
use crate::timm::convnext::{ConvNeXt, ConvNeXtSpec, convnext_names};
use crate::timm::hub::{TimmHubConfig, torchvision_preprocess};
use crate::timm::layers::WeightShapes;
use crate::timm::resnet::{ResNetSpec, TimmResNet, resnet_names, torchvision_resnet_names};
use crate::timm::vit::{TimmVit, VIT_NAME_PATTERN, VitSpec};

/// `LoadOptions::arch_name` prefix of a torchvision state dict (`torchvision:resnet50`).
pub const TORCHVISION_PREFIX: &str = "torchvision:";
/// Prefix of timm architecture names (`timm:resnet50`).
pub const TIMM_PREFIX: &str = "timm:";

/// torchvision's ResNet eval preset: `Resize(256)` bilinear, `CenterCrop(224)`.
pub const TORCHVISION_RESIZE: u32 = 256;
pub const TORCHVISION_CROP: u32 = 224;

/// A classifier network.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Classifier {
    ResNet(TimmResNet),
    Vit(TimmVit),
    ConvNeXt(ConvNeXt),
}

impl Classifier {
    /// Pre-logits `[batch, num_features]` (timm `forward_head(pre_logits=True)`).
    pub fn forward_features(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self {
            Classifier::ResNet(m) => m.forward_features(pixels),
            Classifier::Vit(m) => m.forward_features(pixels),
            Classifier::ConvNeXt(m) => m.forward_pooled(pixels),
        }
    }

    /// The classification head (`fc`, `head`, `head.fc`); `None` for a 0-class model.
    pub fn head(&self) -> Option<&Linear> {
        match self {
            Classifier::ResNet(m) => m.fc.as_ref(),
            Classifier::Vit(m) => m.head.as_ref(),
            Classifier::ConvNeXt(m) => m.head_fc.as_ref(),
        }
    }

    /// The input side the model requires (ViT position embedding), `None` for conv nets.
    pub fn fixed_input_size(&self) -> Option<usize> {
        match self {
            Classifier::Vit(m) => Some(m.img_size),
            _ => None,
        }
    }
}

/// The shapes of a classifier, per family.
#[derive(Debug, Clone, PartialEq)]
pub enum ClassifierSpec {
    ResNet(ResNetSpec),
    Vit(VitSpec),
    ConvNeXt(ConvNeXtSpec),
}

impl ClassifierSpec {
    /// The spec of a timm hub config (its architecture + `model_args`).
    pub fn from_timm(cfg: &TimmHubConfig) -> Result<Self> {
        if let Some(s) = ResNetSpec::from_timm(cfg)? {
            return Ok(Self::ResNet(s));
        }
        if let Some(s) = VitSpec::from_timm(cfg)? {
            return Ok(Self::Vit(s));
        }
        if let Some(s) = ConvNeXtSpec::from_timm(cfg)? {
            return Ok(Self::ConvNeXt(s));
        }
        Err(unknown_arch(&format!("{TIMM_PREFIX}{}", cfg.architecture)))
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::ResNet(s) => s.num_classes,
            Self::Vit(s) => s.num_classes,
            Self::ConvNeXt(s) => s.num_classes,
        }
    }

    /// The key prefix of the classification head (`fc`, `head`, `head.fc`).
    pub fn head_key(&self) -> &'static str {
        match self {
            Self::ResNet(_) => "fc",
            Self::Vit(_) => "head",
            Self::ConvNeXt(_) => "head.fc",
        }
    }

    pub fn num_features(&self) -> usize {
        match self {
            Self::ResNet(s) => s.num_features(),
            Self::Vit(s) => s.dim,
            Self::ConvNeXt(s) => s.num_features(),
        }
    }

    /// Build the skeleton and run `visitor` over its keys (from the model root).
    pub(crate) fn build_with<V: ParamVisitor>(
        &self,
        attention: AttentionImpl,
        device: &Device,
        visitor: &mut V,
    ) -> Result<Classifier> {
        let root = VarPath::root();
        Ok(match self {
            Self::ResNet(s) => {
                Classifier::ResNet(TimmResNet::build(s, device).walk(&root, visitor)?)
            }
            Self::Vit(s) => {
                Classifier::Vit(TimmVit::build(s, attention, device).walk(&root, visitor)?)
            }
            Self::ConvNeXt(s) => {
                Classifier::ConvNeXt(ConvNeXt::build(s, device).walk(&root, visitor)?)
            }
        })
    }
}

/// Every accepted architecture name, for error messages.
pub fn accepted_architectures() -> String {
    let tv: Vec<String> = torchvision_resnet_names()
        .iter()
        .map(|n| format!("{TORCHVISION_PREFIX}{n}"))
        .collect();
    format!(
        "timm (hub config.json `architecture`): {}, {VIT_NAME_PATTERN}, {}; torchvision state \
         dicts (arch_name): {}",
        resnet_names().join(", "),
        convnext_names().join(", "),
        tv.join(", ")
    )
}

pub(crate) fn unknown_arch(name: &str) -> ModelError {
    ModelError::UnknownArchitecture {
        name: name.to_string(),
        accepted: accepted_architectures(),
    }
}

/// A classifier checkpoint, described.
#[derive(Debug, Clone)]
pub struct DescribedClassifier {
    /// The safetensors file holding the weights.
    pub weights: PathBuf,
    /// `timm:<architecture>` or `torchvision:<name>`.
    pub arch: String,
    pub spec: ClassifierSpec,
    /// The eval transform: timm's `pretrained_cfg`, or torchvision's preset.
    pub preprocess: PreprocessConfig,
}

/// The linear head stored in a classifier checkpoint, PyTorch layout.
#[derive(Debug, Clone)]
pub struct ClassifierHeadWeights {
    pub num_classes: usize,
    pub num_features: usize,
    /// `[num_classes, num_features]` row-major.
    pub weight: Vec<f32>,
    /// `[num_classes]` (zeros when the checkpoint has no bias).
    pub bias: Vec<f32>,
}

fn is_timm_config(path: &Path) -> bool {
    read_json(path)
        .ok()
        .as_ref()
        .and_then(Value::as_object)
        .is_some_and(|o| o.get("architecture").is_some_and(Value::is_string))
}

/// Whether `source` (with `opts.arch_name`) names a supervised classifier rather than a CLIP:
/// an architecture name with a `timm:` / `torchvision:` prefix, or a hub directory whose
/// `config.json` is timm's (it has an `architecture` string). Reads at most that JSON file.
pub fn is_classifier_source(source: &CheckpointSource, opts: &LoadOptions) -> Result<bool> {
    if let Some(a) = opts.arch_name.as_deref()
        && (a.starts_with(TIMM_PREFIX) || a.starts_with(TORCHVISION_PREFIX))
    {
        return Ok(true);
    }
    Ok(match source.resolve()? {
        ResolvedFiles::Hf { config, .. } => is_timm_config(&config),
        _ => false,
    })
}

/// Describe a classifier: a timm hub directory (`local-dir:`, `hf-hub:timm/...`, or its
/// `model.safetensors`) or a torchvision state dict (`.safetensors`, with
/// `opts.arch_name = "torchvision:resnet50"`).
pub fn describe_classifier(
    source: &CheckpointSource,
    opts: &LoadOptions,
) -> Result<DescribedClassifier> {
    let files = source.resolve()?;
    let src_err = |message: String| ModelError::Source {
        spec: source.to_string(),
        message,
    };
    let (weights, timm_cfg) = match files {
        ResolvedFiles::Hf {
            weights, config, ..
        } => (weights, Some(TimmHubConfig::read(&config)?)),
        ResolvedFiles::Bare { weights } => (weights, None),
        ResolvedFiles::OpenClip { weights, .. } => {
            // Some timm hub repos also ship open_clip files: use the timm pair beside them.
            let dir = weights.parent().unwrap_or(Path::new("."));
            let (w, c) = (dir.join(HF_WEIGHTS), dir.join(HF_CONFIG));
            if !(w.is_file() && c.is_file()) {
                return Err(src_err(
                    "an open_clip CLIP checkpoint, not a classifier: load it with `load`".into(),
                ));
            }
            let cfg = TimmHubConfig::read(&c)?;
            (w, Some(cfg))
        }
    };
    let (arch, spec, preprocess) = match timm_cfg {
        Some(cfg) => {
            if let Some(name) = opts.arch_name.as_deref() {
                let bare = name.strip_prefix(TIMM_PREFIX).unwrap_or(name);
                if bare != cfg.architecture {
                    return Err(src_err(format!(
                        "arch_name `{name}` contradicts config.json architecture `{}`",
                        cfg.architecture
                    )));
                }
            }
            let spec = ClassifierSpec::from_timm(&cfg)?;
            let pre = cfg.preprocess()?;
            (format!("{TIMM_PREFIX}{}", cfg.architecture), spec, pre)
        }
        None => {
            let name = opts.arch_name.as_deref().ok_or_else(|| {
                src_err(format!(
                    "no config.json beside {}: pass an architecture name ({})",
                    weights.display(),
                    accepted_architectures()
                ))
            })?;
            let tv = name.strip_prefix(TORCHVISION_PREFIX).ok_or_else(|| {
                if name.starts_with(TIMM_PREFIX) {
                    src_err(format!(
                        "`{name}`: timm weights need their hub config.json (pretrained_cfg \
                         decides the preprocessing); load the hub directory"
                    ))
                } else {
                    unknown_arch(name)
                }
            })?;
            let file = SafetensorsFile::open(&weights)?;
            let shapes = WeightShapes::new(file.path(), file.normalised_shapes());
            let spec = ResNetSpec::infer(tv, &shapes)?.ok_or_else(|| unknown_arch(name))?;
            let pre = torchvision_preprocess(TORCHVISION_RESIZE, TORCHVISION_CROP);
            (name.to_string(), ClassifierSpec::ResNet(spec), pre)
        }
    };
    Ok(DescribedClassifier {
        weights,
        arch,
        spec,
        preprocess,
    })
}

impl DescribedClassifier {
    /// Reads the classification head from the weights (`fc`, `head`, `head.fc`); `None` for a
    /// model saved without one (`num_classes = 0`).
    pub fn read_head(&self) -> Result<Option<ClassifierHeadWeights>> {
        let (classes, features) = (self.spec.num_classes(), self.spec.num_features());
        if classes == 0 {
            return Ok(None);
        }
        let file = SafetensorsFile::open(&self.weights)?;
        let prefix = self.spec.head_key();
        let bad = |message: String| ModelError::Safetensors {
            path: self.weights.clone(),
            message,
        };
        let (wshape, weight) = file.read_f32(&format!("{prefix}.weight"))?;
        if wshape != [classes, features] {
            return Err(bad(format!(
                "`{prefix}.weight` has shape {wshape:?}, the architecture says [{classes}, \
                 {features}]"
            )));
        }
        let bias = if file.has(&format!("{prefix}.bias")) {
            let (bshape, bias) = file.read_f32(&format!("{prefix}.bias"))?;
            if bshape != [classes] {
                return Err(bad(format!(
                    "`{prefix}.bias` has shape {bshape:?}, expected [{classes}]"
                )));
            }
            bias
        } else {
            vec![0.0; classes]
        };
        Ok(Some(ClassifierHeadWeights {
            num_classes: classes,
            num_features: features,
            weight,
            bias,
        }))
    }
}

/// A loaded classifier, ready to embed and classify.
#[derive(Debug)]
pub struct LoadedClassifier {
    /// `timm:<architecture>` or `torchvision:<name>`.
    pub arch: String,
    /// The eval transform (timm `pretrained_cfg`, or torchvision's preset). Callers may
    /// replace it (e.g. another crop size for a conv net); `encode_images` uses its `size`.
    pub preprocess: PreprocessConfig,
    /// blake3 over the checkpoint's sorted (key, dtype, shape, bytes), as for CLIP models.
    pub weights_hash: [u8; 32],
    pub num_classes: usize,
    pub num_features: usize,
    /// `[num_classes, num_features]` row-major (PyTorch layout), f32.
    pub head_weight: Vec<f32>,
    /// `[num_classes]`.
    pub head_bias: Vec<f32>,
    pub precision: Precision,
    pub device: Device,
    pub model: Classifier,
    pub spec: ClassifierSpec,
}

/// Load a classifier: a timm hub directory (`local-dir:`, `hf-hub:timm/...`, or its
/// `model.safetensors`) or a torchvision state dict (`.safetensors`, with
/// `opts.arch_name = "torchvision:resnet50"`).
pub fn load_classifier(source: &CheckpointSource, opts: &LoadOptions) -> Result<LoadedClassifier> {
    let DescribedClassifier {
        weights,
        arch,
        spec,
        preprocess,
    } = describe_classifier(source, opts)?;
    let file = SafetensorsFile::open(&weights)?;
    let (device, kind) = select_device_resolved(opts.device, opts.precision)?;
    let attention = opts
        .attention
        .unwrap_or_else(|| AttentionImpl::default_for(kind));
    let weights_hash = file.weights_hash();
    let mut params = CheckpointParams::new(&file, Layout::OpenClip);
    let model = spec.build_with(attention, &device, &mut params)?;
    params.finish()?;
    check_materialised(&model)?;
    let (head_weight, head_bias) = match model.head() {
        Some(h) => head_host(h)?,
        None => (Vec::new(), Vec::new()),
    };
    Ok(LoadedClassifier {
        arch,
        preprocess,
        weights_hash,
        num_classes: spec.num_classes(),
        num_features: spec.num_features(),
        head_weight,
        head_bias,
        precision: opts.precision,
        device,
        model,
        spec,
    })
}

/// The head as PyTorch-layout host f32s (burn keeps `[in, out]`).
fn head_host(h: &Linear) -> Result<(Vec<f32>, Vec<f32>)> {
    let [d_in, d_out] = h.weight.dims();
    let w = to_host(h.weight.val())?;
    let mut t = vec![0f32; w.len()];
    for i in 0..d_in {
        for o in 0..d_out {
            t[o * d_in + i] = w[i * d_out + o];
        }
    }
    let b = match &h.bias {
        Some(b) => to_host(b.val())?,
        None => vec![0.0; d_out],
    };
    Ok((t, b))
}

impl LoadedClassifier {
    /// The side of the preprocessed (square) input.
    pub fn image_size(&self) -> u32 {
        self.preprocess.size
    }

    fn input(&self, pixels_nchw: &[f32], batch: usize, what: &str) -> Result<Tensor<4>> {
        let s = self.image_size() as usize;
        let want = batch * 3 * s * s;
        if pixels_nchw.len() != want || batch == 0 {
            return Err(ModelError::Input(format!(
                "{what}: got {} floats for batch {batch}, expected batch x 3 x {s} x {s} = {want} \
                 (preprocess at the model's image size, batch > 0)",
                pixels_nchw.len()
            )));
        }
        if let Some(fixed) = self.model.fixed_input_size()
            && fixed != s
        {
            return Err(ModelError::Input(format!(
                "{what}: {} needs {fixed} x {fixed} inputs, the preprocess size is {s}",
                self.arch
            )));
        }
        Ok(Tensor::from_data(
            TensorData::new(pixels_nchw.to_vec(), [batch, 3, s, s]),
            &self.device,
        ))
    }

    /// Pre-logits features `[batch, num_features]` (timm `forward_head(pre_logits=True)`).
    pub fn encode_images(&self, pixels_nchw: &[f32], batch: usize) -> Result<Vec<f32>> {
        let x = self.input(pixels_nchw, batch, "encode_images")?;
        to_host(self.model.forward_features(x))
    }

    /// Logits `[batch, num_classes]` = features @ head_weight^T + head_bias (on the device).
    pub fn logits(&self, pixels_nchw: &[f32], batch: usize) -> Result<Vec<f32>> {
        let head = self.model.head().ok_or_else(|| {
            ModelError::Input(format!("logits: {} has no classifier head", self.arch))
        })?;
        let x = self.input(pixels_nchw, batch, "logits")?;
        let f = self.model.forward_features(x);
        to_host(linear_op(
            f,
            head.weight.val(),
            head.bias.as_ref().map(|b| b.val()),
        ))
    }
}
