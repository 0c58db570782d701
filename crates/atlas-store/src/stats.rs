//! Counts of the data files a [`crate::Store`] handle has read, per kind and namespace: the
//! evidence that a no-op rerun reads no embedding shard, and that adding a model reads no other
//! model's shards (the run summary prints them).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// `(kind, namespace or "")` -> (data files read, bytes read).
pub type ReadCounts = BTreeMap<(String, String), (u64, u64)>;

/// Files and bytes read per artifact kind and namespace.
#[derive(Debug, Default)]
pub struct ReadStats {
    counts: Mutex<ReadCounts>,
}

impl ReadStats {
    pub(crate) fn record(&self, kind: &str, namespace: Option<&str>, bytes: usize) {
        if let Ok(mut m) = self.counts.lock() {
            let e = m
                .entry((kind.to_string(), namespace.unwrap_or_default().to_string()))
                .or_default();
            e.0 += 1;
            e.1 += bytes as u64;
        }
    }

    /// Everything read since the store was opened.
    pub fn snapshot(&self) -> ReadCounts {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }
}
