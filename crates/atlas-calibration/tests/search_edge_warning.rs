//! A fitted temperature at the edge of its search range is a `tracing` warning. (Its own test
//! binary: `tracing` caches per-callsite interest process-wide, so a test that emits the same
//! warning concurrently without a subscriber could hide the event from this one.)

use atlas_calibration::{Params, compute};
use atlas_stagekit::testing::{Owned, mixed, one_hot_head};

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Half of 80 confident predictions wrong (cosine 0.8 for the wrong class, 0.6 for the right
/// one, logit scale 100): the NLL optimum lies far above T = 10.
#[test]
fn temperature_at_the_search_edge_is_a_warning() {
    let labels: Vec<i64> = (0..80).map(|i| i % 4).collect();
    let rows = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let (l, other) = (l as usize, (l as usize + 1) % 4);
            if i % 2 == 0 {
                mixed(4, &[(l, 0.8), (other, 0.6)])
            } else {
                mixed(4, &[(other, 0.8), (l, 0.6)])
            }
        })
        .collect();
    let o = Owned::new(one_hot_head(4), labels, rows);
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let p = Params {
        bootstrap: 10,
        ..Params::default()
    };
    let out = tracing::subscriber::with_default(subscriber, || {
        compute(&o.set("m", "val", "id", None), None, &[], &p).unwrap()
    });
    assert_eq!(out.temperature.temperature, 10.0);
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("upper end of its search range [0.5, 10]"),
        "{text}"
    );
    assert!(text.contains("search = { lower"), "{text}");
}
