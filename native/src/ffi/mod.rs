//! The C ABI. Every export runs inside [`boundary`], checks its pointers and handles,
//! and calls the safe core; outputs are written only on success.
//!
//! Thread rules: every function may be called from any thread. Calls on one worker are
//! serialized by its lock; the host should still drive a worker from one isolate or
//! thread at a time, as completions are drained by whoever calls `iot_worker_drain`.

// The exports are called from C and Dart, where `unsafe` means nothing; each one checks
// its pointers (NULL → IOT_E_NULL_POINTER) and documents what it reads and writes.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod buffer;
mod datagram;
mod error;
mod file;
mod messaging;
mod payload;
mod socket;
mod tcp;
mod tls;
mod transport;
mod udp;
mod unix;
mod worker;

pub use buffer::*;
pub use datagram::*;
pub use error::*;
pub use file::*;
pub use messaging::*;
pub use payload::*;
pub use socket::*;
pub use tcp::*;
pub use tls::*;
pub use transport::*;
pub use udp::*;
pub use unix::*;
pub use worker::*;

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Result, IOT_E_NULL_POINTER, IOT_E_PANIC};
use crate::worker::Worker;

/// Runs an export body: `Ok(n)` → `n`, `Err(code)` → `code`, a panic → `IOT_E_PANIC`.
pub(crate) fn boundary(body: impl FnOnce() -> Result<i32>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(code)) => code,
        Err(_) => IOT_E_PANIC,
    }
}

/// Runs `op` on worker `worker` inside the boundary: `Ok(())` → 0.
pub(crate) fn on_worker(worker: u64, op: impl FnOnce(&mut Worker) -> Result<()>) -> i32 {
    boundary(|| crate::registry::with(worker, op).map(|()| 0))
}

/// Checks an output pointer before any work is done.
pub(crate) fn out_ptr<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller passes either NULL or a pointer to writable storage for T.
    unsafe { ptr.as_mut() }.ok_or(IOT_E_NULL_POINTER)
}

/// An input array of `len` elements (NULL only when `len` is 0).
pub(crate) fn in_slice<'a, T>(ptr: *const T, len: u32) -> Result<&'a [T]> {
    match (ptr.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(IOT_E_NULL_POINTER),
        // SAFETY: non-null and, per the ABI contract, `len` readable elements.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(ptr, len as usize) }),
    }
}

/// An output array of `len` elements (NULL only when `len` is 0).
pub(crate) fn out_slice<'a, T>(ptr: *mut T, len: u32) -> Result<&'a mut [T]> {
    match (ptr.is_null(), len) {
        (_, 0) => Ok(&mut []),
        (true, _) => Err(IOT_E_NULL_POINTER),
        // SAFETY: non-null and, per the ABI contract, `len` writable elements.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) }),
    }
}

/// A NUL-terminated UTF-8 argument.
pub(crate) fn c_str<'a>(ptr: *const c_char) -> Result<&'a str> {
    std::str::from_utf8(c_bytes(ptr)?).map_err(|_| -libc::EINVAL)
}

/// A NUL-terminated argument as bytes (paths need not be UTF-8).
pub(crate) fn c_bytes<'a>(ptr: *const c_char) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(IOT_E_NULL_POINTER);
    }
    // SAFETY: non-null and, per the ABI contract, NUL-terminated.
    Ok(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// Copies `text` into `buf` (NUL-terminated, truncated to fit); returns its full length.
pub(crate) fn copy_text(text: &str, buf: *mut c_char, len: usize) -> usize {
    copy_bytes(text.as_bytes(), buf, len)
}

/// Copies `bytes` into `buf` (NUL-terminated, truncated to fit); returns their length.
pub(crate) fn copy_bytes(bytes: &[u8], buf: *mut c_char, len: usize) -> usize {
    if !buf.is_null() && len > 0 {
        let n = bytes.len().min(len - 1);
        // SAFETY: buf has room for len bytes and n + 1 <= len.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    bytes.len()
}
