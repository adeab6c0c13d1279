use std::ffi::c_void;
use std::sync::{Arc, Mutex};

use crate::abi::iot_completion;
use crate::abi::{iot_config, iot_stats};
use crate::error::IOT_E_NULL_POINTER;
use crate::notifier::{iot_notify_fn, iot_post_fn, Wake};
use crate::registry;
use crate::worker::Worker;

use super::{boundary, out_ptr};

/// Writes the default configuration into `out`.
#[no_mangle]
pub extern "C" fn iot_config_default(out: *mut iot_config) -> i32 {
    boundary(|| {
        *out_ptr(out)? = iot_config::default();
        Ok(0)
    })
}

/// Creates a worker: one io_uring ring with its buffer pool. `config` may be NULL for
/// the defaults. On success writes the worker handle to `out_worker` and returns 0.
/// Fails with `IOT_E_UNSUPPORTED` when io_uring is unavailable or lacks a needed
/// operation, `IOT_E_MEMLOCK` when the kernel refuses the memory, `-EINVAL` for a bad
/// configuration.
#[no_mangle]
pub extern "C" fn iot_worker_new(config: *const iot_config, out_worker: *mut u64) -> i32 {
    boundary(|| {
        let out = out_ptr(out_worker)?;
        // SAFETY: NULL or a readable iot_config, per the contract.
        let config = unsafe { config.as_ref() }.copied().unwrap_or_default();
        let worker = Worker::new(registry::next_id()?, &config)?;
        *out = registry::insert(worker)?;
        Ok(0)
    })
}

/// Frees a worker: stops its notifier (the callback is never called after this
/// returns), cancels every operation, closes every socket, waits (bounded, 5 s) until
/// the kernel has returned everything, then releases the ring and buffers. Buffers the
/// host still holds become invalid. A second call returns `IOT_E_BAD_HANDLE`.
/// Returns 0, or `-ETIMEDOUT` if some operations could not be reaped in time.
/// Not a leaf call: it blocks while operations are reaped.
#[no_mangle]
pub extern "C" fn iot_worker_free(worker: u64) -> i32 {
    boundary(|| {
        let mut worker = registry::remove(worker)?;
        let unreaped = worker.shutdown();
        Ok(if unreaped == 0 { 0 } else { -libc::ETIMEDOUT })
    })
}

/// Frees the worker whose handle is `token` (the handle cast to a pointer) without
/// blocking, for Dart's `NativeFinalizer`, which may run during garbage collection on
/// any thread: the handle goes stale at once and the worker is reaped on a background
/// thread as `iot_worker_free` would. An unknown or already freed handle is ignored, and
/// so is a single-thread worker's (`IOT_CONFIG_SINGLE_THREAD`), which only its own
/// thread can free (the kernel refuses its ring to any other).
#[no_mangle]
pub extern "C" fn iot_worker_finalize(token: *mut c_void) {
    boundary(|| {
        let worker = Arc::new(Mutex::new(registry::remove(token as u64).ok()));
        let for_reaper = worker.clone();
        let reaper = std::thread::Builder::new().name("iot-finalize".into());
        if reaper.spawn(move || reap(&for_reaper)).is_err() {
            reap(&worker); // no thread to be had: block rather than leak
        }
        Ok(0)
    });
}

fn reap(worker: &Mutex<Option<Worker>>) {
    let taken = worker.lock().map(|mut w| w.take()).unwrap_or(None);
    if let Some(mut worker) = taken {
        worker.shutdown();
    }
}

/// Submits every queued operation with one `io_uring_enter`. Returns how many
/// submissions the kernel took. When the completion queue is half full (the host
/// drains in batches and fell behind), its completions first move into the worker's
/// own queue, in order, so the kernel always has room to post.
#[no_mangle]
pub extern "C" fn iot_worker_flush(worker: u64) -> i32 {
    boundary(|| registry::with(worker, |w| w.flush().map(|n| n as i32)))
}

