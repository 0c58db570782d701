//! Claims: how many workers share one store's work without a scheduler of their own.
//!
//! A *unit* of work (for the pipeline: one model's per-model jobs) is claimed by creating a claim
//! file exclusively; the file's modification time is the lease's heartbeat. Layout:
//!
//! ```text
//! <root>/.claims/<unit>/<generation:06>.json   {"worker", "host", "pid", "unit", "generation", "claimed_utc", "state"}
//! ```
//!
//! Invariants:
//! - **Create-exclusive with content.** A claim is written to a temp file and hard-linked to its
//!   name; `link` fails when the name exists, so of two workers racing for the same generation
//!   exactly one wins, and nobody ever reads a half-written claim (this is the classic lock-file
//!   protocol that also holds on NFS).
//! - **Leases expire.** The holder touches its claim every `lease / 4`
//!   ([`ClaimBoard::heartbeat`]). A claim untouched for longer than the lease belongs to a dead
//!   (or cut-off) worker: the next worker takes generation `g + 1`, again create-exclusive, so
//!   only one of them retakes it.
//! - **The store decides what is done, not the claims.** A worker asks the store whether a
//!   unit's artifacts exist before it claims; a claim only says who is computing. Two workers
//!   therefore compute the same unit only after a lease expired, and then both write the same
//!   content-addressed artifacts (the second commit replaces identical bytes).
//! - Finished claims stay (`state` `done` or `failed: ...`) for `status` to count per worker;
//!   they never block anyone: a unit whose artifacts are missing is claimable whatever its old
//!   claims say, except that a unit that failed [`MAX_FAILURES`] times is left alone.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::atomic::{TEMP_PREFIX, sync_dir, temp_path_for};
use crate::error::{Result, StoreError, io_err};
use crate::manifest::{format_utc_ms, now_unix_ms};
use crate::store::Store;

/// Directory of claims inside the store root (a dot name: never taken for an artifact kind).
pub const CLAIMS_DIR: &str = ".claims";

/// A unit that failed this many times (on any workers) is not claimed again by a worker: a
/// deterministic failure would otherwise be retried forever. A plain run retries it.
pub const MAX_FAILURES: usize = 2;

/// What a claim file holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClaimRecord {
    pub worker: String,
    pub host: String,
    pub pid: u32,
    pub unit: String,
    pub generation: u32,
    pub claimed_utc: String,
    /// The holder's lease in seconds: it renews the claim every quarter of it; a claim older
    /// than this is expired, whoever looks.
    pub lease_s: f64,
    /// `running`, `done` or `failed: <reason>`.
    pub state: String,
}

impl ClaimRecord {
    fn expired_at(&self, age: Duration) -> bool {
        self.state == "running" && age.as_secs_f64() > self.lease_s
    }
}

/// A claim as `status` sees it.
#[derive(Debug, Clone)]
pub struct ClaimInfo {
    pub record: ClaimRecord,
    /// Seconds since the last heartbeat.
    pub age_s: f64,
    /// `running` and its heartbeat older than the lease.
    pub expired: bool,
}

/// A held claim.
#[derive(Debug)]
pub struct Claim {
    pub unit: String,
    pub generation: u32,
    path: PathBuf,
    record: ClaimRecord,
}

impl Claim {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a unit could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// Another worker holds a live lease.
    HeldBy { worker: String, age_s: u64 },
    /// The unit failed [`MAX_FAILURES`] times; the last reason.
    Failed(String),
}

/// One worker's view of the claims of a store.
#[derive(Debug, Clone)]
pub struct ClaimBoard {
    dir: PathBuf,
    worker: String,
    lease: Duration,
}

impl Store {
    /// The claim board of this store for `worker` (a name unique among the run's workers, such
    /// as `slurm-<job>-<task>` or `host-pid`), with leases of `lease`.
    pub fn claims(&self, worker: &str, lease: Duration) -> Result<ClaimBoard> {
        if worker.is_empty()
            || worker.len() > 128
            || !worker
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c))
        {
            return Err(StoreError::InvalidKind {
                kind: worker.to_string(),
                reason: "a worker name is 1-128 characters of letters, digits and - _ . : @",
            });
        }
        let dir = self.root.join(CLAIMS_DIR);
        fs::create_dir_all(&dir).map_err(io_err("creating the claims directory", &dir))?;
        Ok(ClaimBoard {
            dir,
            worker: worker.to_string(),
            lease,
        })
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn age(path: &Path) -> Option<Duration> {
    let m = fs::metadata(path).ok()?.modified().ok()?;
    Some(
        SystemTime::now()
            .duration_since(m)
            .unwrap_or(Duration::ZERO),
    )
}

