//! Human reference: model-vs-human's raw cue-conflict responses
//! (`raw-data/cue-conflict/cue-conflict_subject-XX_session_1.csv`: `subj, session, trial, rt,
//! object_response, category, condition, imagename`). Shape = `category`, texture = the part of
//! `imagename` after the last `-` (digits and extension removed). The same rule as for models:
//! trials with shape == texture are dropped, responses matching neither (including `na`) are
//! ignored, shape bias = shape / (shape + texture), pooled over all subjects' trials.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{ShapeBiasError, parse_stimulus_name};

/// Pooled and per-subject human shape bias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanShapeBias {
    pub n_subjects: usize,
    pub n_trials: usize,
    pub n_conflict: usize,
    pub shape_hits: usize,
    pub texture_hits: usize,
    /// `None` when no response matched shape or texture.
    pub shape_bias: Option<f64>,
    /// `(subject, shape bias)`, sorted by subject.
    pub per_subject: Vec<(String, Option<f64>)>,
}

fn err(s: String) -> ShapeBiasError {
    ShapeBiasError::Human(s)
}

/// Pool the given CSV texts (`(name for messages, contents)`).
pub fn human_shape_bias(files: &[(&str, &str)]) -> Result<HumanShapeBias, ShapeBiasError> {
    if files.is_empty() {
        return Err(err("no response files".into()));
    }
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut n_trials, mut n_conflict) = (0, 0);
    for (name, text) in files {
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let header = rd
            .headers()
            .map_err(|e| err(format!("{name}: {e}")))?
            .clone();
        let col = |c: &str| {
            header
                .iter()
                .position(|h| h.trim() == c)
                .ok_or_else(|| err(format!("{name}: no `{c}` column")))
        };
        let (cs, cr, cc, ci) = (
            col("subj")?,
            col("object_response")?,
            col("category")?,
            col("imagename")?,
        );
        for (i, rec) in rd.records().enumerate() {
            let rec = rec.map_err(|e| err(format!("{name} line {}: {e}", i + 2)))?;
            let get = |c: usize| rec.get(c).unwrap_or("").trim();
            n_trials += 1;
            let shape = get(cc);
            let Some(texture) = parse_stimulus_name(get(ci)).1 else {
                return Err(err(format!(
                    "{name} line {}: image name `{}` has no `-<texture>` part",
                    i + 2,
                    get(ci)
                )));
            };
            if shape == texture {
                continue;
            }
            n_conflict += 1;
            let e = per.entry(get(cs).to_string()).or_default();
            let resp = get(cr);
            e.0 += (resp == shape) as usize;
            e.1 += (resp == texture) as usize;
        }
    }
    let shape_hits = per.values().map(|e| e.0).sum::<usize>();
    let texture_hits = per.values().map(|e| e.1).sum::<usize>();
    let ratio = |s: usize, t: usize| (s + t > 0).then(|| s as f64 / (s + t) as f64);
    Ok(HumanShapeBias {
        n_subjects: per.len(),
        n_trials,
        n_conflict,
        shape_hits,
        texture_hits,
        shape_bias: ratio(shape_hits, texture_hits),
        per_subject: per
            .iter()
            .map(|(k, e)| (k.clone(), ratio(e.0, e.1)))
            .collect(),
    })
}

/// Read every `*.csv` in `dir` (sorted) and pool them.
pub fn load_human_responses(dir: &Path) -> Result<HumanShapeBias, ShapeBiasError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| err(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    paths.sort();
    let mut texts = Vec::new();
    for p in &paths {
        texts.push((
            p.display().to_string(),
            std::fs::read_to_string(p).map_err(|e| err(format!("{}: {e}", p.display())))?,
        ));
    }
    let refs: Vec<(&str, &str)> = texts
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    human_shape_bias(&refs)
}
