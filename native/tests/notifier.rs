//! The wake-up callback fires once per arm, only when armed, and never after it was
//! removed; completions nobody armed for do not even wake the notifier thread.

mod support;

use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

use support::notified::{count, on_ready, wait_for_count};
use support::*;

/// A host whose notifier fired once: armed and idle, the next completion woke it.
fn host_notified_once() -> Host {
    let mut host = Host::new();
    let w = host.worker;
    ok("notifier", iot_worker_set_notifier(w, Some(on_ready)));
    ok("arm", iot_worker_arm(w));
    host.connect_refused(1);
    wait_for_count(w, 1);
    assert_eq!(host.next_tagged(1).result, -libc::ECONNREFUSED);
    host
}

#[test]
fn fires_once_per_arm_and_not_after_removal() {
    let mut host = host_notified_once();
    let w = host.worker;

    // Not armed: a completion arrives, we drain it via the blocking wait instead.
    host.connect_refused(2);
    assert_eq!(host.next_tagged(2).result, -libc::ECONNREFUSED);

    // Arming while a completion is already pending notifies at once.
    host.connect_refused(3);
    assert_eq!(iot_worker_wait(w, 10_000), 1);
    ok("arm", iot_worker_arm(w));
    wait_for_count(w, 2);

    // Removing the notifier joins its thread: no late or extra callbacks.
    ok("remove notifier", iot_worker_set_notifier(w, None));
    assert_eq!(count(w), 2);
    assert_eq!(host.next_tagged(3).result, -libc::ECONNREFUSED);
}

#[test]
fn arm_if_idle_arms_only_an_idle_worker() {
    let mut host = host_notified_once();
    let w = host.worker;

    // A completion is ready: nothing is armed, the host drains it itself.
    host.connect_refused(2);
    assert_eq!(iot_worker_wait(w, 10_000), 1);
    assert_eq!(iot_worker_arm_if_idle(w), 0, "completions are pending");
    assert_eq!(host.next_tagged(2).result, -libc::ECONNREFUSED);

    // Idle: armed, and the next completion wakes the host once.
    assert_eq!(iot_worker_arm_if_idle(w), 1, "nothing pending");
    host.connect_refused(3);
    wait_for_count(w, 2);
    assert_eq!(host.next_tagged(3).result, -libc::ECONNREFUSED);

    // Had the first call armed, the notifier would have fired for it too.
    ok("remove notifier", iot_worker_set_notifier(w, None));
    assert_eq!(count(w), 2);
    assert_eq!(iot_worker_arm_if_idle(0), IOT_E_BAD_HANDLE);
}

#[test]
fn idle_armed_worker_does_not_spin() {
    // One callback first: proves the notifier thread is up and in its wait loop.
    let host = host_notified_once();
    let w = host.worker;
    ok("arm", iot_worker_arm(w));
    // Nothing is in flight: the notifier thread must be blocked in poll(2).
    // Its CPU time after a short idle window shows it is not polling.
    let before = thread_cpu_ticks(w);
    assert_eq!(iot_worker_wait(w, 200), 0, "nothing can complete");
    let after = thread_cpu_ticks(w);
    assert!(
        after - before <= 1,
        "notifier thread used CPU while idle: {before} -> {after}"
    );
    assert_eq!(count(w), 1);
    ok("remove notifier", iot_worker_set_notifier(w, None));
}

#[test]
fn completions_while_not_armed_do_not_wake_the_notifier_thread() {
    // The host drains by itself (busy, not armed): waking the notifier for each of
    // these completions would cost a thread switch and do nothing.
    let mut host = host_notified_once();
    let w = host.worker;
    let before = thread_switches(w);
    for tag in 10..60 {
        host.connect_refused(tag);
        assert_eq!(host.next_tagged(tag).result, -libc::ECONNREFUSED);
    }
    let after = thread_switches(w);
    assert!(
        after - before <= 2,
        "the notifier thread woke for completions nobody armed for: {before} -> {after} switches"
    );
    // Armed again, the next completion still wakes the host.
    ok("arm", iot_worker_arm(w));
    host.connect_refused(60);
    wait_for_count(w, 2);
    assert_eq!(host.next_tagged(60).result, -libc::ECONNREFUSED);
    ok("remove notifier", iot_worker_set_notifier(w, None));
}

/// `/proc/self/task/<tid>` of the notifier thread of `worker`.
fn notifier_task(worker: u64) -> std::path::PathBuf {
    let name = format!("iot-notify-{worker}");
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == &name[..name.len().min(15)] {
            return dir;
        }
    }
    panic!("notifier thread {name} not found");
}