/// Copies up to `capacity` completions into `out` without blocking; returns how many.
/// Operations may be resubmitted while draining: call `iot_worker_flush` afterwards.
#[no_mangle]
pub extern "C" fn iot_worker_drain(worker: u64, out: *mut iot_completion, capacity: u32) -> i32 {
    boundary(|| {
        if out.is_null() && capacity > 0 {
            return Err(IOT_E_NULL_POINTER);
        }
        registry::with(worker, |w| {
            let slice: &mut [iot_completion] = if capacity == 0 {
                &mut []
            } else {
                // SAFETY: out is non-null with room for `capacity` records, per contract.
                unsafe { std::slice::from_raw_parts_mut(out, capacity as usize) }
            };
            Ok(w.drain(slice) as i32)
        })
    })
}

/// Submits queued operations, then blocks until a completion is pending or
/// `timeout_ms` passes (0 = no limit). Returns 1 if completions are pending, else 0.
/// The worker stays usable from other threads while this blocks. For hosts that own a
/// thread; never call it from a Dart isolate's event loop.
/// Not a leaf call: it blocks.
#[no_mangle]
pub extern "C" fn iot_worker_wait(worker: u64, timeout_ms: u32) -> i32 {
    boundary(|| registry::wait(worker, timeout_ms).map(i32::from))
}

/// Registers (or with NULL, removes) the wake-up callback. It is called with the worker
/// handle, from a native thread, at most once per `iot_worker_arm`. Replacing or
/// removing it waits until the previous callback can no longer be called.
/// Not a leaf call: it may join the notifier thread.
#[no_mangle]
pub extern "C" fn iot_worker_set_notifier(worker: u64, callback: iot_notify_fn) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.set_notifier(callback.map(Wake::Callback)).map(|()| 0)
        })
    })
}

/// Like `iot_worker_set_notifier`, but wakes the host by posting the worker handle as an
/// int64 message to native port `port` through `post` (Dart: `NativeApi.postCObject`
/// and `RawReceivePort.sendPort.nativePort`). Unlike a callback, a post to a closed
/// port is harmless, so an isolate that dies without freeing its worker cannot be
/// called into. NULL `post` removes the notifier.
/// Not a leaf call: it may join the notifier thread.
#[no_mangle]
pub extern "C" fn iot_worker_set_notifier_port(worker: u64, post: iot_post_fn, port: i64) -> i32 {
    let wake = post.map(|post| Wake::Port { post, port });
    boundary(|| registry::with(worker, |w| w.set_notifier(wake).map(|()| 0)))
}

/// Asks for one callback when the next completion is ready. Call it after a drain
/// returned nothing; if completions are already pending, the callback fires at once.
#[no_mangle]
pub extern "C" fn iot_worker_arm(worker: u64) -> i32 {
    boundary(|| {
        registry::with(worker, |w| {
            w.arm();
            Ok(0)
        })
    })
}

/// Like `iot_worker_arm`, but only when no completion is pending: returns 1 when it
/// armed the worker, 0 when completions are ready (nothing armed: drain them, e.g. in
/// a turn the host posts itself, which costs less than the notifier's wake-up; a send
/// on loopback usually completes within the flush that submitted it).
#[no_mangle]
pub extern "C" fn iot_worker_arm_if_idle(worker: u64) -> i32 {
    boundary(|| registry::with(worker, |w| Ok(i32::from(w.arm_if_idle()))))
}

/// Writes the worker's counters to `out`.
#[no_mangle]
pub extern "C" fn iot_worker_stats(worker: u64, out: *mut iot_stats) -> i32 {
    boundary(|| {
        let out = out_ptr(out)?;
        registry::with(worker, |w| {
            *out = w.stats();
            Ok(0)
        })
    })
}

/// Cancels every operation with `tag`. Each still completes (usually with
/// `-ECANCELED`); a cancelled multishot receive may deliver data that was already in
/// flight first. Returns `-ENOENT` when no operation has that tag (also when its
/// completion is already taken from the kernel and waits for the next drain).
#[no_mangle]
pub extern "C" fn iot_cancel(worker: u64, tag: u64) -> i32 {
    boundary(|| registry::with(worker, |w| w.cancel(tag).map(|()| 0)))
}
