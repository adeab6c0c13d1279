//! Handles are unique in the process: a socket, file or payload handle names its
//! worker, and every other worker (and a freed one) answers `IOT_E_BAD_HANDLE`.

mod support;

use std::net::TcpStream;

use support::*;

/// Opens `path` (created if missing) on `host` and returns the file handle.
fn open_file(host: &mut Host, path: &std::path::Path, tag: u64) -> u64 {
    let flags = IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE;
    let path = cstr(path.to_str().expect("UTF-8 temp path"));
    ok(
        "open",
        iot_file_open(host.worker, path.as_ptr(), flags, 0o600, tag, 0),
    );
    let c = host.next_tagged(tag);
    assert_eq!(c.result, 0, "{}", message(c.result));
    c.handle
}

/// Every socket call of `worker` on `socket` (another worker's) is refused.
fn refused_everywhere(worker: u64, socket: u64) {
    let mut port = 0;
    let none = std::ptr::null_mut();
    let calls = [
        iot_recv(worker, socket, 1, 0, 0),
        iot_accept(worker, socket, 1, IOT_OP_MULTISHOT, 0),
        iot_socket_shutdown(worker, socket, IOT_SHUTDOWN_BOTH, 1),
        iot_socket_address(worker, socket, IOT_ADDRESS_LOCAL, none, 0, &mut port),
        iot_socket_set_option(worker, socket, IOT_OPTION_RECV_BUFFER, 65536),
        iot_socket_close(worker, socket),
    ];
    assert_eq!(
        calls, [IOT_E_BAD_HANDLE; 6],
        "calls of {worker:#x} on {socket:#x}"
    );
}

#[test]
fn socket_handles_name_their_worker() {
    let (first, second) = (Host::new(), Host::new());
    let (mine, port) = first.listen("127.0.0.1", 0);
    let (theirs, _) = second.listen("127.0.0.1", 0);
    assert_ne!(
        mine, theirs,
        "each worker's first socket has its own handle"
    );
    refused_everywhere(second.worker, mine);
    refused_everywhere(first.worker, theirs);
    // Both listeners are still open and working.
    assert_eq!(first.port(mine), port);
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("listener still open");
    ok("close", iot_socket_close(second.worker, theirs));
    ok("close", iot_socket_close(first.worker, mine));
}

#[test]
fn file_handles_name_their_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut first, mut second) = (Host::new(), Host::new());
    let mine = open_file(&mut first, &dir.path().join("first"), 1);
    let theirs = open_file(&mut second, &dir.path().join("second"), 1);
    assert_ne!(mine, theirs);
    for (worker, file) in [(second.worker, mine), (first.worker, theirs)] {
        assert_eq!(iot_file_sync(worker, file, 0, 2, 0), IOT_E_BAD_HANDLE);
        assert_eq!(iot_file_close(worker, file), IOT_E_BAD_HANDLE);
    }
    // A write of the second worker's own buffer to the first's file: refused, and the
    // buffer stays with the second worker's host.
    let id = second.filled_buffer(b"data");
    let write = iot_file_write(second.worker, mine, id, 0, 4, 0, 3, 0);
    assert_eq!(write, IOT_E_BAD_HANDLE);
    second.release(id as u16);
    ok("close", iot_file_close(first.worker, mine));
    ok("close", iot_file_close(second.worker, theirs));
}

#[test]
fn payload_handles_name_their_holder() {
    let (first, second) = (Host::new(), Host::new());
    let mut payload = 0;
    ok("acquire", iot_payload_acquire(first.worker, &mut payload));
    assert_eq!(
        iot_payload_release(second.worker, payload),
        IOT_E_BAD_HANDLE
    );
    if iot_messaging_supported() == 1 {
        let sent = iot_message_send_payload(second.worker, first.worker, 1, payload, 1);
        assert_eq!(sent, IOT_E_BAD_HANDLE);
    }
    ok("release", iot_payload_release(first.worker, payload));
    assert_eq!(
        iot_payload_release(first.worker, payload),
        IOT_E_BAD_BUFFER,
        "a released payload is stale, not foreign"
    );
}

#[test]
fn a_freed_workers_handles_are_bad_everywhere() {
    let survivor = Host::new();
    let (freed, listener) = {
        let gone = Host::new();
        let (listener, _) = gone.listen("127.0.0.1", 0);
        (gone.worker, listener)
    }; // dropping the Host frees its worker
    refused_everywhere(freed, listener);
    refused_everywhere(survivor.worker, listener);
    let mut payload = 0;
    assert_eq!(iot_payload_acquire(freed, &mut payload), IOT_E_BAD_HANDLE);
}
