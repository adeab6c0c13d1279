use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::copy_text;

/// Writes the text for result code `code` into `buf` (at most `len` bytes including the
/// terminating NUL; truncated to fit) and returns the full length of the text, so a
/// caller can retry with a bigger buffer. `buf` may be NULL when `len` is 0.
#[no_mangle]
pub extern "C" fn iot_error_message(code: i32, buf: *mut c_char, len: usize) -> usize {
    catch_unwind(AssertUnwindSafe(|| {
        copy_text(&crate::error::message(code), buf, len)
    }))
    .unwrap_or(0)
}
