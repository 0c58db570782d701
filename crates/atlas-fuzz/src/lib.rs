//! Mutation fuzzing on the stable toolchain (cargo-fuzz / libFuzzer need nightly).
//!
//! Each parser users feed has a `tests/fuzz*.rs` harness in its own crate. A harness takes valid
//! seed inputs (a real tar, manifest, safetensors header, PNG / JPEG, `pipeline.toml`), and for
//! every case derives a fresh input from them with [`Mutator`] (bit flips, interesting integers
//! written over length fields, truncation, splicing two seeds, duplicated and deleted ranges,
//! dictionary tokens), then calls the parser under [`run`]:
//!
//! - a panic fails the run, naming the case, the seed and where the input was written;
//! - with [`CapAlloc`] as the harness binary's `#[global_allocator]`, a single allocation above
//!   [`SOFT_CAP`] (256 MiB) fails the case the same way, and one above [`HARD_CAP`] is refused
//!   (the process aborts after printing the case to rerun).
//!
//! Every case is generated from `(seed, case index)` alone, so one failure reproduces with
//! `ATLAS_FUZZ_SEED=<seed> ATLAS_FUZZ_START=<case> ATLAS_FUZZ_CASES=1`.
//!
//! Environment: `ATLAS_FUZZ_CASES` (default [`DEFAULT_CASES`], so `cargo test` stays fast),
//! `ATLAS_FUZZ_SEED` (default 0), `ATLAS_FUZZ_START` (first case index, default 0),
//! `ATLAS_FUZZ_OUT` (where failing inputs go; default the system temp folder).

mod alloc;
mod mutate;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Instant;

pub use alloc::{CapAlloc, HARD_CAP, SOFT_CAP, largest_allocation, reset_largest_allocation};
pub use mutate::{Mutator, Rng};

/// Cases per target when `ATLAS_FUZZ_CASES` is not set.
pub const DEFAULT_CASES: u64 = 2_000;

/// Settings read from the environment.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub cases: u64,
    pub seed: u64,
    pub start: u64,
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

impl Settings {
    pub fn from_env() -> Self {
        Settings {
            cases: env_u64("ATLAS_FUZZ_CASES", DEFAULT_CASES),
            seed: env_u64("ATLAS_FUZZ_SEED", 0),
            start: env_u64("ATLAS_FUZZ_START", 0),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Report {
    pub target: String,
    pub cases: u64,
    /// Cases the parser accepted (`Ok`), the rest were rejected with an error.
    pub accepted: u64,
    pub seconds: f64,
    /// Largest single allocation seen in any case (0 without [`CapAlloc`]).
    pub largest_allocation: usize,
}

impl Report {
    pub fn rate(&self) -> f64 {
        self.cases as f64 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fuzz {}: {} inputs ({} accepted, {} rejected), 0 panics, largest allocation {} \
             bytes, {:.1} s ({:.0} inputs/s)",
            self.target,
            self.cases,
            self.accepted,
            self.cases - self.accepted,
            self.largest_allocation,
            self.seconds,
            self.rate()
        )
    }
}

fn save_failure(target: &str, case: u64, input: &[u8]) -> PathBuf {
    let dir = std::env::var_os("ATLAS_FUZZ_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("atlas-fuzz"));
    let path = dir.join(format!("{target}-case{case}.bin"));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, input);
    path
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "non-string panic payload".into()
    }
}

thread_local! {
    /// Whether this thread is running fuzz cases (their panics are reported by [`run_with`]).
    static FUZZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays quiet on threads running fuzz cases and defers to the
/// previous hook everywhere else (other tests of the same binary keep their messages).
fn quiet_panics_while_fuzzing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !FUZZING.with(|f| f.get()) {
                previous(info);
            }
        }));
    });
}

/// Runs `parse` on `settings.cases` inputs made by `make(rng, case)` (usually
/// [`Mutator::mutate`]). `parse` returns whether the input was accepted. Panics (with the
/// failing input saved) on the first case that panics or allocates above [`SOFT_CAP`].
pub fn run_with(
    target: &str,
    settings: Settings,
    mut make: impl FnMut(&mut Rng) -> Vec<u8>,
    mut parse: impl FnMut(&[u8]) -> bool,
) -> Report {
    let started = Instant::now();
    let mut accepted = 0;
    let mut largest = 0;
    quiet_panics_while_fuzzing();
    FUZZING.with(|f| f.set(true));
    let mut failure = None;
    for case in settings.start..settings.start + settings.cases {
        let mut rng = Rng::for_case(settings.seed, case);
        let input = make(&mut rng);
        alloc::set_current_case(case);
        reset_largest_allocation();
        let outcome = catch_unwind(AssertUnwindSafe(|| parse(&input)));
        let big = largest_allocation();
        largest = largest.max(big);
        match outcome {
            Ok(ok) => accepted += ok as u64,
            Err(p) => {
                failure = Some((case, input, format!("panicked: {}", panic_message(&*p))));
                break;
            }
        }
        if big > SOFT_CAP {
            failure = Some((case, input, format!("allocated {big} bytes at once")));
            break;
        }
    }
    FUZZING.with(|f| f.set(false));
    if let Some((case, input, what)) = failure {
        let path = save_failure(target, case, &input);
        panic!(
            "fuzz {target}: case {case} (ATLAS_FUZZ_SEED={} ATLAS_FUZZ_START={case} \
             ATLAS_FUZZ_CASES=1) {what}; input ({} bytes) saved to {}",
            settings.seed,
            input.len(),
            path.display()
        );
    }
    let report = Report {
        target: target.to_string(),
        cases: settings.cases,
        accepted,
        seconds: started.elapsed().as_secs_f64(),
        largest_allocation: largest,
    };
    println!("{report}");
    report
}

/// [`run_with`] over mutations of `seeds` (with `dict` tokens), settings from the environment.
pub fn run(
    target: &str,
    seeds: &[Vec<u8>],
    dict: &[&[u8]],
    parse: impl FnMut(&[u8]) -> bool,
) -> Report {
    let mutator = Mutator::new(seeds.to_vec(), dict.iter().map(|d| d.to_vec()).collect());
    run_with(
        target,
        Settings::from_env(),
        |rng| mutator.mutate(rng),
        parse,
    )
}
