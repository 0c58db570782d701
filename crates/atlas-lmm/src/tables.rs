//! The stage's rows, their aggregation per category and split, and their Arrow tables.

use arrow::array::RecordBatch;
use atlas_metrics::bootstrap::bootstrap_counts_ci;
use atlas_stagekit::{Table, bootstrap_config};

use crate::{LmmError, LmmOutput, Params, Scored, indicators, tally};

/// One row of `lmm_items`.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRow {
    pub model: String,
    pub lmm: String,
    pub dataset: String,
    pub item_id: String,
    pub label: i64,
    pub category: String,
    pub top1: Option<i64>,
    pub top2: Option<i64>,
    pub distractor: Option<String>,
    pub question: Option<String>,
    pub answer: Option<String>,
    pub verdict: Option<String>,
    pub clip_correct: Option<bool>,
    pub error: Option<String>,
}

/// One row of `lmm_categories`.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryRow {
    pub model: String,
    pub lmm: String,
    pub dataset: String,
    pub label: i64,
    pub category: String,
    pub n: i64,
    pub n_clip: i64,
    pub clip_accuracy: Option<f64>,
    pub lmm_true: i64,
    pub lmm_false: i64,
    pub lmm_double: i64,
    pub lmm_neither: i64,
    pub failed: i64,
    pub lmm_accuracy: Option<f64>,
    pub gain: Option<f64>,
    /// Rank among the split's categories by CLIP accuracy (1 = worst; null without one).
    pub clip_rank: Option<i64>,
    pub worst: bool,
}

/// A value with its interval.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    pub value: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// One row of `lmm_summary`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryRow {
    pub model: String,
    pub lmm: String,
    pub dataset: String,
    pub n: i64,
    pub n_clip: i64,
    pub lmm_true: i64,
    pub lmm_false: i64,
    pub lmm_double: i64,
    pub lmm_neither: i64,
    pub failed: i64,
    pub lmm_accuracy: Estimate,
    pub clip_accuracy: Estimate,
    pub gain: Estimate,
    pub worst_k: i64,
    pub worst_categories: String,
    pub worst_n: i64,
    pub worst_lmm_accuracy: Estimate,
    pub worst_clip_accuracy: Estimate,
    pub worst_gain: Estimate,
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// The three statistics (LMM accuracy, CLIP accuracy, gain) of items weighted by `w`
/// (`ind`: the [`indicators`] of each item; `mask`: which items count).
fn stats(w: &[u16], ind: &[[f64; 4]], mask: &[bool]) -> [f64; 3] {
    let mut s = [0f64; 4];
    for ((&c, v), &m) in w.iter().zip(ind).zip(mask) {
        if m && c > 0 {
            for (acc, x) in s.iter_mut().zip(v) {
                *acc += c as f64 * x;
            }
        }
    }
    let lmm = ratio(s[2], s[2] + s[3]).unwrap_or(f64::NAN);
    let clip = ratio(s[1], s[0]).unwrap_or(f64::NAN);
    [lmm, clip, lmm - clip]
}

/// Point estimates and bootstrap intervals of the three statistics over `mask`.
fn estimates(ind: &[[f64; 4]], mask: &[bool], p: &Params) -> [Estimate; 3] {
    let ones = vec![1u16; ind.len()];
    let point = stats(&ones, ind, mask);
    let mut out = [Estimate::default(); 3];
    for (j, o) in out.iter_mut().enumerate() {
        o.value = point[j].is_finite().then_some(point[j]);
        if p.bootstrap == 0 || o.value.is_none() {
            continue;
        }
        let cfg = bootstrap_config(p.bootstrap, p.seed, p.ci_method);
        let ci = bootstrap_counts_ci(ind.len(), &cfg, 1, |w, v| {
            v[0] = stats(w, ind, mask)[j];
            Ok(())
        });
        if let Ok(ci) = ci
            && let Some(ci) = ci.first()
        {
            o.lower = Some(ci.lower);
            o.upper = Some(ci.upper);
        }
    }
    out
}

