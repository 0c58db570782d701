//! One writer per store: an exclusive, non-blocking lock on `<root>/.lock`.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError, io_err};
use crate::manifest::{format_utc_ms, now_unix_ms};
use crate::store::Store;

/// The lock file inside the store root.
pub const LOCK_FILE: &str = ".lock";

/// Proof that this process is the store's only writer; the lock is released when it is dropped
/// (and by the OS when the process ends, however it ends).
#[derive(Debug)]
pub struct StoreLock {
    path: PathBuf,
    /// `None` where the filesystem cannot lock (then nothing is held; a warning was logged).
    file: Option<File>,
}

impl StoreLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// False when the filesystem does not support locks and the run goes on unprotected.
    pub fn is_held(&self) -> bool {
        self.file.is_some()
    }
}

impl Store {
    /// Takes the store's lock *shared*: what each worker of a multi-worker run holds
    /// ([`crate::ClaimBoard`] divides the work among them). Any number of workers hold it at
    /// once; a plain run's [`Store::lock_exclusive`] is refused while one does, and a worker is
    /// refused ([`StoreError::InUse`]) while a plain run holds the store. Never waits.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        let path = self.root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening the store lock file", &path))?;
        match file.try_lock_shared() {
            Ok(()) => Ok(StoreLock {
                path,
                file: Some(file),
            }),
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(StoreError::InUse {
                    root: self.root.clone(),
                    holder: format!("a single-process run: {}", holder.trim()),
                })
            }
            Err(std::fs::TryLockError::Error(e)) if e.kind() == ErrorKind::Unsupported => {
                tracing::warn!(path = %path.display(), error = %e, "the filesystem cannot lock files; the worker runs without the store lock (claims still divide the work)");
                Ok(StoreLock { path, file: None })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io {
                op: "locking (shared)",
                path,
                source: e,
            }),
        }
    }

    /// Takes the store's writer lock: an exclusive lock (`File::try_lock`, `flock` on Unix) on
    /// `<root>/.lock`, which then records `pid N, started at T` for whoever is refused.
    ///
    /// Guarantees: never waits. While the returned [`StoreLock`] lives, every other call (from
    /// this process through another handle, or from another process) fails with
    /// [`StoreError::InUse`], which names the holder. The lock goes with the `StoreLock` (drop)
    /// or with the process (exit, crash, kill): a dead run never leaves the store locked. On a
    /// filesystem without lock support the call succeeds without a lock
    /// ([`StoreLock::is_held`] is false) and logs a warning. Readers need no lock: `get` only
    /// trusts committed, verified artifacts.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        let path = self.root.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening the store lock file", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let claims = self.list_claims().unwrap_or_default();
                let workers: std::collections::BTreeSet<&str> = claims
                    .iter()
                    .filter(|c| c.record.state == "running" && !c.expired)
                    .map(|c| c.record.worker.as_str())
                    .collect();
                return Err(StoreError::InUse {
                    root: self.root.clone(),
                    holder: if !workers.is_empty() {
                        format!(
                            "workers {} hold it; `cargo xtask status` shows their progress",
                            workers.into_iter().collect::<Vec<_>>().join(", ")
                        )
                    } else if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) if e.kind() == ErrorKind::Unsupported => {
                tracing::warn!(path = %path.display(), error = %e, "the filesystem cannot lock files; running without the store lock (do not start two runs on this store)");
                return Ok(StoreLock { path, file: None });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::Io {
                    op: "locking",
                    path,
                    source: e,
                });
            }
        }
        let who = format!(
            "pid {}, started at {}\n",
            std::process::id(),
            format_utc_ms(now_unix_ms())
        );
        (|| {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(who.as_bytes())?;
            file.flush()
        })()
        .map_err(io_err("writing the store lock file", &path))?;
        Ok(StoreLock {
            path,
            file: Some(file),
        })
    }
}
