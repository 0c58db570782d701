//! A global allocator that watches single allocation sizes, per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;

/// A single allocation above this fails the fuzz case ("unbounded allocation").
pub const SOFT_CAP: usize = 256 << 20;
/// A single allocation above this is refused outright (the process aborts after naming the case):
/// letting it through could take the machine's memory with it.
pub const HARD_CAP: usize = 4 << 30;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static CASE: Cell<u64> = const { Cell::new(u64::MAX) };
}

pub(crate) fn set_current_case(case: u64) {
    CASE.with(|c| c.set(case));
}

/// Largest single allocation on this thread since [`reset_largest_allocation`].
pub fn largest_allocation() -> usize {
    LARGEST.with(|l| l.get())
}

pub fn reset_largest_allocation() {
    LARGEST.with(|l| l.set(0));
}

/// Install in a fuzz harness: `#[global_allocator] static A: atlas_fuzz::CapAlloc = atlas_fuzz::CapAlloc;`
pub struct CapAlloc;

impl CapAlloc {
    fn check(size: usize) -> bool {
        // `try_with`: the thread-locals hold no destructor, but be safe during thread teardown.
        let _ = LARGEST.try_with(|l| {
            if size > l.get() {
                l.set(size);
            }
        });
        if size > HARD_CAP {
            let case = CASE.try_with(|c| c.get()).unwrap_or(u64::MAX);
            // Straight to fd 2 (not the test harness's capture, which is lost on abort); integer
            // formatting does not allocate.
            let _ = writeln!(
                std::io::stderr(),
                "atlas-fuzz: refused a single allocation of {size} bytes (cap {HARD_CAP}) in case \
                 {case}; rerun that case with ATLAS_FUZZ_START={case} ATLAS_FUZZ_CASES=1"
            );
            return false;
        }
        true
    }
}

// SAFETY: forwards to `System`, only refusing (null) requests above `HARD_CAP`, which the
// `GlobalAlloc` contract allows.
unsafe impl GlobalAlloc for CapAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::check(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: same layout, caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::check(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::check(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
