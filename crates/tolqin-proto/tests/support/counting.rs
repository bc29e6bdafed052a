//! A counting global allocator for the memory tests: every call is forwarded to `System`, and
//! the bytes live on the current thread (and their peak) are counted, so that tests running in
//! parallel do not disturb each other's figures. A test file installs it with
//!
//! ```text
//! #[path = "support/counting.rs"]
//! mod counting;
//! #[global_allocator]
//! static ALLOCATOR: counting::Counting = counting::Counting;
//! ```
#![allow(dead_code)] // Each test file uses part of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The allocator: `System`, counted.
pub struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn add(bytes: isize) {
    // `try_with`: the thread-locals may be gone while a thread exits.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + bytes;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

/// The bytes allocated and not yet freed by this thread.
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// What running a closure allocated, beyond what was live when it started.
pub struct Allocated {
    /// The most bytes allocated at once.
    pub peak: usize,
    /// The bytes still allocated when it returned (its result included).
    pub held: usize,
}

/// Runs `f` and returns its result and what it allocated.
pub fn allocated<T>(f: impl FnOnce() -> T) -> (T, Allocated) {
    let start = live();
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let bytes = |b: isize| (b - start).max(0) as usize;
    let counted = Allocated {
        peak: bytes(PEAK.with(Cell::get)),
        held: bytes(live()),
    };
    (result, counted)
}

// SAFETY: every call is forwarded to `System` unchanged, with the caller's arguments, so the
// caller's contract is `System`'s; only thread-local counters are kept beside it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
