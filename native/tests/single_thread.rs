//! Workers made with `IOT_CONFIG_SINGLE_THREAD`: one thread makes, drives and frees
//! each, and the kernel runs its completion work when that thread waits. Every test
//! checks for leaked descriptors, which also runs them one at a time.

mod support;

use std::io::{Read, Write};
use std::thread;

use support::*;

fn single_thread() -> iot_config {
    let mut config = iot_config::default();
    ok("config", iot_config_default(&mut config));
    config.flags = IOT_CONFIG_SINGLE_THREAD;
    config
}

#[test]
fn a_single_thread_worker_echoes_and_leaves_nothing_behind() {
    let _fds = fd_check();
    let mut host = Host::with_config(&single_thread());
    let (socket, mut peer) = host.connected_pair();
    let client = thread::spawn(move || {
        peer.write_all(b"ping").unwrap();
        let mut echoed = [0; 4];
        peer.read_exact(&mut echoed).unwrap();
        echoed
    });
    let received = host.recv_exact(socket, 4, 3);
    host.send_all(socket, &received, 4);
    assert_eq!(&client.join().unwrap(), b"ping");
    ok("close", iot_socket_close(host.worker, socket));
    let stats = host.stats();
    assert_eq!(
        (stats.sockets_open, stats.buffers_outstanding),
        (0, 0),
        "{stats:?}"
    );
}

#[test]
fn another_thread_is_refused_with_a_clear_error_and_the_worker_goes_on() {
    let _fds = fd_check();
    let mut host = Host::with_config(&single_thread());
    let worker = host.worker;
    let refused = thread::spawn(move || {
        let mut stats = iot_stats::default();
        [
            iot_worker_flush(worker),
            iot_worker_wait(worker, 1),
            iot_worker_stats(worker, &mut stats),
            iot_recv(worker, 1, 1, IOT_OP_MULTISHOT, 0),
            iot_worker_free(worker),
        ]
    })
    .join()
    .unwrap();
    assert_eq!(refused, [IOT_E_WRONG_THREAD; 5]);
    assert!(message(IOT_E_WRONG_THREAD).contains("single-thread worker"));
    // Still there, and still served on its own thread.
    let (socket, mut peer) = host.connected_pair();
    peer.write_all(b"after").unwrap();
    assert_eq!(host.recv_exact(socket, 5, 3), b"after");
}

unsafe extern "C" fn never_called(_worker: u64) {}

#[test]
fn no_notifier_watches_a_single_thread_worker() {
    let _fds = fd_check();
    let host = Host::with_config(&single_thread());
    assert_eq!(
        iot_worker_set_notifier(host.worker, Some(never_called)),
        -libc::EINVAL
    );
    ok("no notifier", iot_worker_set_notifier(host.worker, None));
}

#[test]
fn messages_from_other_threads_wake_a_single_thread_worker_that_waits() {
    // First: the messaging probe opens a ring of its own for a moment.
    let _fds = fd_check();
    require_messaging!();
    const MESSAGES: u64 = 100;
    let mut host = Host::with_config(&single_thread());
    let target = host.worker;
    let sender = thread::spawn(move || {
        let mut other = Host::new();
        for tag in 0..MESSAGES {
            ok("message", other.message(target, tag, tag as u32 * 3));
            let sent = other.next_where(|c| c.kind == IOT_KIND_MESSAGE_SENT);
            assert_eq!(sent.result, 0, "{}", message(sent.result));
        }
    });
    for tag in 0..MESSAGES {
        let c = host.next_where(|c| c.kind == IOT_KIND_MESSAGE);
        assert_eq!((c.tag, c.result as u32), (tag, tag as u32 * 3));
    }
    sender.join().unwrap();
}

#[test]
fn a_socket_handed_to_a_single_thread_worker_freed_before_it_waited_is_closed() {
    let _fds = fd_check();
    require_messaging!();
    let mut acceptor = Host::new();
    let receiver = Host::with_config(&single_thread());
    let (socket, mut peer) = acceptor.connected_pair();
    ok(
        "hand over",
        iot_socket_handoff(acceptor.worker, socket, receiver.worker, 2),
    );
    let sent = acceptor.next_tagged(2);
    assert_eq!((sent.kind, sent.result), (IOT_KIND_MESSAGE_SENT, 0));
    // Posted into the receiver's ring only when its thread enters the kernel: the
    // free must, or the socket stays open and parked for good.
    drop(receiver);
    let read = loop {
        match peer.read(&mut [0u8; 1]) {
            // The ring's teardown may interrupt this thread's next blocking call.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    assert!(
        matches!(read, Ok(0)),
        "the socket handed over stayed open: {read:?}"
    );
}
