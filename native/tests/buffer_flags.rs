//! `IOT_COMPLETION_BUFFERS_RETURNED`: a completion says when the host buffers its
//! operation borrowed are back in the free pool, so the host need not infer it from
//! the kind: on success and failure, after a cancel or a close too.

mod support;

use std::io::Read;

use support::*;

fn returned(c: &iot_completion) -> bool {
    c.flags & IOT_COMPLETION_BUFFERS_RETURNED != 0
}

#[test]
fn sends_say_their_buffers_returned_and_receives_do_not() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();

    let id = host.filled_buffer(b"hello");
    ok("send", iot_send(host.worker, socket, id, 0, 5, 1, 0));
    let c = host.next_tagged(1);
    assert_eq!((c.kind, c.result), (IOT_KIND_SEND, 5));
    assert!(returned(&c), "a send completion returns its buffer");
    let mut echo = [0u8; 5];
    peer.read_exact(&mut echo).unwrap();

    std::io::Write::write_all(&mut peer, b"back").unwrap();
    ok("recv", iot_recv(host.worker, socket, 2, 0, 0));
    let c = host.next_tagged(2);
    assert_eq!((c.kind, c.result), (IOT_KIND_RECV, 4));
    assert!(c.flags & IOT_COMPLETION_BUFFER != 0);
    assert!(
        !returned(&c),
        "a receive hands a buffer over, it returns none"
    );
    host.release(c.buffer_id);

    ok(
        "shutdown",
        iot_socket_shutdown(host.worker, socket, IOT_SHUTDOWN_WRITE, 3),
    );
    assert_eq!(host.next_tagged(3).result, 0);
    let id = host.filled_buffer(b"late");
    ok("send", iot_send(host.worker, socket, id, 0, 4, 4, 0));
    let c = host.next_tagged(4);
    assert_eq!((c.kind, c.result), (IOT_KIND_SEND, -libc::EPIPE));
    assert!(returned(&c), "a failed send returns its buffer too");
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn file_writes_say_their_buffers_returned() {
    let dir = tempfile::tempdir().unwrap();
    let path = cstr(dir.path().join("f").to_str().unwrap());
    let mut host = Host::new();
    let flags = IOT_OPEN_WRITE | IOT_OPEN_CREATE;
    ok(
        "open",
        iot_file_open(host.worker, path.as_ptr(), flags, 0o644, 1, 0),
    );
    let c = host.next_tagged(1);
    assert_eq!(c.result, 0, "open: {}", message(c.result));
    let file = c.handle;

    let id = host.filled_buffer(b"data");
    ok(
        "write",
        iot_file_write(host.worker, file, id, 0, 4, 0, 2, 0),
    );
    let c = host.next_tagged(2);
    assert_eq!((c.kind, c.result), (IOT_KIND_FILE_WRITE, 4));
    assert!(returned(&c), "a file write returns its buffer");
    ok("close", iot_file_close(host.worker, file));
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// Writes queued behind a read that waits in the kernel (an empty FIFO, at the file
/// position): one cancelled, one ended by the close. Both give their buffers back, and
/// say so; the read hands its buffer to the host instead.
#[test]
fn cancelled_and_closed_writes_say_their_buffers_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = Host::new();
    let fifo = host.empty_fifo(dir.path());
    let mut read = 0;
    ok("acquire", iot_buffer_acquire(host.worker, &mut read));
    let at = IOT_OFFSET_CURRENT;
    ok(
        "read",
        iot_file_read(host.worker, fifo, read, 0, 16, at, 1, 0),
    );
    for tag in [2, 3] {
        let id = host.filled_buffer(b"queued");
        ok(
            "write",
            iot_file_write(host.worker, fifo, id, 0, 6, at, tag, 0),
        );
    }
    ok("cancel", iot_cancel(host.worker, 2));
    ok("close", iot_file_close(host.worker, fifo));
    for tag in [2, 3] {
        let c = host.next_tagged(tag);
        assert_eq!((c.kind, c.result), (IOT_KIND_FILE_WRITE, -libc::ECANCELED));
        assert!(returned(&c), "write {tag} returns its buffer");
    }
    let c = host.next_tagged(1);
    assert_eq!((c.kind, c.result), (IOT_KIND_FILE_READ, -libc::ECANCELED));
    assert!(c.flags & IOT_COMPLETION_BUFFER != 0 && !returned(&c));
    host.release(c.buffer_id);
    assert_eq!(host.stats().buffers_outstanding, 0);
}
