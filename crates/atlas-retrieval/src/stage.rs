//! The retrieval stage as a registered [`Stage`]: image <-> caption recall from the model's image
//! embeddings and the embeddings of each retrieval set's captions.

use atlas_artifacts::ItemIndex;
use atlas_stagekit::stage::{
    ModelData, NamedTable, Reads, Role, RunSettings, Stage, StageError, TextList,
};

use crate::{Captions, Params, STAGE_VERSION, captions_from_meta, compute};

/// `[stages.retrieval]`: R@K both ways on every retrieval set (reads no zero-shot head).
#[derive(Debug, Clone, Copy, Default)]
pub struct RetrievalStage;

impl Stage for RetrievalStage {
    type Params = Params;

    fn name(&self) -> &'static str {
        "retrieval"
    }

    fn report(&self) -> Vec<atlas_stagekit::report::Section> {
        crate::report::sections()
    }

    fn version(&self) -> &'static str {
        STAGE_VERSION
    }

    fn reads(&self) -> Reads {
        Reads {
            id_first: false,
            role: Role::Retrieval,
            heads: false,
        }
    }

    fn needs_text_tower(&self) -> bool {
        true
    }

    fn configure(&self, p: &mut Params, run: &RunSettings) {
        p.bootstrap = run.bootstrap;
        p.seed = run.seed;
        p.ci_method = run.ci_method;
    }

    fn texts(&self, p: &Params, index: &ItemIndex) -> Result<Option<TextList>, StageError> {
        let (texts, image) = captions_from_meta(index, &p.caption_column)?;
        Ok(Some(TextList { texts, image }))
    }

    fn run_model(&self, p: &Params, data: &ModelData<'_>) -> Result<Vec<NamedTable>, StageError> {
        let mut out = Vec::new();
        for s in &data.sets {
            let texts = s
                .texts
                .ok_or_else(|| format!("caption embeddings of `{}` missing", s.set.dataset))?;
            let caps = Captions {
                texts: &texts.list.texts,
                embeddings: texts.embeddings,
                image: &texts.list.image,
            };
            out.extend(compute(&s.set, &caps, p)?.to_batches()?);
        }
        Ok(out)
    }
}
