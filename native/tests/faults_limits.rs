//! Resource limits give errors that name the real cause, never a panic: no address
//! space for the buffer pool (`IOT_E_ADDRESS_SPACE`, naming RLIMIT_AS), no thread for
//! the notifier (`IOT_E_THREAD`), and the echo example exits cleanly (status 1, a
//! message) under any `ulimit -v`. Limits are process-wide, so the checks run one
//! after another in one test: the test harness starting another test's thread while a
//! limit is low would abort the process (its thread cannot map its signal stack).
//! AddressSanitizer reserves terabytes of shadow memory, so under it the address-space
//! limits cannot be applied and these tests return early.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn under_asan() -> bool {
    std::env::var("RUSTFLAGS").is_ok_and(|flags| flags.contains("sanitizer=address"))
}

/// This process's mapped address space in bytes.
fn address_space() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("statm size");
    // SAFETY: sysconf only reads a constant.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// Lowers RLIMIT_AS to `headroom` bytes above what is mapped now, until dropped.
struct AddressSpaceLimit(libc::rlimit);

impl AddressSpaceLimit {
    fn headroom(bytes: u64) -> AddressSpaceLimit {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write one rlimit each.
        unsafe {
            assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut before), 0);
            let low = libc::rlimit {
                rlim_cur: (address_space() + bytes) as libc::rlim_t,
                rlim_max: before.rlim_max,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &low), 0);
        }
        AddressSpaceLimit(before)
    }
}

impl Drop for AddressSpaceLimit {
    fn drop(&mut self) {
        // SAFETY: restores the limit read before (raising back up to the hard limit).
        unsafe { libc::setrlimit(libc::RLIMIT_AS, &self.0) };
    }
}

#[test]
fn resource_limits_are_named_and_never_panic() {
    // AddressSanitizer's shadow memory leaves no room for an address-space limit.
    if under_asan() {
        return;
    }
    no_address_space_for_the_pool_is_named_as_such();
    no_thread_for_the_notifier_is_named_as_such();
    the_echo_example_never_panics_under_an_address_space_limit();
}

fn no_address_space_for_the_pool_is_named_as_such() {
    // 4096 buffers of 16 KiB: a 64 MiB pool, with 16 MiB of room.
    let config = config(2048, 2048, 16 << 10);
    let code = {
        let _limit = AddressSpaceLimit::headroom(16 << 20);
        let mut worker = 0;
        iot_worker_new(&config, &mut worker)
    };
    assert_eq!(code, IOT_E_ADDRESS_SPACE, "{}", message(code));
    assert!(message(code).contains("RLIMIT_AS"), "{}", message(code));
}

extern "C" fn never_called(_worker: u64) {}

fn no_thread_for_the_notifier_is_named_as_such() {
    let host = Host::new();
    let code = {
        // Less room than the notifier's stack (256 KiB).
        let _limit = AddressSpaceLimit::headroom(64 << 10);
        iot_worker_set_notifier(host.worker, Some(never_called))
    };
    assert_eq!(code, IOT_E_THREAD, "{}", message(code));
    assert!(message(code).contains("RLIMIT_NPROC"), "{}", message(code));
    // The worker is still usable, and a notifier starts once there is room.
    ok(
        "notifier",
        iot_worker_set_notifier(host.worker, Some(never_called)),
    );
    ok("no notifier", iot_worker_set_notifier(host.worker, None));
}

/// The echo example under `ulimit -v <kib>`: `None` if it was still serving after a
/// moment, else its exit status code and what it printed on stderr.
fn echo_under(kib: u64) -> Option<(i32, String)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {kib} && exec \"$0\" --port 0 --workers 2"
        ))
        .arg(example_path("echo_server"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start echo_server");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let _ = stdout.read_line(&mut line);
    let deadline = Instant::now() + Duration::from_millis(300);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10)); // pacing a deadline, not IO
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    let output = child.wait_with_output().expect("echo_server output");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    Some((output.status.code().unwrap_or(-1), stderr))
}

fn the_echo_example_never_panics_under_an_address_space_limit() {
    let mut refused = 0;
    // Below about 6 MiB the Rust runtime of a 32-bit build cannot start at all (it
    // aborts mapping the main thread's alternate signal stack), before our code runs.
    for kib in (7_000..=40_000).step_by(3_000) {
        let Some((status, stderr)) = echo_under(kib) else {
            continue;
        };
        // So little room that the C library cannot make a serving thread's malloc
        // arena, and the first small allocation there fails: Rust aborts on that, in
        // any code. Which limit is the first with room enough for the ring and its
        // buffers to be what fails depends on the build's layout (7,000 KiB either way).
        if status == -1 && stderr.starts_with("memory allocation of") {
            continue;
        }
        refused += 1;
        assert!(
            status == 1 && !stderr.contains("panicked"),
            "ulimit -v {kib}: status {status}, stderr {stderr:?}"
        );
        assert!(
            stderr.contains("RLIMIT") || stderr.contains("thread") || stderr.is_empty(),
            "ulimit -v {kib}: the message names no cause: {stderr:?}"
        );
    }
    assert!(refused > 0, "no limit was low enough to refuse");
}
