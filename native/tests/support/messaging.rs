//! Helpers for tests of messages between workers.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;

/// Workers whose notifier called back, for tests that wait on a wake-up.
static WOKEN: (Mutex<Vec<u64>>, Condvar) = (Mutex::new(Vec::new()), Condvar::new());

/// A notifier callback that records the worker and wakes `wait_woken`.
pub extern "C" fn record_wake(worker: u64) {
    let (woken, changed) = &WOKEN;
    woken.lock().unwrap_or_else(|e| e.into_inner()).push(worker);
    changed.notify_all();
}

/// Waits (bounded by `limit`, no polling) until `worker`'s notifier called back.
pub fn wait_woken(worker: u64, limit: Duration) -> bool {
    let (woken, changed) = &WOKEN;
    let deadline = Instant::now() + limit;
    let mut guard = woken.lock().unwrap();
    while !guard.contains(&worker) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        guard = changed.wait_timeout(guard, left).unwrap().0;
    }
    true
}

/// The process-wide payload pool: (base, payload size, payload count).
pub fn payload_pool() -> (*mut u8, u32, u32) {
    let (mut base, mut size, mut count) = (std::ptr::null_mut(), 0, 0);
    ok(
        "payload pool",
        iot_payload_pool(&mut base, &mut size, &mut count),
    );
    (base, size, count)
}

/// The bytes of payload `payload`, `len` long.
pub fn payload_bytes(payload: u64, len: usize) -> &'static mut [u8] {
    let (base, size, count) = payload_pool();
    let slot = payload & 0xffff_ffff;
    assert!(slot < u64::from(count) && len <= size as usize);
    // SAFETY: the pool is mapped for the life of the process and the slot is in range;
    // tests only touch payloads they hold.
    unsafe { std::slice::from_raw_parts_mut(base.add(slot as usize * size as usize), len) }
}

impl Host {
    /// Queues a message; returns the ABI result.
    pub fn message(&self, target: u64, tag: u64, value: u32) -> i32 {
        iot_message_send(self.worker, target, tag, value)
    }

    /// Stops accepting messages and drains until `IOT_KIND_STOPPED`, handing every
    /// other completion to `each`.
    pub fn stop_and_drain(&mut self, mut each: impl FnMut(&iot_completion)) {
        ok("stop", iot_worker_stop(self.worker));
        loop {
            let c = self.next_where(|_| true);
            if c.kind == IOT_KIND_STOPPED {
                return;
            }
            each(&c);
        }
    }
}
