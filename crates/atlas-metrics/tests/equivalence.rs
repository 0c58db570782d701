//! Restructured fast paths equal the straightforward ones they replace, bit for bit, on random
//! inputs (with ties, zero multiplicities and odd sizes).

use atlas_metrics::bootstrap::Rng;
use atlas_metrics::ood::RankedPool;
use atlas_metrics::ood_shared::SharedIdRanking;

fn uniform(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Scores with many ties (a few levels), signed zeros, or continuous values.
fn scores(rng: &mut Rng, n: usize, style: u64) -> Vec<f64> {
    (0..n)
        .map(|_| match style {
            0 => rng.below(6) as f64 * 0.25,
            1 => {
                let z = [0.0, -0.0, 1.0, -1.0];
                z[rng.below(4) as usize]
            }
            _ => uniform(rng) * 3.0 - 1.0,
        })
        .collect()
}

/// Multiplicities: a bootstrap-like draw, or sparse (mostly zero) ones.
fn counts(rng: &mut Rng, n: usize, sparse: bool) -> Vec<u16> {
    let mut c = vec![0u16; n];
    let draws = if sparse { 1 + n / 4 } else { n };
    for _ in 0..draws {
        c[rng.below(n as u64) as usize] += 1;
    }
    c
}

#[test]
fn shared_id_ranking_equals_ranked_pool_per_set() {
    let mut rng = Rng::seed_from_u64(11);
    let mut compared = 0;
    for case in 0..400u64 {
        let style = case % 3;
        let n_id = 1 + rng.below(if case % 5 == 0 { 3 } else { 120 }) as usize;
        let n_sets = 1 + rng.below(4) as usize;
        let id = scores(&mut rng, n_id, style);
        let oods: Vec<Vec<f64>> = (0..n_sets)
            .map(|_| {
                let n = 1 + rng.below(90) as usize;
                // Shifted down a little so the sets overlap the ID scores only partly.
                scores(&mut rng, n, (style + case / 3) % 3)
                    .into_iter()
                    .map(|s| if style == 1 { s } else { s - 0.3 })
                    .collect()
            })
            .collect();
        let refs: Vec<&[f64]> = oods.iter().map(Vec::as_slice).collect();
        for level in [0.95, 0.05, 0.3, 0.5, 0.8, 1.0] {
            let shared = SharedIdRanking::new(&id, &refs, level).unwrap();
            let pools: Vec<RankedPool> = oods
                .iter()
                .map(|o| RankedPool::new(&id, o).unwrap())
                .collect();
            for rep in 0..6 {
                let sparse = rep % 2 == 1;
                let c_id = if rep == 0 {
                    vec![1; n_id]
                } else {
                    counts(&mut rng, n_id, sparse)
                };
                let c_ood: Vec<Vec<u16>> = oods
                    .iter()
                    .map(|o| {
                        if rep == 0 {
                            vec![1; o.len()]
                        } else {
                            counts(&mut rng, o.len(), sparse)
                        }
                    })
                    .collect();
                let c_refs: Vec<&[u16]> = c_ood.iter().map(Vec::as_slice).collect();
                let mut got = vec![(0.0, 0.0); n_sets];
                let res = shared.replicate(&c_id, &c_refs, &mut got);
                let want: Vec<_> = pools
                    .iter()
                    .zip(&c_refs)
                    .map(|(p, c)| p.auroc_fpr(&c_id, c, level))
                    .collect();
                if want.iter().any(Result::is_err) {
                    assert!(res.is_err(), "case {case} rep {rep}: expected an error");
                    continue;
                }
                res.unwrap();
                for (j, w) in want.into_iter().enumerate() {
                    let (wa, wf) = w.unwrap();
                    let (ga, gf) = got[j];
                    assert_eq!(
                        (ga.to_bits(), gf.to_bits()),
                        (wa.to_bits(), wf.to_bits()),
                        "case {case} level {level} rep {rep} set {j}: got ({ga}, {gf}), want ({wa}, {wf})"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 5000, "only {compared} comparisons");
}

#[test]
fn shared_id_ranking_rejects_bad_input() {
    assert!(SharedIdRanking::new(&[], &[&[0.1]], 0.95).is_err());
    assert!(SharedIdRanking::new(&[0.1], &[&[]], 0.95).is_err());
    assert!(SharedIdRanking::new(&[0.1], &[&[f64::NAN]], 0.95).is_err());
    assert!(SharedIdRanking::new(&[0.1], &[&[0.2]], 0.0).is_err());
    let r = SharedIdRanking::new(&[0.1, 0.4], &[&[0.2]], 0.95).unwrap();
    let mut out = vec![(0.0, 0.0)];
    // No positive, no negative, wrong lengths.
    assert!(r.replicate(&[0, 0], &[&[1]], &mut out).is_err());
    assert!(r.replicate(&[1, 1], &[&[0]], &mut out).is_err());
    assert!(r.replicate(&[1], &[&[1]], &mut out).is_err());
}
