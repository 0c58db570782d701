//! Every artifact key of a run, built here and nowhere else.
//!
//! A key is a blake3 over typed, named fields ([`atlas_store::KeyBuilder`]); it must cover
//! everything that determines the artifact, so a changed input is a new key (a cache miss) and an
//! unchanged one is the old key (a hit). ARCHITECTURE.md's "Cache keys" table lists the fields of
//! each key; `tests/keys_doc.rs` checks it against [`catalog`].
//!
//! Store-internal keys are not built here: embedding shards are keyed by the store from their
//! namespace and item hashes (`Store::put_shard`).

use atlas_preprocess::PreprocessConfig;
use atlas_store::{ArtifactKey, KeyBuilder};

/// A key under construction that also records its field names (for [`catalog`]).
#[derive(Clone)]
struct Fields {
    kb: KeyBuilder,
    names: Vec<&'static str>,
}

impl Fields {
    fn new() -> Self {
        Self {
            kb: KeyBuilder::new(),
            names: Vec::new(),
        }
    }
    fn note(mut self, name: &'static str) -> Self {
        if !self.names.contains(&name) {
            self.names.push(name);
        }
        self
    }
    fn s(self, name: &'static str, v: &str) -> Self {
        let mut f = self.note(name);
        f.kb = f.kb.field(name, v);
        f
    }
    fn b(self, name: &'static str, v: &[u8]) -> Self {
        let mut f = self.note(name);
        f.kb = f.kb.field_bytes(name, v);
        f
    }
    fn k(self, name: &'static str, v: &ArtifactKey) -> Self {
        self.b(name, v.as_bytes())
    }
    fn u(self, name: &'static str, v: u64) -> Self {
        let mut f = self.note(name);
        f.kb = f.kb.field_u64(name, v);
        f
    }
    fn t(self, name: &'static str, v: bool) -> Self {
        let mut f = self.note(name);
        f.kb = f.kb.field_bool(name, v);
        f
    }
    fn finish(&self) -> ArtifactKey {
        self.kb.finish()
    }
}

// --- embeddings ------------------------------------------------------------------------------

fn image_namespace_fields(weights: &[u8; 32], pre: &PreprocessConfig, precision: &str) -> Fields {
    Fields::new()
        .s("stage", "embed-image")
        .s("stage_version", atlas_embed::STAGE_VERSION)
        .b("weights", weights)
        .b("preprocess", &pre.key_bytes())
        .s("precision", precision)
}

/// The embedding space of images (hex): model weights, preprocessing and precision. Shards of
/// per-item rows live in this namespace, keyed by image-bytes hash.
pub fn image_namespace(weights: &[u8; 32], pre: &PreprocessConfig, precision: &str) -> String {
    image_namespace_fields(weights, pre, precision)
        .finish()
        .to_hex()
}

fn dense_namespace_fields(
    weights: &[u8; 32],
    pre: &PreprocessConfig,
    precision: &str,
    layer: u64,
) -> Fields {
    Fields::new()
        .s("stage", "embed-dense")
        .s("stage_version", atlas_embed::STAGE_VERSION)
        .b("weights", weights)
        .b("preprocess", &pre.key_bytes())
        .s("precision", precision)
        .u("layer", layer)
        .s("values", "f16")
}

/// The dense-feature space of images (hex): like [`image_namespace`] plus the layer (the
/// resolved open_clip intermediate index, `atlas_models::LoadedClip::dense_index`, so `last` and
/// its explicit index share features) and the stored value type (f16). Shards of per-item
/// `atlas_artifacts::DenseRows` live in this namespace, keyed by image-bytes hash.
pub fn dense_namespace(
    weights: &[u8; 32],
    pre: &PreprocessConfig,
    precision: &str,
    layer: u64,
) -> String {
    dense_namespace_fields(weights, pre, precision, layer)
        .finish()
        .to_hex()
}

fn text_namespace_fields(weights: &[u8; 32], tokenizer: &[u8; 32], precision: &str) -> Fields {
    Fields::new()
        .s("stage", "embed-text")
        .s("stage_version", atlas_embed::STAGE_VERSION)
        .b("weights", weights)
        .b("tokenizer", tokenizer)
        .s("precision", precision)
}

