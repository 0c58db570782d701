//! Entries: a model under a prompt set, the unit every plot draws one mark for, with its six
//! factor tags (the group-by choices), and its zero-shot ID accuracy.

use std::collections::HashMap;

use serde::Serialize;

use crate::frame::{Frame, Tables};

/// The six factors a page can group by: (column, label). `prompts` is the sixth.
pub const FACTORS: [(&str, &str); 6] = [
    ("architecture", "architecture"),
    ("training_data", "training data"),
    ("data_size", "data size"),
    ("fine_tuning", "fine-tuning"),
    ("loss", "loss"),
    ("prompts", "prompts"),
];

/// The factor the page and the standalone figures colour by at first (the study colours by
/// training source).
pub const DEFAULT_FACTOR: &str = "training_data";

/// Rows of these models are lines, not entries (`(baseline)` fit rows).
fn is_entry_model(m: &str) -> bool {
    !m.starts_with('(')
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    #[serde(rename = "m")]
    pub model: String,
    #[serde(rename = "p")]
    pub prompts: String,
    /// Values of [`FACTORS`], in that order (`unknown` when no table says).
    #[serde(rename = "t")]
    pub tags: Vec<String>,
    #[serde(rename = "b")]
    pub baseline: bool,
    #[serde(rename = "f")]
    pub fixture: bool,
    /// Items without an embedding, over the zero-shot rows (a warning badge when > 0).
    #[serde(rename = "x")]
    pub failed: i64,
}

impl Entry {
    /// `model [prompts]` (just the model without a prompt set).
    pub fn label(&self) -> String {
        if self.prompts.is_empty() {
            self.model.clone()
        } else {
            format!("{} [{}]", self.model, self.prompts)
        }
    }
}

/// A value with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ci {
    pub v: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// Every entry of the results, in order of first appearance (zero-shot first: config order).
#[derive(Debug, Clone, Default)]
pub struct Entries {
    pub list: Vec<Entry>,
    index: HashMap<(String, String), usize>,
    by_model: HashMap<String, Vec<usize>>,
    /// The run's first ID dataset, when `zeroshot.parquet` has one.
    pub id_dataset: Option<String>,
    id_acc: HashMap<usize, Ci>,
}

impl Entries {
    /// Collects entries from `zeroshot` and then every other named table with `model` and
    /// `prompts` columns; rows without a prompt set (retrieval) add a model only when no other
    /// row names it.
    pub fn collect(tables: &Tables, names: &[&str]) -> Self {
        let mut e = Entries::default();
        let mut order: Vec<&str> = vec!["zeroshot"];
        order.extend(names.iter().copied().filter(|n| *n != "zeroshot"));
        let mut promptless: Vec<(String, Vec<String>)> = Vec::new();
        for name in order {
            let Some(f) = tables.get(name) else { continue };
            for i in 0..f.rows {
                let Some(model) = f.str("model", i) else {
                    continue;
                };
                if !is_entry_model(model) {
                    continue;
                }
                let prompts = f.str("prompts", i).unwrap_or("");
                if prompts.is_empty() {
                    promptless.push((model.to_string(), tags_of(f, i, "")));
                    continue;
                }
                let at = e.add(model, prompts, tags_of(f, i, prompts));
                if name == "zeroshot" {
                    let ent = &mut e.list[at];
                    ent.baseline |= f.bool("baseline", i).unwrap_or(false);
                    ent.fixture |= f.bool("fixture", i).unwrap_or(false);
                    ent.failed += f.num("failed", i).unwrap_or(0.0) as i64;
                }
            }
        }
        for (model, tags) in promptless {
            if !e.by_model.contains_key(&model) {
                e.add(&model, "", tags);
            }
        }
        if let Some(zs) = tables.get("zeroshot") {
            e.read_id_accuracy(zs);
        }
        e
    }

    fn add(&mut self, model: &str, prompts: &str, tags: Vec<String>) -> usize {
        let key = (model.to_string(), prompts.to_string());
        if let Some(&i) = self.index.get(&key) {
            let ent = &mut self.list[i];
            for (t, new) in ent.tags.iter_mut().zip(tags) {
                if t == "unknown" && new != "unknown" {
                    *t = new;
                }
            }
            return i;
        }
        let i = self.list.len();
        self.list.push(Entry {
            model: model.to_string(),
            prompts: prompts.to_string(),
            tags,
            baseline: false,
            fixture: false,
            failed: 0,
        });
        self.index.insert(key, i);
        self.by_model.entry(model.to_string()).or_default().push(i);
        i
    }

    fn read_id_accuracy(&mut self, zs: &Frame) {
        for i in 0..zs.rows {
            if zs.str("role", i) != Some("id") {
                continue;
            }
            let Some(ds) = zs.str("dataset", i) else {
                continue;
            };
            let id = self.id_dataset.get_or_insert_with(|| ds.to_string());
            if id != ds {
                continue;
            }
            let Some(v) = zs.num("top1", i) else { continue };
            let ci = Ci {
                v,
                lo: zs.num("top1_lower", i),
                hi: zs.num("top1_upper", i),
            };
            for e in self.of_row(zs, i) {
                self.id_acc.insert(e, ci);
            }
        }
    }

    /// The entries a table row belongs to: its (model, prompts), or every prompt set of the
    /// model when the row has none.
    pub fn of_row(&self, f: &Frame, i: usize) -> Vec<usize> {
        let Some(model) = f.str("model", i) else {
            return Vec::new();
        };
        match f.str("prompts", i).filter(|p| !p.is_empty()) {
            Some(p) => self
                .index
                .get(&(model.to_string(), p.to_string()))
                .map(|&e| vec![e])
                .unwrap_or_default(),
            None => self.by_model.get(model).cloned().unwrap_or_default(),
        }
    }

    /// Zero-shot top-1 of entry `e` on the first ID dataset.
    pub fn id_accuracy(&self, e: usize) -> Option<Ci> {
        self.id_acc.get(&e).copied()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Group of each entry under `factor` (index into [`Entries::groups`]).
    pub fn groups(&self, factor: &str) -> (Vec<String>, Vec<usize>) {
        let col = FACTORS.iter().position(|(c, _)| *c == factor).unwrap_or(1);
        let mut names: Vec<String> = Vec::new();
        let of = self
            .list
            .iter()
            .map(|e| {
                let v = &e.tags[col];
                match names.iter().position(|n| n == v) {
                    Some(g) => g,
                    None => {
                        names.push(v.clone());
                        names.len() - 1
                    }
                }
            })
            .collect();
        (names, of)
    }
}

fn tags_of(f: &Frame, i: usize, prompts: &str) -> Vec<String> {
    FACTORS
        .iter()
        .map(|(c, _)| {
            if *c == "prompts" {
                return if prompts.is_empty() {
                    "none".to_string()
                } else {
                    prompts.to_string()
                };
            }
            f.str(c, i)
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string()
        })
        .collect()
}

/// The categorical palette of every plot (Tableau 10 plus two), cycled past its end; the page's
/// script uses the same list in the same order.
pub const PALETTE: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#1b9e77", "#7570b3",
];

pub fn colour(group: usize) -> &'static str {
    PALETTE[group % PALETTE.len()]
}
