//! A system BLAS loaded at run time for the CPU towers' GEMMs (`cblas_sgemm`).
//!
//! burn's CPU backend multiplies with the `gemm` crate; on the 2-core development machine that
//! reaches ~180-230 GFLOP/s on the ViT-B/32 shapes where OpenBLAS and MKL (what PyTorch uses)
//! reach ~260-300 (BENCHMARKS.md). Nothing is linked at build time: the first CPU linear layer
//! looks for a BLAS with `dlopen`, so a machine without one still builds and runs, on burn's GEMM.
//!
//! Which library: `CLIP_ATLAS_BLAS` names a file or soname to load (`off` turns the route off);
//! unset, the first of [`CANDIDATES`] that loads and exports `cblas_sgemm` is used (Debian:
//! `apt-get install libopenblas0`). The choice is logged once and reported by [`gemm_backend`].
//!
//! Numerics: the same products summed in another order than burn's GEMM, so embeddings differ in
//! the last bits (as between CPU and CUDA); the cache keys do not include the GEMM library, the
//! same way they do not include the device (ARCHITECTURE.md, "Keys").

use std::ffi::c_int;
use std::sync::OnceLock;

/// `cblas_sgemm(layout, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)`.
type SgemmFn = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);

const CBLAS_ROW_MAJOR: c_int = 101;
const CBLAS_NO_TRANS: c_int = 111;
const CBLAS_TRANS: c_int = 112;

/// Sonames tried in order when `CLIP_ATLAS_BLAS` is unset. The generic `libblas.so.3` is not
/// among them: on Debian it is the slow reference BLAS unless an alternative was selected.
#[cfg(target_os = "macos")]
pub const CANDIDATES: &[&str] = &[
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    "libopenblas.dylib",
];
#[cfg(not(target_os = "macos"))]
pub const CANDIDATES: &[&str] = &[
    "libopenblas.so.0",
    "libopenblas.so",
    "libmkl_rt.so.2",
    "libmkl_rt.so",
    "libblis.so.4",
    "libblis.so",
];

pub struct Blas {
    sgemm: SgemmFn,
    /// The file or soname that was loaded.
    pub name: String,
    // Keeps the library mapped for the process's life (`sgemm` points into it).
    _lib: libloading::Library,
}

static BLAS: OnceLock<Option<Blas>> = OnceLock::new();

/// The loaded BLAS, if any (loaded and logged on first use).
pub fn get() -> Option<&'static Blas> {
    BLAS.get_or_init(load).as_ref()
}

/// What multiplies the CPU towers' matrices: `"<library> (cblas_sgemm)"` or `"burn gemm"`.
pub fn gemm_backend() -> String {
    match get() {
        Some(b) => format!("{} (cblas_sgemm)", b.name),
        None => "burn gemm".to_string(),
    }
}

fn load() -> Option<Blas> {
    let wanted = std::env::var("CLIP_ATLAS_BLAS").ok();
    let names: Vec<String> = match wanted.as_deref().map(str::trim) {
        Some("off") | Some("none") | Some("0") => {
            tracing::info!("CPU GEMM: burn's (CLIP_ATLAS_BLAS=off)");
            return None;
        }
        Some(name) if !name.is_empty() => vec![name.to_string()],
        _ => CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    // OpenBLAS's worker threads spin (sched_yield) for 2^28 cycles after each call before they
    // sleep, taking a core from the decode threads, the stages and the codecs between GEMMs; 2^4
    // lets them sleep at once (the default run on 2 cores: 2 min 48 s instead of 3 min 18 s, the
    // towers' rate unchanged). OpenBLAS reads it when loaded; a value the user set is kept.
    if std::env::var_os("OPENBLAS_THREAD_TIMEOUT").is_none() {
        // SAFETY: set once, before the library that reads it is loaded; nothing in this process
        // reads or writes this variable concurrently (glibc keeps old environment strings alive).
        unsafe { std::env::set_var("OPENBLAS_THREAD_TIMEOUT", "4") };
    }
    for name in &names {
        // SAFETY: loading a shared library runs its initialisers; the candidates are BLAS
        // libraries (or the file the user named for this purpose).
        let lib = match unsafe { libloading::Library::new(name) } {
            Ok(lib) => lib,
            Err(e) => {
                if wanted.is_some() {
                    tracing::warn!(
                        "CLIP_ATLAS_BLAS={name} could not be loaded ({e}); the CPU towers use \
                         burn's GEMM"
                    );
                }
                continue;
            }
        };
        // SAFETY: `cblas_sgemm` has this C signature in every CBLAS (LP64 integers).
        let sgemm = match unsafe { lib.get::<SgemmFn>(b"cblas_sgemm\0") } {
            Ok(f) => *f,
            Err(_) => {
                tracing::warn!("{name} has no cblas_sgemm; skipped");
                continue;
            }
        };
        tracing::info!("CPU GEMM: {name} (cblas_sgemm)");
        return Some(Blas {
            sgemm,
            name: name.clone(),
            _lib: lib,
        });
    }
    tracing::info!(
        "CPU GEMM: burn's; a system BLAS makes the CPU towers faster (Debian/Ubuntu: `apt-get \
         install libopenblas0`, or CLIP_ATLAS_BLAS=/path/to/libopenblas.so)"
    );
    None
}

/// A row-major `[rows, cols]` operand in memory: element `(r, c)` at `ptr[r * ld + c]`, or, when
/// `transposed`, at `ptr[c * ld + r]`.
#[derive(Clone, Copy)]
pub struct Operand<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub transposed: bool,
}

impl Blas {
    /// `c[m, n] = a[m, k] @ b[k, n] + beta * c` (row-major `c`, leading dimension `n`).
    /// `None` when a dimension does not fit a C `int` or an operand is too short (the caller
    /// falls back to burn).
    #[allow(clippy::too_many_arguments)] // cblas_sgemm's own parameters
    pub fn sgemm(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: Operand<'_>,
        b: Operand<'_>,
        beta: f32,
        c: &mut [f32],
    ) -> Option<()> {
        let fits = |v: usize| c_int::try_from(v).ok();
        let (mi, ni, ki) = (fits(m)?, fits(n)?, fits(k)?);
        let (lda, ldb) = (fits(a.ld)?, fits(b.ld)?);
        let need = |op: &Operand<'_>, rows: usize, cols: usize| {
            let (r, cc) = if op.transposed {
                (cols, rows)
            } else {
                (rows, cols)
            };
            r == 0 || ((r - 1) * op.ld + cc <= op.data.len() && cc <= op.ld)
        };
        if !need(&a, m, k) || !need(&b, k, n) || c.len() < m * n || m == 0 || n == 0 {
            return None;
        }
        let t = |op: &Operand<'_>| match op.transposed {
            true => CBLAS_TRANS,
            false => CBLAS_NO_TRANS,
        };
        // SAFETY: the bounds of every operand were checked above for these dimensions and
        // leading dimensions; `c` holds `m * n` elements with leading dimension `n`.
        unsafe {
            (self.sgemm)(
                CBLAS_ROW_MAJOR,
                t(&a),
                t(&b),
                mi,
                ni,
                ki,
                1.0,
                a.data.as_ptr(),
                lda,
                b.data.as_ptr(),
                ldb,
                beta,
                c.as_mut_ptr(),
                ni,
            );
        }
        Some(())
    }
}