/// The embedding space of prompts (hex): model weights, tokenizer identity and precision.
pub fn text_namespace(weights: &[u8; 32], tokenizer: &[u8; 32], precision: &str) -> String {
    text_namespace_fields(weights, tokenizer, precision)
        .finish()
        .to_hex()
}

fn classifier_namespace_fields(weights: &[u8; 32], head: &[u8; 32], raw_input: bool) -> Fields {
    Fields::new()
        .s("stage", "classifier-head")
        .b("weights", weights)
        .b("head", head)
        .t("raw_input", raw_input)
}

/// Where a supervised classifier's heads live (hex), in place of a text namespace: model
/// weights, the head file's bytes and what the head reads.
pub fn classifier_namespace(weights: &[u8; 32], head: &[u8; 32], raw_input: bool) -> String {
    classifier_namespace_fields(weights, head, raw_input)
        .finish()
        .to_hex()
}

/// Version of the coverage marker's content (2: it lists the dataset's failed items).
const COVERAGE_FORMAT: u64 = 2;

fn coverage_fields(namespace: &str, items: &[u8; 32]) -> Fields {
    Fields::new()
        .s("stage", "embed-coverage")
        .s("stage_version", atlas_embed::STAGE_VERSION)
        .u("format", COVERAGE_FORMAT)
        .s("namespace", namespace)
        .b("items", items)
}

/// Marks that every item of a dataset (by content key) is embedded in a namespace, and lists the
/// items that failed: a no-op rerun decides "nothing to do" and reports errors from it alone.
pub fn coverage_key(namespace: &str, items: &[u8; 32]) -> ArtifactKey {
    coverage_fields(namespace, items).finish()
}

// --- zero-shot -----------------------------------------------------------------------------

fn head_fields(text_namespace: &str, classnames: &[String], templates: &[String]) -> Fields {
    let mut f = Fields::new()
        .s("stage", "zeroshot-head")
        .s("stage_version", atlas_embed::STAGE_VERSION)
        .s("text_namespace", text_namespace)
        .u("classes", classnames.len() as u64);
    for c in classnames {
        f = f.s("class", c);
    }
    for t in templates {
        f = f.s("template", t);
    }
    f
}

/// A zero-shot head: the text namespace, class names and templates.
pub fn head_key(text_namespace: &str, classnames: &[String], templates: &[String]) -> ArtifactKey {
    head_fields(text_namespace, classnames, templates).finish()
}

/// What a zero-shot evaluation depends on besides the image namespace and items.
pub struct ZeroShotInputs<'a> {
    pub head: ArtifactKey,
    /// `checkpoint` or `fixed:<v>`.
    pub logit_scale: &'a str,
    pub class_subset: Option<&'a str>,
    /// ObjectNet-style protocol, when the dataset has one.
    pub protocol: Option<&'a str>,
}

fn zeroshot_fields(image_namespace: &str, items: &[u8; 32], z: &ZeroShotInputs<'_>) -> Fields {
    let f = Fields::new()
        .s("stage", "zeroshot")
        .s("stage_version", atlas_zeroshot::STAGE_VERSION)
        .s("image_namespace", image_namespace)
        .b("items", items)
        .k("head", &z.head)
        .s("logit_scale", z.logit_scale)
        .s("class_subset", z.class_subset.unwrap_or(""));
    // Only datasets with a protocol (ObjectNet) carry the field.
    match z.protocol {
        Some(p) => f.s("protocol", p),
        None => f,
    }
}

/// Zero-shot predictions of a model on a dataset.
pub fn zeroshot_key(
    image_namespace: &str,
    items: &[u8; 32],
    z: &ZeroShotInputs<'_>,
) -> ArtifactKey {
    zeroshot_fields(image_namespace, items, z).finish()
}

// --- metric stages -------------------------------------------------------------------------

/// What every job of one stage (under one prompt set) shares.
pub struct StageBase<'a> {
    pub stage: &'a str,
    pub version: &'a str,
    /// The typed parameters with defaults filled in (compact JSON).
    pub params: &'a str,
    /// blake3 of each file the parameters point at (a folder: its files in name order).
    pub files: &'a [[u8; 32]],
    pub logit_scale: &'a str,
    pub bootstrap: u64,
    pub seed: u64,
    /// How intervals are read from the resamples (`BootstrapConfig::method_key`: `percentile`,
    /// or `bca` with its jackknife group limit).
    pub ci_method: &'a str,
    pub prompt_set: Option<&'a str>,
}