/// utime + stime (clock ticks) of the notifier thread of `worker`.
fn thread_cpu_ticks(worker: u64) -> u64 {
    let stat = std::fs::read_to_string(notifier_task(worker).join("stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Voluntary and involuntary context switches of the notifier thread of `worker`.
fn thread_switches(worker: u64) -> u64 {
    let status = std::fs::read_to_string(notifier_task(worker).join("status")).unwrap();
    status
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .map(|line| {
            line.split_whitespace()
                .last()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

#[test]
fn wait_times_out_without_completions() {
    // On another thread, so a wait that never times out fails the test instead of
    // hanging it (on i686 the kernel once read this timeout as ~2e17 seconds).
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let host = Host::new();
        let start = std::time::Instant::now();
        let code = iot_worker_wait(host.worker, 50);
        done.send((code, start.elapsed())).unwrap();
    });
    let (code, waited) = result
        .recv_timeout(DEADLINE)
        .expect("a 50 ms wait on an idle worker returns");
    assert_eq!(code, 0, "nothing pending");
    assert!(
        waited >= Duration::from_millis(40),
        "returned early: {waited:?}"
    );
}

#[test]
fn a_wait_on_another_thread_wakes_for_a_completion_made_without_a_cqe() {
    let mut host = Host::new();
    let (socket, _peer) = host.connected_pair();
    let worker = host.worker;
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        let start = std::time::Instant::now();
        let code = iot_worker_wait(worker, 10_000);
        done.send((code, start.elapsed())).unwrap();
    });
    let tid = tid_rx.recv().unwrap();
    // Until the waiter sleeps (in the ring: nothing else could hold it).
    let stat = format!("/proc/self/task/{tid}/stat");
    let asleep = |text: String| {
        text.rsplit(')')
            .next()
            .unwrap_or("")
            .trim()
            .starts_with('S')
    };
    let deadline = std::time::Instant::now() + DEADLINE;
    while !std::fs::read_to_string(&stat).is_ok_and(asleep) {
        assert!(
            std::time::Instant::now() < deadline,
            "the waiter never blocked"
        );
        std::thread::yield_now();
    }
    // The first send waits unsubmitted, the second in the socket's queue: cancelling
    // the second ends it at once, with no CQE, and its completion waits in `ready`.
    for tag in [1, 2] {
        let id = host.filled_buffer(b"0123456789");
        ok("send", iot_send(worker, socket, id, 0, 10, tag, 0));
    }
    ok("cancel", iot_cancel(worker, 2));
    let (code, waited) = result.recv_timeout(DEADLINE).expect("the waiter returns");
    assert_eq!(code, 1, "a completion is pending");
    assert!(
        waited < Duration::from_secs(5),
        "the waiter slept through the completion: {waited:?}"
    );
    assert_eq!(host.next_tagged(2).result, -libc::ECANCELED);
    assert_eq!(host.next_tagged(1).result, 10);
}

/// A post seen by `fake_post`: (port, Dart_CObject type, int64 value).
type Post = (i64, i32, i64);

fn posts() -> &'static (Mutex<Vec<Post>>, Condvar) {
    static POSTS: OnceLock<(Mutex<Vec<Post>>, Condvar)> = OnceLock::new();
    POSTS.get_or_init(Default::default)
}

/// Stands in for Dart_PostCObject: reads the message like the VM would.
unsafe extern "C" fn fake_post(port: i64, message: *mut std::ffi::c_void) -> i8 {
    // Dart_CObject is an i32 type tag, then the value union where C aligns an int64_t:
    // at 8, but at 4 on i686 (as the ia32 VM reads it).
    let value_at = if cfg!(target_arch = "x86") { 4 } else { 8 };
    // SAFETY: the notifier passes a Dart_CObject holding an int64.
    let (kind, value) = unsafe {
        (
            *(message as *const i32),
            message
                .cast::<u8>()
                .add(value_at)
                .cast::<i64>()
                .read_unaligned(),
        )
    };
    let (list, cv) = posts();
    list.lock().unwrap().push((port, kind, value));
    cv.notify_all();
    1
}

#[test]
fn port_notifier_posts_the_worker_id_as_int64() {
    let mut host = Host::new();
    let w = host.worker;
    ok(
        "notifier",
        iot_worker_set_notifier_port(w, Some(fake_post), 4242),
    );
    ok("arm", iot_worker_arm(w));
    host.connect_refused(1);
    let (list, cv) = posts();
    let guard = cv
        .wait_timeout_while(list.lock().unwrap(), DEADLINE, |l| {
            !l.iter().any(|p| p.0 == 4242)
        })
        .unwrap()
        .0;
    let post = *guard.iter().find(|p| p.0 == 4242).unwrap();
    drop(guard);
    assert_eq!(
        post,
        (4242, 3, w as i64),
        "Dart_CObject_kInt64 carrying the worker id"
    );
    ok("remove", iot_worker_set_notifier_port(w, None, 0));
    assert_eq!(host.next_tagged(1).result, -libc::ECONNREFUSED);
}
