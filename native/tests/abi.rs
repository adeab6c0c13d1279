//! ABI misuse: bad handles, NULL pointers, bad configs and buffer ids give clear
//! errors and never crash.

mod support;

use std::ptr::{null, null_mut};

use support::*;

#[test]
fn stale_garbage_and_double_freed_workers_are_rejected() {
    let mut worker = 0;
    ok("new", iot_worker_new(null(), &mut worker));
    assert_eq!(iot_worker_free(worker), 0);
    assert_eq!(iot_worker_free(worker), IOT_E_BAD_HANDLE, "double free");
    assert_eq!(iot_worker_flush(worker), IOT_E_BAD_HANDLE, "stale handle");
    assert_eq!(iot_worker_arm(0), IOT_E_BAD_HANDLE, "null handle");
    assert_eq!(
        iot_worker_flush(0xdead_beef_dead_beef),
        IOT_E_BAD_HANDLE,
        "garbage"
    );
    let mut out = [iot_completion::default(); 4];
    assert_eq!(
        iot_worker_drain(worker, out.as_mut_ptr(), 4),
        IOT_E_BAD_HANDLE
    );
}

#[test]
fn null_pointers_are_rejected_and_outputs_untouched() {
    assert_eq!(iot_worker_new(null(), null_mut()), IOT_E_NULL_POINTER);
    assert_eq!(iot_config_default(null_mut()), IOT_E_NULL_POINTER);
    let host = Host::new();
    assert_eq!(
        iot_worker_drain(host.worker, null_mut(), 8),
        IOT_E_NULL_POINTER
    );
    assert_eq!(iot_worker_drain(host.worker, null_mut(), 0), 0);
    let mut socket = 77;
    assert_eq!(
        iot_tcp_listen(host.worker, null(), 0, 0, 0, &mut socket),
        IOT_E_NULL_POINTER
    );
    assert_eq!(socket, 77);
    let bad_ip = std::ffi::CString::new("not-an-ip").unwrap();
    assert_eq!(
        iot_tcp_listen(host.worker, bad_ip.as_ptr(), 0, 0, 0, &mut socket),
        -libc::EINVAL
    );
    assert_eq!(
        iot_tcp_connect(host.worker, bad_ip.as_ptr(), 1, 1, 0),
        -libc::EINVAL
    );
    assert_eq!(
        iot_buffer_acquire(host.worker, null_mut()),
        IOT_E_NULL_POINTER
    );
}

#[test]
fn invalid_configs_are_rejected() {
    let mut worker = 0;
    for broken in [config(0, 1, 1), config(1, 1, 0), config(40_000, 1, 1)] {
        assert_eq!(iot_worker_new(&broken, &mut worker), -libc::EINVAL);
    }
    let mut flags = config(4, 4, 4096);
    flags.flags = 1 << 31;
    assert_eq!(iot_worker_new(&flags, &mut worker), -libc::EINVAL);
    assert_eq!(worker, 0);
}

#[test]
fn stale_socket_handles_are_rejected() {
    let host = Host::new();
    let (listener, _) = host.listen("127.0.0.1", 0);
    ok("close", iot_socket_close(host.worker, listener));
    assert_eq!(iot_socket_close(host.worker, listener), IOT_E_BAD_HANDLE);
    assert_eq!(
        iot_tcp_accept(host.worker, listener, 1, 0, 0),
        IOT_E_BAD_HANDLE
    );
    // The slot is reused by the next socket, but the old handle stays dead.
    let (again, _) = host.listen("127.0.0.1", 0);
    assert_ne!(again, listener);
    assert_eq!(
        iot_tcp_accept(host.worker, listener, 1, 0, 0),
        IOT_E_BAD_HANDLE
    );
    assert_eq!(iot_recv(host.worker, 0, 1, 0, 0), IOT_E_BAD_HANDLE);
}

#[test]
fn buffer_ownership_is_enforced() {
    let host = Host::with_config(&config(2, 2, 64));
    let mut id = 0;
    ok("acquire", iot_buffer_acquire(host.worker, &mut id));
    ok("release", iot_buffer_release(host.worker, id, 0));
    assert_eq!(
        iot_buffer_release(host.worker, id, 0),
        IOT_E_BAD_BUFFER,
        "double release"
    );
    assert_eq!(
        iot_buffer_release(host.worker, 0, 0),
        IOT_E_BAD_BUFFER,
        "kernel-owned receive buffer"
    );
    assert_eq!(
        iot_buffer_release(host.worker, 4, 0),
        IOT_E_BAD_BUFFER,
        "out of range"
    );
    let (listener, _) = host.listen("127.0.0.1", 0);
    ok("acquire", iot_buffer_acquire(host.worker, &mut id));
    assert_eq!(
        iot_send(host.worker, listener, id, 0, 1, 1, 0),
        IOT_E_WRONG_SOCKET_KIND
    );
    // A rejected send leaves the buffer with the host.
    ok(
        "release after rejected send",
        iot_buffer_release(host.worker, id, 0),
    );
    ok("acquire", iot_buffer_acquire(host.worker, &mut id));
    assert_eq!(
        iot_send(host.worker, 12345, id, 60, 8, 1, 0),
        IOT_E_BAD_HANDLE
    );
    ok("release", iot_buffer_release(host.worker, id, 0));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn every_code_has_a_message() {
    let mut small = [0 as std::ffi::c_char; 8];
    let full = iot_error_message(IOT_E_MEMLOCK, small.as_mut_ptr(), small.len());
    assert!(full > small.len(), "returns the full length");
    assert_eq!(small[7], 0, "truncated text stays NUL-terminated");
    assert_eq!(iot_error_message(IOT_E_MEMLOCK, null_mut(), 0), full);
    for code in [
        IOT_E_BAD_HANDLE,
        IOT_E_UNSUPPORTED,
        IOT_E_NULL_POINTER,
        IOT_E_BAD_BUFFER,
        IOT_E_PANIC,
        -libc::ETIMEDOUT,
    ] {
        let text = message(code);
        assert!(
            !text.is_empty() && text != "unknown result code",
            "{code}: {text}"
        );
    }
    assert!(message(IOT_E_UNSUPPORTED).contains("io_uring_disabled"));
}

#[test]
fn finalize_frees_without_blocking_and_tolerates_repeats() {
    let mut worker = 0;
    ok("new", iot_worker_new(null(), &mut worker));
    let ip = std::ffi::CString::new("127.0.0.1").unwrap();
    let mut listener = 0;
    ok(
        "listen",
        iot_tcp_listen(worker, ip.as_ptr(), 0, 0, 0, &mut listener),
    );
    ok(
        "accept",
        iot_tcp_accept(worker, listener, 1, IOT_OP_MULTISHOT, 0),
    );
    ok("flush", iot_worker_flush(worker));
    // The token is the handle itself, as Dart's NativeFinalizer passes it.
    iot_worker_finalize(worker as usize as *mut std::ffi::c_void);
    assert_eq!(iot_worker_flush(worker), IOT_E_BAD_HANDLE, "stale at once");
    assert_eq!(iot_worker_free(worker), IOT_E_BAD_HANDLE);
    iot_worker_finalize(worker as usize as *mut std::ffi::c_void);
    iot_worker_finalize(std::ptr::null_mut());
    iot_worker_finalize(0xdead_beef as *mut std::ffi::c_void);
}