fn base_fields(b: &StageBase<'_>, step: &str) -> Fields {
    let mut f = Fields::new()
        .s("stage", b.stage)
        .s("stage_version", b.version)
        .s("step", step)
        .s("table_columns", "prompts/1")
        .s("params", b.params);
    for h in b.files {
        f = f.b("file", h);
    }
    let f = f
        .s("logit_scale", b.logit_scale)
        .u("bootstrap", b.bootstrap)
        .u("seed", b.seed)
        .s("ci_method", b.ci_method);
    match b.prompt_set {
        Some(p) => f.s("prompt_set", p),
        None => f,
    }
}

/// One dataset as a metric job reads it.
pub struct DatasetInput<'a> {
    pub name: &'a str,
    pub items: &'a [u8; 32],
    /// The zero-shot head it reads (None for stages without heads).
    pub head: Option<ArtifactKey>,
    pub class_subset: Option<&'a str>,
    pub protocol: Option<&'a str>,
}

fn model_fields(
    b: &StageBase<'_>,
    step: &str,
    model: &str,
    image_namespace: &str,
    text_namespace: &str,
    sets: &[DatasetInput<'_>],
    answers: &[(&str, ArtifactKey)],
) -> Fields {
    let mut f = base_fields(b, step)
        .s("model", model)
        .s("image_namespace", image_namespace)
        .s("text_namespace", text_namespace);
    for d in sets {
        f = f
            .s("dataset", d.name)
            .b("items", d.items)
            .b("head", d.head.as_ref().map_or(&[][..], |k| k.as_bytes()))
            .s("class_subset", d.class_subset.unwrap_or(""))
            .s("protocol", d.protocol.unwrap_or(""));
    }
    // A stage that reads LMM answers: each answers chunk it reads, with its LMM.
    for (lmm, key) in answers {
        f = f.s("lmm", lmm).k("answers", key);
    }
    f
}

/// A stage's job for one model: its tables (per-model stage) or its summary (cross-model
/// stage; `summary = true`).
pub fn model_job_key(
    b: &StageBase<'_>,
    summary: bool,
    model: &str,
    image_namespace: &str,
    text_namespace: &str,
    sets: &[DatasetInput<'_>],
    answers: &[(&str, ArtifactKey)],
) -> ArtifactKey {
    let step = if summary { "summary" } else { "model" };
    model_fields(
        b,
        step,
        model,
        image_namespace,
        text_namespace,
        sets,
        answers,
    )
    .finish()
}

/// Bump when the same inputs would give other `lmm-answers` rows.
pub const ANSWERS_VERSION: &str = "1";

/// What one chunk of an LMM's answers depends on.
pub struct AnswersInputs<'a> {
    /// The LMM: `llava weights=<blake3 of the folder's files>` in process, or the endpoint's
    /// chat URL and model id.
    pub backend: &'a str,
    /// The conversation template the question is wrapped in (`llava_v1`, or `openai-chat` for
    /// an endpoint, which applies its own).
    pub template: &'a str,
    /// Generation parameters (`max_new_tokens`, greedy or temperature and seed).
    pub generation: &'a str,
    /// The surrogate's zero-shot predictions key: the questions' distractors and class names.
    pub predictions: &'a ArtifactKey,
    /// The blake3 of each image of the chunk, in order.
    pub images: &'a [[u8; 32]],
}

fn answers_fields(a: &AnswersInputs<'_>) -> Fields {
    let mut f = Fields::new()
        .s("stage", "lmm-answers")
        .s("stage_version", ANSWERS_VERSION)
        .s("backend", a.backend)
        .s("template", a.template)
        .s(
            "question",
            &atlas_metrics::imagenet_d::question("{gt}", "{distractor}"),
        )
        .s("generation", a.generation)
        .k("predictions", a.predictions);
    for h in a.images {
        f = f.b("image", h);
    }
    f
}

pub fn answers_key(a: &AnswersInputs<'_>) -> ArtifactKey {
    answers_fields(a).finish()
}

fn fit_fields(b: &StageBase<'_>, models: &[(&str, bool, ArtifactKey)]) -> Fields {
    let mut f = base_fields(b, "fit");
    for (name, baseline, summary) in models {
        f = f
            .s("model", name)
            .t("baseline", *baseline)
            .k("summary", summary);
    }
    f
}

/// A cross-model stage's fit: every model's name, baseline flag and summary key, in order.
pub fn fit_key(b: &StageBase<'_>, models: &[(&str, bool, ArtifactKey)]) -> ArtifactKey {
    fit_fields(b, models).finish()
}

/// blake3 of a file, or of a folder's files (relative name and bytes, in name order).
pub fn file_hash(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if path.is_dir() {
        let mut files = Vec::new();
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        for p in files {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            h.update(name.unwrap_or_default().as_bytes());
            h.update(&std::fs::read(&p)?);
        }
    } else {
        h.update(&std::fs::read(path)?);
    }
    Ok(*h.finalize().as_bytes())
}

/// Each key's field names, in first-use order, with its store kind: the source of truth that
/// ARCHITECTURE.md's key table is checked against.
pub fn catalog() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    use atlas_artifacts::kinds;
    let h = [0u8; 32];
    let pre = PreprocessConfig::default();
    let base = StageBase {
        stage: "s",
        version: "1",
        params: "{}",
        files: &[h],
        logit_scale: "checkpoint",
        bootstrap: 1,
        seed: 0,
        ci_method: "bca",
        prompt_set: Some("p"),
    };
    let set = DatasetInput {
        name: "d",
        items: &h,
        head: None,
        class_subset: None,
        protocol: None,
    };
    let z = ZeroShotInputs {
        head: ArtifactKey(h),
        logit_scale: "checkpoint",
        class_subset: None,
        protocol: Some("p"),
    };
    vec![
        (
            "image embeddings namespace",
            kinds::IMAGE_EMBEDDINGS,
            image_namespace_fields(&h, &pre, "f32").names,
        ),
        (
            "dense features namespace",
            kinds::DENSE_FEATURES,
            dense_namespace_fields(&h, &pre, "f32", 0).names,
        ),
        (
            "text embeddings namespace",
            kinds::TEXT_EMBEDDINGS,
            text_namespace_fields(&h, &h, "f32").names,
        ),
        (
            "classifier head namespace",
            kinds::ZEROSHOT_HEAD,
            classifier_namespace_fields(&h, &h, false).names,
        ),
        (
            "coverage marker",
            kinds::EMBED_COVERAGE,
            coverage_fields("ns", &h).names,
        ),
        (
            "zero-shot head",
            kinds::ZEROSHOT_HEAD,
            head_fields("ns", &["c".into()], &["t".into()]).names,
        ),
        (
            "zero-shot predictions",
            kinds::ZEROSHOT,
            zeroshot_fields("ns", &h, &z).names,
        ),
        (
            "metric stage job (per model)",
            "stage-<name>, summary-<name>, table-<table>",
            model_fields(
                &base,
                "model",
                "m",
                "i",
                "t",
                &[set],
                &[("l", ArtifactKey(h))],
            )
            .names,
        ),
        (
            "LMM answers chunk",
            kinds::LMM_ANSWERS,
            answers_fields(&AnswersInputs {
                backend: "b",
                template: "t",
                generation: "g",
                predictions: &ArtifactKey(h),
                images: &[h],
            })
            .names,
        ),
        (
            "metric stage fit (cross-model)",
            "stage-<name>, table-<table>",
            fit_fields(&base, &[("m", true, ArtifactKey(h))]).names,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_namespace_covers_layer_precision_weights_and_differs_from_embeddings() {
        let (w, pre) = ([1u8; 32], PreprocessConfig::default());
        let base = dense_namespace(&w, &pre, "f32", 11);
        assert_eq!(base, dense_namespace(&w, &pre, "f32", 11));
        assert_ne!(base, dense_namespace(&w, &pre, "f32", 10));
        assert_ne!(base, dense_namespace(&w, &pre, "f16", 11));
        assert_ne!(base, dense_namespace(&[2u8; 32], &pre, "f32", 11));
        assert_ne!(base, image_namespace(&w, &pre, "f32"));
    }
}