fn read_record(path: &Path) -> Option<ClaimRecord> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// A unit name as a directory name: the safe characters kept, the rest as `_`.
fn unit_dir_name(unit: &str) -> String {
    unit.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl ClaimBoard {
    pub fn worker(&self) -> &str {
        &self.worker
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn unit_dir(&self, unit: &str) -> PathBuf {
        self.dir.join(unit_dir_name(unit))
    }

    /// The claim files of a unit, by generation.
    fn generations(&self, unit: &str) -> Result<Vec<(u32, PathBuf)>> {
        let dir = self.unit_dir(unit);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io {
                    op: "listing claims in",
                    path: dir,
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(g) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u32>().ok())
            {
                out.push((g, e.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Tries to claim `unit`. Never waits: either this worker now holds the unit, or it is
    /// told who does.
    pub fn try_claim(&self, unit: &str) -> Result<std::result::Result<Claim, Busy>> {
        let gens = self.generations(unit)?;
        let failures: Vec<String> = gens
            .iter()
            .filter_map(|(_, p)| read_record(p))
            .filter_map(|r| r.state.strip_prefix("failed: ").map(String::from))
            .collect();
        if failures.len() >= MAX_FAILURES {
            return Ok(Err(Busy::Failed(
                failures.last().cloned().unwrap_or_default(),
            )));
        }
        let next = match gens.last() {
            None => 0,
            Some((g, path)) => {
                let rec = read_record(path);
                let a = age(path).unwrap_or(Duration::MAX);
                let running = rec.as_ref().is_none_or(|r| r.state == "running");
                let expired = rec.as_ref().map_or(a > self.lease, |r| r.expired_at(a));
                if running && !expired {
                    return Ok(Err(Busy::HeldBy {
                        worker: rec.map_or_else(|| "unknown".into(), |r| r.worker),
                        age_s: a.as_secs(),
                    }));
                }
                if running {
                    tracing::warn!(
                        unit,
                        generation = g,
                        age_s = a.as_secs(),
                        "a claim's lease expired (its worker died or lost the store): retaking it"
                    );
                }
                g + 1
            }
        };
        let record = ClaimRecord {
            worker: self.worker.clone(),
            host: host_name(),
            pid: std::process::id(),
            unit: unit.to_string(),
            generation: next,
            claimed_utc: format_utc_ms(now_unix_ms()),
            lease_s: self.lease.as_secs_f64(),
            state: "running".into(),
        };
        let dir = self.unit_dir(unit);
        fs::create_dir_all(&dir).map_err(io_err("creating the claim directory", &dir))?;
        let path = dir.join(format!("{next:06}.json"));
        let tmp = temp_path_for(&path);
        let body = serde_json::to_vec(&record).map_err(|source| StoreError::Manifest {
            path: path.clone(),
            source,
        })?;
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::Io {
                op: "writing a claim",
                path: tmp,
                source: e,
            });
        }
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                sync_dir(&dir)?;
                Ok(Ok(Claim {
                    unit: unit.to_string(),
                    generation: next,
                    path,
                    record,
                }))
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let rec = read_record(&path);
                Ok(Err(Busy::HeldBy {
                    worker: rec.map_or_else(|| "unknown".into(), |r| r.worker),
                    age_s: 0,
                }))
            }
            Err(e) => Err(StoreError::Io {
                op: "creating a claim (hard link)",
                path,
                source: e,
            }),
        }
    }

    /// Renews the lease. Returns false when a later generation exists (the lease had expired
    /// and another worker retook the unit): the caller may finish (its result is identical)
    /// but should not expect to be the only one computing.
    pub fn heartbeat(&self, claim: &Claim) -> Result<bool> {
        let f = OpenOptions::new()
            .write(true)
            .open(&claim.path)
            .map_err(io_err("opening a claim to renew it", &claim.path))?;
        f.set_modified(SystemTime::now())
            .map_err(io_err("renewing a claim", &claim.path))?;
        Ok(self
            .generations(&claim.unit)?
            .last()
            .is_none_or(|(g, _)| *g == claim.generation))
    }

    /// Records how the unit ended (`Ok`: done; `Err(reason)`: failed) in the claim file.
    pub fn finish(&self, claim: Claim, outcome: std::result::Result<(), String>) -> Result<()> {
        let mut record = claim.record;
        record.state = match outcome {
            Ok(()) => "done".into(),
            Err(why) => format!("failed: {why}"),
        };
        let body = serde_json::to_vec(&record).map_err(|source| StoreError::Manifest {
            path: claim.path.clone(),
            source,
        })?;
        crate::atomic::write_bytes_atomic(&claim.path, &body)
    }

    /// Every claim of the store, for `status`.
    pub fn list(&self) -> Result<Vec<ClaimInfo>> {
        list_claims(&self.dir)
    }
}

/// Every claim under `<root>/claims`, by unit and generation.
pub fn list_claims(dir: &Path) -> Result<Vec<ClaimInfo>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(StoreError::Io {
                op: "listing claims in",
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut units: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    units.sort();
    let mut out = Vec::new();
    for u in units {
        let Ok(files) = fs::read_dir(&u) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                n.is_some_and(|n| n.ends_with(".json") && !n.starts_with(TEMP_PREFIX))
            })
            .collect();
        files.sort();
        for f in files {
            let (Some(record), Some(a)) = (read_record(&f), age(&f)) else {
                continue;
            };
            let expired = record.expired_at(a);
            out.push(ClaimInfo {
                record,
                age_s: a.as_secs_f64(),
                expired,
            });
        }
    }
    Ok(out)
}

impl Store {
    /// Every claim of the store (see [`list_claims`]).
    pub fn list_claims(&self) -> Result<Vec<ClaimInfo>> {
        list_claims(&self.root.join(CLAIMS_DIR))
    }

    /// Removes every claim (a finished run's bookkeeping; `gc` calls it).
    pub fn clear_claims(&self) -> Result<()> {
        let dir = self.root.join(CLAIMS_DIR);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Io {
                op: "removing claims in",
                path: dir,
                source: e,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path().join("s")).unwrap();
        (d, s)
    }

    #[test]
    fn one_winner_then_busy_then_expiry_retakes_the_next_generation() {
        let (_d, s) = store();
        let a = s.claims("a", Duration::from_millis(50)).unwrap();
        let b = s.claims("b", Duration::from_secs(60)).unwrap();
        let ca = a.try_claim("model-x").unwrap().unwrap();
        assert_eq!(ca.generation, 0);
        match b.try_claim("model-x").unwrap() {
            Err(Busy::HeldBy { worker, .. }) => assert_eq!(worker, "a"),
            other => panic!("expected busy, got {other:?}"),
        }
        // a stops renewing (killed): its own lease runs out and b retakes generation 1.
        std::thread::sleep(Duration::from_millis(120));
        assert!(s.list_claims().unwrap()[0].expired);
        let cb = b.try_claim("model-x").unwrap().unwrap();
        assert_eq!(cb.generation, 1);
        // a learns it was superseded; b's live claim keeps a out.
        assert!(!a.heartbeat(&ca).unwrap());
        assert!(b.heartbeat(&cb).unwrap());
        assert!(a.try_claim("model-x").unwrap().is_err());
        b.finish(cb, Ok(())).unwrap();
        let all = s.list_claims().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].record.state, "done");
        assert_eq!(all[1].record.worker, "b");
    }

    #[test]
    fn racing_workers_get_exactly_one_claim_per_generation() {
        let (_d, s) = store();
        let wins: Vec<bool> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let board = s.claims(&format!("w{i}"), Duration::from_secs(60)).unwrap();
                    sc.spawn(move || board.try_claim("unit").unwrap().is_ok())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(wins.iter().filter(|w| **w).count(), 1);
    }

    #[test]
    fn done_claims_do_not_block_and_repeated_failures_do() {
        let (_d, s) = store();
        let a = s.claims("a", Duration::from_secs(60)).unwrap();
        let c = a.try_claim("u").unwrap().unwrap();
        a.finish(c, Ok(())).unwrap();
        let c = a.try_claim("u").unwrap().unwrap();
        assert_eq!(c.generation, 1);
        a.finish(c, Err("boom".into())).unwrap();
        let c = a.try_claim("u").unwrap().unwrap();
        a.finish(c, Err("boom again".into())).unwrap();
        assert_eq!(
            a.try_claim("u").unwrap().unwrap_err(),
            Busy::Failed("boom again".into())
        );
        assert!(s.claims("bad/name", Duration::ZERO).is_err());
    }
}
