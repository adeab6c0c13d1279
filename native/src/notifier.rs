//! Wake-up without polling. The ring signals `eventfd` on every completion; a native
//! thread blocks on it and calls the host's callback once, only when the host armed
//! the worker (its last drain found nothing). `arm` itself re-checks for pending
//! completions and kicks the eventfd, so no completion slips between drain and arm.

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::error::{Result, IOT_E_THREAD};

/// Host callback: receives the worker handle. Called from a native thread; must not
/// block (a Dart `NativeCallable.listener` only posts a message).
#[allow(non_camel_case_types)]
pub type iot_notify_fn = Option<unsafe extern "C" fn(worker: u64)>;

/// `Dart_PostCObject` (Dart: `NativeApi.postCObject`): posts `message` to a port and
/// returns whether it was accepted. Callable from any thread, and safe to call after the
/// receiving isolate is gone, which a `NativeCallable` is not.
#[allow(non_camel_case_types)]
pub type iot_post_fn = Option<unsafe extern "C" fn(port: i64, message: *mut c_void) -> i8>;

/// How the notifier thread wakes the host.
#[derive(Clone, Copy)]
pub(crate) enum Wake {
    Callback(unsafe extern "C" fn(u64)),
    /// Posts the worker id as an int64 message to a Dart port.
    Port {
        post: unsafe extern "C" fn(i64, *mut c_void) -> i8,
        port: i64,
    },
}

/// `Dart_CObject` from dart_native_api.h, as an int64 message: the type tag, then the
/// value union (40 bytes on 64-bit targets, 20 on i686, of which `as_int64` is the first
/// 8), aligned like C's `int64_t` (8, or 4 on i686), as `repr(C)` does.
#[repr(C)]
struct DartInt64Message {
    kind: i32,
    value: i64,
    rest_of_union: [u64; 4],
}

/// `Dart_CObject_kInt64`.
const DART_COBJECT_INT64: i32 = 3;

impl Wake {
    fn wake(self, worker: u64) {
        match self {
            // SAFETY: the host keeps the callback alive until the notifier is stopped
            // (which joins this thread first).
            Wake::Callback(callback) => unsafe { callback(worker) },
            Wake::Port { post, port } => {
                let mut message = DartInt64Message {
                    kind: DART_COBJECT_INT64,
                    value: worker as i64,
                    rest_of_union: [0; 4],
                };
                // SAFETY: post is Dart_PostCObject, which copies the message before
                // returning; a closed port only makes it return false.
                unsafe { post(port, (&mut message as *mut DartInt64Message).cast()) };
            }
        }
    }
}

/// State shared between the worker, its notifier thread and `arm`.
pub(crate) struct Signal {
    pub(crate) eventfd: EventFd,
    armed: AtomicBool,
}

impl Signal {
    pub(crate) fn new() -> Result<Arc<Signal>> {
        let eventfd =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| -(e as i32))?;
        Ok(Arc::new(Signal {
            eventfd,
            armed: AtomicBool::new(false),
        }))
    }

    pub(crate) fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Wakes the notifier thread; it calls back only if armed.
    pub(crate) fn kick(&self) {
        // EAGAIN (counter saturated) still leaves it readable, so ignoring is fine.
        let _ = self.eventfd.write(1);
    }

    pub(crate) fn is_armed(&self) -> bool {
        self.armed.load(Ordering::SeqCst)
    }

    fn take_armed(&self) -> bool {
        self.armed.swap(false, Ordering::SeqCst)
    }

    fn drain_eventfd(&self) {
        let _ = self.eventfd.read();
    }
}

/// A running notifier thread; dropping it stops and joins the thread, so the callback
/// is never called after the notifier is gone.
pub(crate) struct Notifier {
    stop: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

/// The notifier only polls and posts (a Dart post copies one int64): a small stack
/// keeps thousands of workers cheap in address space.
const NOTIFIER_STACK: usize = 256 << 10;

impl Notifier {
    pub(crate) fn start(worker: u64, signal: Arc<Signal>, wake: Wake) -> Result<Notifier> {
        let stop = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| -(e as i32))?;
        let stop: OwnedFd = stop.into();
        let stop_for_thread = stop.try_clone().map_err(crate::error::from_io)?;
        let thread = std::thread::Builder::new()
            .name(format!("iot-notify-{worker}"))
            .stack_size(NOTIFIER_STACK)
            .spawn(move || wait_loop(worker, &signal, stop_for_thread.as_fd(), wake))
            .map_err(|_| IOT_E_THREAD)?;
        Ok(Notifier {
            stop,
            thread: Some(thread),
        })
    }
}

fn wait_loop(worker: u64, signal: &Signal, stop: BorrowedFd<'_>, wake: Wake) {
    loop {
        let mut fds = [
            PollFd::new(signal.eventfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        if fds[1].any().unwrap_or(true) {
            return;
        }
        signal.drain_eventfd();
        if signal.take_armed() {
            wake.wake(worker);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.stop.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int64_messages_are_laid_out_as_dart_cobject() {
        // Dart_CObject's union starts after the int32 tag, at int64_t's C alignment; Dart
        // reads the whole C struct (24 bytes on i686, 48 on 64-bit targets).
        let (value_at, c_size) = if cfg!(target_arch = "x86") {
            (4, 24)
        } else {
            (8, 48)
        };
        assert_eq!(std::mem::offset_of!(DartInt64Message, value), value_at);
        assert!(std::mem::size_of::<DartInt64Message>() >= c_size);
    }
}
