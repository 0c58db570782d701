//! Dense features for the stages that read them ([`atlas_stagekit::stage::Stage::dense`]):
//! which features a (model, stage) pair means ([`DenseSpec`], decided at plan time from the
//! model's config), computing the missing ones, and reading them back for a job.

use atlas_artifacts::kinds;
use atlas_embed::{DenseEncoder, EmbedOptions, EmbedReport};
use atlas_models::DenseLayer;
use atlas_preprocess::{PreprocessConfig, ResizeMode};
use atlas_stagekit::stage::{DenseRequest, DenseSet};
use atlas_store::{ManifestMeta, Store};
use serde_json::json;

use crate::PipelineError;
use crate::datasets::ResolvedDataset;
use crate::models::{LoadedNet, ResolvedModel};

/// The dense features one model gives one stage.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseSpec {
    /// The dense-features namespace (`keys::dense_namespace`).
    pub namespace: String,
    /// The resolved intermediate index.
    pub index: usize,
    pub tower: &'static str,
    pub image_size: u32,
    /// The model's preprocessing, squashed to `image_size` square (no crop: every pixel of
    /// the image keeps its place, so annotations scale with the image).
    pub preprocess: PreprocessConfig,
}

/// The features `req` asks of `model`: `None` when its tower has none (the model is left out
/// of the stage); an error when the layer or size does not fit the tower.
pub fn dense_spec(
    model: &ResolvedModel,
    req: &DenseRequest,
) -> Result<Option<DenseSpec>, PipelineError> {
    let Some(info) = model.dense else {
        return Ok(None);
    };
    let cnn = atlas_correspondence::is_cnn(info.tower);
    let layer_text = match (&req.cnn_layer, cnn) {
        (Some(l), true) => l.as_str(),
        _ => req.layer.as_str(),
    };
    let err = |e: String| {
        PipelineError::Config(format!(
            "model `{}` ({} image tower): dense features: {e}",
            model.name, info.tower
        ))
    };
    let layer: DenseLayer = layer_text.parse().map_err(|e| err(format!("{e}")))?;
    let index = info.index(layer).map_err(|e| err(e.to_string()))?;
    if req.image_size == 0 || !req.image_size.is_multiple_of(info.multiple) {
        return Err(err(format!(
            "image_size = {} is not a multiple of {} (the tower's stride); pick one that is, \
             e.g. {}",
            req.image_size,
            info.multiple,
            info.multiple * req.image_size.div_ceil(info.multiple).max(1)
        )));
    }
    let preprocess = PreprocessConfig {
        size: req.image_size,
        resize_mode: ResizeMode::Squash,
        resize_size: None,
        ..model.preprocess.clone()
    };
    let namespace = crate::keys::dense_namespace(
        &model.weights_hash,
        &preprocess,
        &model.precision,
        index as u64,
    );
    Ok(Some(DenseSpec {
        namespace,
        index,
        tower: info.tower,
        image_size: req.image_size,
        preprocess,
    }))
}

/// The burn model as the embed stage's dense encoder.
struct DenseNet<'a> {
    net: &'a LoadedNet,
    index: usize,
}

impl DenseEncoder for DenseNet<'_> {
    fn encode_dense(
        &self,
        px: &[f32],
        batch: usize,
        side: usize,
    ) -> Result<(Vec<f32>, [usize; 3]), String> {
        match self.net {
            LoadedNet::Clip(m) => {
                let f = m
                    .image_dense(px, batch, (side, side), DenseLayer::Index(self.index))
                    .map_err(|e| e.to_string())?;
                let [_, c, h, w] = f.shape;
                Ok((f.data, [c, h, w]))
            }
            LoadedNet::Classifier(m) => Err(format!(
                "{} is a supervised classifier: dense features are not implemented for it",
                m.arch
            )),
        }
    }
}

/// Computes what is missing of dataset `d`'s dense features, then writes the coverage marker.
pub fn embed(
    store: &Store,
    net: &LoadedNet,
    model: &ResolvedModel,
    spec: &DenseSpec,
    d: &ResolvedDataset,
    opts: &EmbedOptions,
) -> Result<EmbedReport, PipelineError> {
    let enc = DenseNet {
        net,
        index: spec.index,
    };
    let r = d.with_items(|src| {
        atlas_embed::embed_dense(store, &spec.namespace, &enc, &spec.preprocess, src, opts)
    })?;
    tracing::info!(model = %model.name, dataset = %d.name, layer = spec.index, embedded = r.embedded, cached = r.cached, failed = r.failed, "dense features");
    let meta = ManifestMeta::new("embed-coverage", atlas_embed::STAGE_VERSION).with_inputs(json!({
        "model": model.name, "dataset": d.name, "items": d.index.len(), "dense_layer": spec.index,
        "image_size": spec.image_size,
    }));
    let key = crate::keys::coverage_key(&spec.namespace, &d.items_key);
    let schema = arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new(
        "item_id",
        arrow::datatypes::DataType::Utf8,
        false,
    )]);
    let batch = arrow::array::RecordBatch::try_new(
        std::sync::Arc::new(schema),
        vec![std::sync::Arc::new(arrow::array::StringArray::from(
            d.index.ids.clone(),
        ))],
    )?;
    store.put(kinds::EMBED_COVERAGE, &key, meta, &[batch])?;
    Ok(r)
}

/// One dataset's maps as a job reads them.
pub struct DenseData {
    pub tower: &'static str,
    pub index: usize,
    pub image_size: u32,
    pub shape: [usize; 3],
    pub maps: Vec<Option<Vec<f32>>>,
}

impl DenseData {
    pub fn load(
        store: &Store,
        spec: &DenseSpec,
        d: &ResolvedDataset,
    ) -> Result<Self, PipelineError> {
        let (shape, maps) = atlas_embed::load_dense(store, &spec.namespace, &d.index.hashes)?;
        Ok(Self {
            tower: spec.tower,
            index: spec.index,
            image_size: spec.image_size,
            shape,
            maps,
        })
    }

    pub fn as_set(&self) -> DenseSet<'_> {
        DenseSet {
            tower: self.tower,
            layer: self.index,
            image_size: self.image_size,
            shape: self.shape,
            maps: &self.maps,
        }
    }
}
