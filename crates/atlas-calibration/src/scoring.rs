//! Scoring a set over its label space: the head, a class subset's logits, the full head for a
//! class subset, or ObjectNet-style class groups (see the crate docs).

use atlas_artifacts::EvalSet;
use atlas_metrics::classification::{ClassGroups, GroupAggregation, Matrix};
use atlas_stagekit::{InputError, check_set, label_head, labelled, logits};
use serde::{Deserialize, Serialize};

use crate::CalibrationError;

/// A set to score and, for ObjectNet-style sets, the class groups that form its labels.
#[derive(Debug, Clone, Copy)]
pub struct LabelledSet<'a> {
    pub set: EvalSet<'a>,
    /// Group `g` (the dataset's label `g`) = head rows `groups[g]`; a group's logit is the max
    /// of its members'. `None`: labels are head rows (or class-subset positions).
    pub groups: Option<&'a ClassGroups>,
}

impl<'a> From<EvalSet<'a>> for LabelledSet<'a> {
    fn from(set: EvalSet<'a>) -> Self {
        Self { set, groups: None }
    }
}

/// The label space a set was scored over (see the crate docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelSpace {
    /// The head's classes are the labels.
    Head,
    /// A class subset's logits only.
    ClassSubset,
    /// The full head, subset labels mapped to head rows.
    FullHead,
    /// Class groups, group logit = max member logit.
    GroupsMax,
}

impl LabelSpace {
    pub fn name(self) -> &'static str {
        match self {
            LabelSpace::Head => "head",
            LabelSpace::ClassSubset => "class-subset",
            LabelSpace::FullHead => "full-head",
            LabelSpace::GroupsMax => "groups-max",
        }
    }
}

/// Logits and labels of a set's labelled, embedded items.
pub(crate) struct Scored {
    pub(crate) ids: Vec<String>,
    pub(crate) logits: Vec<f32>,
    pub(crate) labels: Vec<u32>,
    pub(crate) classes: usize,
    pub(crate) failed: usize,
    pub(crate) space: LabelSpace,
}

fn protocol_err(set: &EvalSet<'_>, reason: impl Into<String>) -> CalibrationError {
    CalibrationError::Protocol {
        dataset: set.dataset.into(),
        reason: reason.into(),
    }
}

pub(crate) fn score(s: &LabelledSet<'_>, subset_heads: bool) -> Result<Scored, CalibrationError> {
    let set = &s.set;
    check_set(set)?;
    let (classes, labels, rows, logits, failed, space) = match (s.groups, set.class_subset) {
        (Some(_), Some(_)) => {
            return Err(protocol_err(
                set,
                "give either a class subset or class groups, not both",
            ));
        }
        (Some(g), None) => {
            let head = set.head;
            if g.num_classes() != head.num_classes() {
                return Err(protocol_err(
                    set,
                    format!(
                        "class groups index a {}-class head, the set's head has {}",
                        g.num_classes(),
                        head.num_classes()
                    ),
                ));
            }
            let (rows, labels, failed) = labelled(set, g.len())?;
            let wide = logits(set, &rows, head)?;
            let mut out = Vec::with_capacity(rows.len() * g.len());
            let mut agg = vec![0f64; g.len()];
            for r in wide.chunks_exact(head.num_classes()) {
                g.aggregate_into(r, GroupAggregation::Max, &mut agg)?;
                // The max of f32 values is one of them: the cast back is exact.
                out.extend(agg.iter().map(|&v| v as f32));
            }
            (g.len(), labels, rows, out, failed, LabelSpace::GroupsMax)
        }
        (None, Some(subset)) if !subset_heads => {
            let head = set.head;
            let (rows, labels, failed) = labelled(set, subset.len())?;
            let labels = labels
                .iter()
                .map(|&k| {
                    let row = subset[k as usize];
                    if row < head.num_classes() {
                        Ok(row as u32)
                    } else {
                        Err(InputError::BadSubset {
                            dataset: set.dataset.into(),
                            index: row,
                            classes: head.num_classes(),
                        })
                    }
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let l = logits(set, &rows, head)?;
            (
                head.num_classes(),
                labels,
                rows,
                l,
                failed,
                LabelSpace::FullHead,
            )
        }
        (None, subset) => {
            let head = label_head(set)?;
            let classes = head.num_classes();
            let (rows, labels, failed) = labelled(set, classes)?;
            let l = logits(set, &rows, &head)?;
            let space = if subset.is_some() {
                LabelSpace::ClassSubset
            } else {
                LabelSpace::Head
            };
            (classes, labels, rows, l, failed, space)
        }
    };
    Ok(Scored {
        ids: rows.iter().map(|&i| set.index.ids[i].clone()).collect(),
        logits,
        labels,
        classes,
        failed,
        space,
    })
}

impl Scored {
    pub(crate) fn take(&self, pos: &[usize]) -> Scored {
        let c = self.classes;
        Scored {
            ids: pos.iter().map(|&p| self.ids[p].clone()).collect(),
            logits: pos
                .iter()
                .flat_map(|&p| self.logits[p * c..(p + 1) * c].iter().copied())
                .collect(),
            labels: pos.iter().map(|&p| self.labels[p]).collect(),
            classes: c,
            failed: self.failed,
            space: self.space,
        }
    }
    pub(crate) fn matrix(&self) -> Result<Matrix<'_>, CalibrationError> {
        Ok(Matrix::new(&self.logits, self.classes)?)
    }
}
