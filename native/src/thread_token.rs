//! A number for the calling thread, for workers that one thread alone may call
//! (`IOT_CONFIG_SINGLE_THREAD`): cheaper to read per call than `std::thread::current`,
//! which clones a reference-counted handle.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
}

/// The calling thread's token: the same on every call from one thread, never shared
/// with another thread of the process.
pub(crate) fn this_thread() -> u64 {
    TOKEN.with(|token| *token)
}
