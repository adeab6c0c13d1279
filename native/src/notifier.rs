//! Wake-up without polling. A native thread blocks in `epoll_wait` on the ring's own fd
//! (readable when the CQ has entries) and a kick `eventfd` (completions made without a
//! CQE, and other workers' news), and calls the host's callback once, only when the host
//! armed the worker (its last drain found nothing).
//!
//! The ring fd is watched one-shot (`EPOLLONESHOT`), and re-watched by `arm`: while the
//! host is busy draining and submitting, completions wake nobody. (An eventfd registered
//! with the ring woke this thread for every batch of completions, armed or not: at 8
//! busy connections that was 2-3 wake-ups per host turn, and the ring's signal path was
//! 8% of the host thread's time. `IORING_CQ_EVENTFD_DISABLED` cannot stop that safely:
//! the kernel reads the flag before the barrier that orders it against the CQ tail.)
//! Re-watching with `EPOLL_CTL_MOD` checks readiness at once, under epoll's and the
//! ring's own wait-queue barriers, so no completion slips between drain and arm.

use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
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

/// State shared between the worker, its notifier thread, `arm` and the kickers.
pub(crate) struct Signal {
    /// Kicks: readable when something not in the CQ is ready for the host.
    pub(crate) eventfd: EventFd,
    armed: AtomicBool,
    /// Threads blocked in `iot_worker_wait` (or about to block), which only a CQE wakes.
    waiting: AtomicU32,
}

impl Signal {
    pub(crate) fn new() -> Result<Arc<Signal>> {
        let eventfd =
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| -(e as i32))?;
        Ok(Arc::new(Signal {
            eventfd,
            armed: AtomicBool::new(false),
            waiting: AtomicU32::new(0),
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

    /// A thread is about to block in the ring until a CQE; `done_waiting` follows.
    pub(crate) fn begin_waiting(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn done_waiting(&self) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    pub(crate) fn has_waiters(&self) -> bool {
        self.waiting.load(Ordering::SeqCst) > 0
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
    watch: Arc<Watch>,
    thread: Option<JoinHandle<()>>,
}

/// A notifier's epoll set and its one-shot watch of the ring, shared with its thread.
struct Watch {
    epoll: Epoll,
    /// The ring's fd (a duplicate, so the watch never outlives the fd it names).
    ring: OwnedFd,
    /// The ring's one-shot watch is set (no completion has fired it since the last
    /// `EPOLL_CTL_MOD`).
    ring_watched: AtomicBool,
}

/// The notifier only waits and posts (a Dart post copies one int64): a small stack
/// keeps thousands of workers cheap in address space.
const NOTIFIER_STACK: usize = 256 << 10;

/// What an epoll event is about (its `data`).
const RING: u64 = 0;
const KICK: u64 = 1;
const STOP: u64 = 2;

impl Notifier {
    /// Starts the thread for `worker`, whose ring's fd `ring` duplicates.
    pub(crate) fn start(
        worker: u64,
        signal: Arc<Signal>,
        ring: OwnedFd,
        wake: Wake,
    ) -> Result<Notifier> {
        let stop = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| -(e as i32))?;
        let stop: OwnedFd = stop.into();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|e| -(e as i32))?;
        // The ring starts unwatched: the first `arm` watches it.
        epoll
            .add(&ring, EpollEvent::new(EpollFlags::EPOLLONESHOT, RING))
            .and_then(|()| {
                epoll.add(
                    signal.eventfd.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, KICK),
                )
            })
            .and_then(|()| epoll.add(&stop, EpollEvent::new(EpollFlags::EPOLLIN, STOP)))
            .map_err(|e| -(e as i32))?;
        let watch = Arc::new(Watch {
            epoll,
            ring,
            ring_watched: AtomicBool::new(false),
        });
        let watch_for_thread = watch.clone();
        let thread = std::thread::Builder::new()
            .name(format!("iot-notify-{worker}"))
            .stack_size(NOTIFIER_STACK)
            .spawn(move || wait_loop(worker, &signal, &watch_for_thread, wake))
            .map_err(|_| IOT_E_THREAD)?;
        Ok(Notifier {
            stop,
            watch,
            thread: Some(thread),
        })
    }

    /// Watches the ring for its next completion, unless the watch is still set. If the
    /// CQ already has entries, the notifier wakes at once.
    pub(crate) fn watch_ring(&self, signal: &Signal) {
        let watch = &self.watch;
        if watch.ring_watched.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, RING);
        if watch.epoll.modify(&watch.ring, &mut event).is_err() {
            // Cannot happen for a registered fd; if it did, a kick wakes the host once
            // (it drains and arms again) rather than never.
            watch.ring_watched.store(false, Ordering::SeqCst);
            signal.kick();
        }
    }
}

fn wait_loop(worker: u64, signal: &Signal, watch: &Watch, wake: Wake) {
    let mut events = [EpollEvent::empty(); 3];
    loop {
        let count = match watch.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(count) => count,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        };
        let mut news = false;
        for event in &events[..count] {
            match event.data() {
                STOP => return,
                // Fired, so no longer watched: clear that before taking `armed`, so an
                // `arm` in between either is seen here or watches the ring again.
                RING => watch.ring_watched.store(false, Ordering::SeqCst),
                _ => signal.drain_eventfd(),
            }
            news = true;
        }
        if news && signal.take_armed() {
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
