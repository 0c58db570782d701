//! Fault injection: make the N-th write operation of this process fail with `ENOSPC`, as a full
//! disk would. Tests use it to prove that a put interrupted at any of its writes leaves the store
//! consistent and names the artifact.
//!
//! The write operations counted are every `write` of a temp file, every fsync (file or
//! directory) and every rename into place, in the order [`Store::put`](crate::Store::put) and
//! [`write_parquet_atomic`](crate::write_parquet_atomic) do them. Arm it in-process with
//! [`fail_nth_write`], or for a whole process with `ATLAS_FAULT_ENOSPC_AT=N` (read once; a test
//! hook, documented in RELIABILITY.md, that does nothing unless set).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// `ENOSPC` on Linux and macOS.
pub const ENOSPC: i32 = 28;

static ARMED: AtomicU64 = AtomicU64::new(0);
static SEEN: AtomicU64 = AtomicU64::new(0);
static FROM_ENV: OnceLock<()> = OnceLock::new();

/// The `n`-th write operation from now (1-based) fails with `ENOSPC`; later ones succeed.
/// `n = 0` disarms.
pub fn fail_nth_write(n: u64) {
    FROM_ENV.get_or_init(|| ());
    ARMED.store(n, Ordering::SeqCst);
}

/// Write operations seen by this process so far (armed or not).
pub fn writes_seen() -> u64 {
    SEEN.load(Ordering::SeqCst)
}

fn arm_from_env() {
    FROM_ENV.get_or_init(|| {
        if let Some(n) = std::env::var("ATLAS_FAULT_ENOSPC_AT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            tracing::warn!(
                n,
                "ATLAS_FAULT_ENOSPC_AT is set: write operation {n} of this process will fail with ENOSPC (a test hook)"
            );
            ARMED.store(n, Ordering::SeqCst);
        }
    });
}

/// Called before each write operation; `Err(ENOSPC)` when it is the armed one.
pub(crate) fn check() -> std::io::Result<()> {
    arm_from_env();
    SEEN.fetch_add(1, Ordering::SeqCst);
    let prev = ARMED.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
    if prev == Ok(1) {
        return Err(std::io::Error::from_raw_os_error(ENOSPC));
    }
    Ok(())
}

/// A file whose writes and fsync pass through [`check`].
pub(crate) struct FaultyFile(pub std::fs::File);

impl std::io::Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        check()?;
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl FaultyFile {
    pub(crate) fn sync_all(&self) -> std::io::Result<()> {
        check()?;
        self.0.sync_all()
    }
}

/// With `ATLAS_STORE_JOURNAL=<file>`, every committed put appends `<pid> <kind> <key>` to that
/// file (one `write` of one line, `O_APPEND`: lines of concurrent processes do not interleave).
/// The scale-out tests count artifacts committed more than once with it; unset, it costs one
/// environment lookup per process.
pub(crate) fn journal(kind: &str, key: &crate::ArtifactKey) {
    static PATH: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    let Some(path) = PATH.get_or_init(|| std::env::var_os("ATLAS_STORE_JOURNAL").map(Into::into))
    else {
        return;
    };
    let line = format!("{} {kind} {key}\n", std::process::id());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "could not append to ATLAS_STORE_JOURNAL");
    }
}