/// The category and summary rows of one (LMM, dataset).
pub(crate) fn aggregate(
    model: &str,
    lmm: &str,
    dataset: &str,
    names: &[String],
    scored: &[Scored],
    p: &Params,
    out: &mut LmmOutput,
) -> Result<(), LmmError> {
    let classes = names.len();
    let mut cats: Vec<CategoryRow> = Vec::new();
    for (c, name) in names.iter().enumerate().take(classes) {
        let of: Vec<&Scored> = scored.iter().filter(|s| s.label == c).collect();
        if of.is_empty() {
            continue;
        }
        let t = tally(of.iter().copied());
        let n_clip = of.iter().filter(|s| s.top1.is_some()).count();
        let correct = of.iter().filter(|s| s.top1 == Some(c)).count();
        let clip = ratio(correct as f64, n_clip as f64);
        let acc = t.accuracy();
        cats.push(CategoryRow {
            model: model.into(),
            lmm: lmm.into(),
            dataset: dataset.into(),
            label: c as i64,
            category: name.clone(),
            n: of.len() as i64,
            n_clip: n_clip as i64,
            clip_accuracy: clip,
            lmm_true: t.true_ as i64,
            lmm_false: t.false_ as i64,
            lmm_double: t.double as i64,
            lmm_neither: t.neither as i64,
            failed: (of.len() - t.total()) as i64,
            lmm_accuracy: acc,
            gain: acc.zip(clip).map(|(l, c)| l - c),
            clip_rank: None,
            worst: false,
        });
    }
    // CLIP's worst categories: lowest CLIP accuracy first, ties by class index.
    let mut order: Vec<usize> = (0..cats.len())
        .filter(|&i| cats[i].clip_accuracy.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (cats[a].clip_accuracy, cats[b].clip_accuracy);
        x.partial_cmp(&y)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(cats[a].label.cmp(&cats[b].label))
    });
    for (r, &i) in order.iter().enumerate() {
        cats[i].clip_rank = Some(r as i64 + 1);
        cats[i].worst = r < p.worst_k;
    }
    let worst_labels: Vec<usize> = order
        .iter()
        .take(p.worst_k)
        .map(|&i| cats[i].label as usize)
        .collect();
    let ind: Vec<[f64; 4]> = scored.iter().map(indicators).collect();
    let all = vec![true; scored.len()];
    let in_worst: Vec<bool> = scored
        .iter()
        .map(|s| worst_labels.contains(&s.label))
        .collect();
    let [lmm_all, clip_all, gain_all] = estimates(&ind, &all, p);
    let [lmm_w, clip_w, gain_w] = estimates(&ind, &in_worst, p);
    let t = tally(scored.iter());
    out.summary.push(SummaryRow {
        model: model.into(),
        lmm: lmm.into(),
        dataset: dataset.into(),
        n: scored.len() as i64,
        n_clip: scored.iter().filter(|s| s.top1.is_some()).count() as i64,
        lmm_true: t.true_ as i64,
        lmm_false: t.false_ as i64,
        lmm_double: t.double as i64,
        lmm_neither: t.neither as i64,
        failed: (scored.len() - t.total()) as i64,
        lmm_accuracy: lmm_all,
        clip_accuracy: clip_all,
        gain: gain_all,
        worst_k: p.worst_k as i64,
        worst_categories: order
            .iter()
            .take(p.worst_k)
            .map(|&i| cats[i].category.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        worst_n: in_worst.iter().filter(|w| **w).count() as i64,
        worst_lmm_accuracy: lmm_w,
        worst_clip_accuracy: clip_w,
        worst_gain: gain_w,
    });
    out.categories.extend(cats);
    Ok(())
}

