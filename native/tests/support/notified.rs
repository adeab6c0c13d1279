//! A notifier callback that counts its calls per worker (the tests of a binary run in
//! parallel), and waits on the count.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use super::DEADLINE;

fn calls() -> &'static (Mutex<HashMap<u64, u32>>, Condvar) {
    static CALLS: OnceLock<(Mutex<HashMap<u64, u32>>, Condvar)> = OnceLock::new();
    CALLS.get_or_init(Default::default)
}

/// The callback to give `iot_worker_set_notifier`.
pub unsafe extern "C" fn on_ready(worker: u64) {
    let (map, cv) = calls();
    *map.lock().unwrap().entry(worker).or_default() += 1;
    cv.notify_all();
}

/// How many times the callback fired for `worker`.
pub fn count(worker: u64) -> u32 {
    calls().0.lock().unwrap().get(&worker).copied().unwrap_or(0)
}

/// Waits until the callback fired for `worker` more than `seen` times, within
/// `timeout`; `seen` becomes the count. False when it timed out.
pub fn wait_past(worker: u64, seen: &mut u32, timeout: Duration) -> bool {
    let (map, cv) = calls();
    let guard = map.lock().unwrap();
    let (guard, waited) = cv
        .wait_timeout_while(guard, timeout, |m| {
            m.get(&worker).copied().unwrap_or(0) <= *seen
        })
        .unwrap();
    *seen = guard.get(&worker).copied().unwrap_or(0);
    !waited.timed_out()
}

/// Waits until the callback fired `n` times for `worker`; panics past `DEADLINE`.
pub fn wait_for_count(worker: u64, n: u32) {
    let mut seen = count(worker);
    while seen < n {
        assert!(
            wait_past(worker, &mut seen, DEADLINE),
            "callback count stayed {seen}, wanted {n}"
        );
    }
}