pub(crate) fn items_batch(rows: &[ItemRow]) -> Result<RecordBatch, LmmError> {
    let s = |f: fn(&ItemRow) -> &str| rows.iter().map(f).map(String::from).collect::<Vec<_>>();
    let o = |f: fn(&ItemRow) -> &Option<String>| rows.iter().map(|r| f(r).clone()).collect();
    Ok(Table::default()
        .utf8("model", s(|r| r.model.as_str()))
        .utf8("lmm", s(|r| r.lmm.as_str()))
        .utf8("dataset", s(|r| r.dataset.as_str()))
        .utf8("item_id", s(|r| r.item_id.as_str()))
        .i64("label", rows.iter().map(|r| r.label))
        .utf8("category", s(|r| r.category.as_str()))
        .i64_opt("top1", rows.iter().map(|r| r.top1))
        .i64_opt("top2", rows.iter().map(|r| r.top2))
        .utf8_opt("distractor", o(|r| &r.distractor))
        .utf8_opt("question", o(|r| &r.question))
        .utf8_opt("answer", o(|r| &r.answer))
        .utf8_opt("verdict", o(|r| &r.verdict))
        .bool_opt("clip_correct", rows.iter().map(|r| r.clip_correct))
        .utf8_opt("error", o(|r| &r.error))
        .finish()?)
}

pub(crate) fn categories_batch(rows: &[CategoryRow]) -> Result<RecordBatch, LmmError> {
    let s = |f: fn(&CategoryRow) -> &str| rows.iter().map(f).map(String::from).collect::<Vec<_>>();
    let i = |f: fn(&CategoryRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let fo = |f: fn(&CategoryRow) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    Ok(Table::default()
        .utf8("model", s(|r| r.model.as_str()))
        .utf8("lmm", s(|r| r.lmm.as_str()))
        .utf8("dataset", s(|r| r.dataset.as_str()))
        .i64("label", i(|r| r.label))
        .utf8("category", s(|r| r.category.as_str()))
        .i64("n", i(|r| r.n))
        .i64("n_clip", i(|r| r.n_clip))
        .f64_opt("clip_accuracy", fo(|r| r.clip_accuracy))
        .i64("lmm_true", i(|r| r.lmm_true))
        .i64("lmm_false", i(|r| r.lmm_false))
        .i64("lmm_double", i(|r| r.lmm_double))
        .i64("lmm_neither", i(|r| r.lmm_neither))
        .i64("failed", i(|r| r.failed))
        .f64_opt("lmm_accuracy", fo(|r| r.lmm_accuracy))
        .f64_opt("gain", fo(|r| r.gain))
        .i64_opt("clip_rank", rows.iter().map(|r| r.clip_rank))
        .bool("worst", rows.iter().map(|r| r.worst))
        .finish()?)
}

pub(crate) fn summary_batch(rows: &[SummaryRow]) -> Result<RecordBatch, LmmError> {
    let s = |f: fn(&SummaryRow) -> &str| rows.iter().map(f).map(String::from).collect::<Vec<_>>();
    let i = |f: fn(&SummaryRow) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let mut t = Table::default()
        .utf8("model", s(|r| r.model.as_str()))
        .utf8("lmm", s(|r| r.lmm.as_str()))
        .utf8("dataset", s(|r| r.dataset.as_str()))
        .i64("n", i(|r| r.n))
        .i64("n_clip", i(|r| r.n_clip))
        .i64("lmm_true", i(|r| r.lmm_true))
        .i64("lmm_false", i(|r| r.lmm_false))
        .i64("lmm_double", i(|r| r.lmm_double))
        .i64("lmm_neither", i(|r| r.lmm_neither))
        .i64("failed", i(|r| r.failed));
    let est = |t: Table, name: &str, f: fn(&SummaryRow) -> Estimate| {
        let e: Vec<Estimate> = rows.iter().map(f).collect();
        t.f64_opt(name, e.iter().map(|e| e.value))
            .f64_opt(&format!("{name}_lower"), e.iter().map(|e| e.lower))
            .f64_opt(&format!("{name}_upper"), e.iter().map(|e| e.upper))
    };
    t = est(t, "lmm_accuracy", |r| r.lmm_accuracy);
    t = est(t, "clip_accuracy", |r| r.clip_accuracy);
    t = est(t, "gain", |r| r.gain);
    t = t
        .i64("worst_k", i(|r| r.worst_k))
        .utf8("worst_categories", s(|r| r.worst_categories.as_str()))
        .i64("worst_n", i(|r| r.worst_n));
    t = est(t, "worst_lmm_accuracy", |r| r.worst_lmm_accuracy);
    t = est(t, "worst_clip_accuracy", |r| r.worst_clip_accuracy);
    t = est(t, "worst_gain", |r| r.worst_gain);
    Ok(t.finish()?)
}
