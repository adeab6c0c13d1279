//! Stopping and freeing workers with messages in flight. These tests act on the whole
//! process (a broadcast reaches every worker, fd counts are per process), so they live
//! in their own test binary and take turns.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::thread;

use support::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn take_turn() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `body`, then checks that the process holds no more file descriptors and no
/// more payloads than before.
fn leaves_nothing_behind(body: impl FnOnce()) {
    let (fds, payloads) = (open_fds(), iot_payloads_in_use());
    body();
    assert_eq!(open_fds(), fds, "file descriptors leaked");
    assert_eq!(iot_payloads_in_use(), payloads, "payloads leaked");
}

/// Messages the sender has reported as sent before the broadcast goes out.
const SENT_BEFORE_STOP: usize = 2_000;
/// Upper bound on messages the sender queues, should the stop request never come.
const SEND_LIMIT: u64 = 1_000_000;
const STOP_VALUE: u32 = 7;

#[test]
fn stop_request_loses_no_message_reported_as_sent() {
    require_messaging!();
    let _turn = take_turn();
    let mut sender = Host::new();
    let mut receiver = Host::new();
    let target = receiver.worker;

    let receive = thread::spawn(move || {
        let mut received = Vec::new();
        let record = |received: &mut Vec<u64>, c: &iot_completion| {
            assert_eq!(c.kind, IOT_KIND_MESSAGE, "unexpected {c:?}");
            received.push(c.tag);
        };
        loop {
            let c = receiver.next_where(|_| true);
            if c.kind == IOT_KIND_STOP_REQUESTED {
                assert_eq!(c.result as u32, STOP_VALUE);
                break;
            }
            record(&mut received, &c);
        }
        receiver.stop_and_drain(|c| record(&mut received, c));
        assert_eq!(receiver.stats().ops_in_flight, 0);
        received
    });

    let (going, wait_going) = mpsc::channel();
    let send = thread::spawn(move || {
        let mut reported = Vec::new();
        let mut refused = 0;
        let record = |reported: &mut Vec<u64>, c: &iot_completion| {
            assert_eq!(c.kind, IOT_KIND_MESSAGE_SENT, "unexpected {c:?}");
            if c.result == 0 {
                reported.push(c.tag);
            }
        };
        let mut seq = 0;
        loop {
            // Keep messages in flight until the stop request arrives.
            for _ in 0..16 {
                if seq < SEND_LIMIT {
                    match sender.message(target, seq, 0) {
                        IOT_E_WORKER_GONE => refused += 1,
                        code => {
                            ok("send", code);
                        }
                    }
                    seq += 1;
                }
            }
            let c = sender.next_where(|_| true);
            if c.kind == IOT_KIND_STOP_REQUESTED {
                break;
            }
            record(&mut reported, &c);
            if reported.len() == SENT_BEFORE_STOP {
                let _ = going.send(());
            }
        }
        sender.stop_and_drain(|c| record(&mut reported, c));
        assert_eq!(sender.stats().ops_in_flight, 0);
        (reported, refused)
    });

    wait_going
        .recv_timeout(DEADLINE)
        .expect("sender never got going");
    assert_eq!(
        iot_transport_request_stop(STOP_VALUE),
        2,
        "both workers asked"
    );
    let (reported, refused) = send.join().expect("sender thread");
    let received = receive.join().expect("receiver thread");
    assert!(reported.len() >= SENT_BEFORE_STOP);
    assert!(
        received == reported,
        "received {} messages, {} reported as sent ({} refused after the stop)",
        received.len(),
        reported.len(),
        refused
    );
}

#[test]
fn stop_request_reaches_only_live_workers() {
    require_messaging!();
    let _turn = take_turn();
    assert_eq!(iot_transport_request_stop(0), 0, "no worker is left over");
    let mut live = Host::new();
    let stopped = Host::new();
    ok("stop", iot_worker_stop(stopped.worker));
    assert_eq!(iot_transport_request_stop(1), 1);
    let c = live.next_where(|_| true);
    assert_eq!((c.kind, c.result), (IOT_KIND_STOP_REQUESTED, 1));
}

/// Tag of `accepted`'s accept, apart from the tags tests give their messages.
const ACCEPT_TAG: u64 = u64::MAX;

/// A connected pair: (socket on `host`, the std peer).
fn accepted(host: &mut Host) -> (u64, TcpStream) {
    let (listener, port) = host.listen("127.0.0.1", 0);
    ok(
        "accept",
        iot_tcp_accept(host.worker, listener, ACCEPT_TAG, 0, 0),
    );
    host.flush();
    let peer = TcpStream::connect(("127.0.0.1", port)).unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let socket = host.next_tagged(ACCEPT_TAG).handle;
    ok("close listener", iot_socket_close(host.worker, listener));
    (socket, peer)
}

#[test]
fn handoff_to_a_worker_freed_unprocessed_closes_the_socket() {
    require_messaging!();
    let _turn = take_turn();
    leaves_nothing_behind(|| {
        let mut acceptor = Host::new();
        let receiver = Host::new();
        let (socket, mut peer) = accepted(&mut acceptor);
        ok(
            "hand over",
            iot_socket_handoff(acceptor.worker, socket, receiver.worker, 2),
        );
        let c = acceptor.next_tagged(2);
        assert_eq!((c.kind, c.result), (IOT_KIND_MESSAGE_SENT, 0));
        drop(receiver); // freed with the hand-off still in its queue
        assert_eq!(
            peer.read(&mut [0u8; 1]).unwrap(),
            0,
            "the socket was not closed"
        );
        assert_eq!(acceptor.stats().sockets_open, 0);
    });
}

#[test]
fn parcels_posted_after_the_target_was_freed_come_back() {
    require_messaging!();
    let _turn = take_turn();
    leaves_nothing_behind(|| {
        let mut sender = Host::new();
        let (socket, mut peer) = accepted(&mut sender);
        let mut payload = 0;
        ok("acquire", iot_payload_acquire(sender.worker, &mut payload));
        let target = Host::new();
        ok(
            "hand over",
            iot_socket_handoff(sender.worker, socket, target.worker, 3),
        );
        ok(
            "send payload",
            iot_message_send_payload(sender.worker, target.worker, 4, payload, 1),
        );
        // Freed before the sender even submitted: the messages land in a queue nobody
        // will drain, and the sender must get both parcels back.
        drop(target);
        sender.flush();
        let back = sender.next_tagged(3);
        assert_eq!(
            (back.kind, back.result),
            (IOT_KIND_MESSAGE_SENT, IOT_E_WORKER_GONE)
        );
        let id = sender.filled_buffer(b"still mine");
        ok(
            "send",
            iot_send(sender.worker, back.handle, id, 0, 10, 5, 0),
        );
        assert_eq!(sender.next_tagged(5).result, 10);
        let mut text = [0u8; 10];
        peer.read_exact(&mut text).unwrap();
        assert_eq!(&text, b"still mine");
        let payload_back = sender.next_tagged(4);
        assert_eq!(payload_back.result, IOT_E_WORKER_GONE);
        ok(
            "release",
            iot_payload_release(sender.worker, payload_back.handle),
        );
        ok("close", iot_socket_close(sender.worker, back.handle));
        peer.write_all(b"x").ok();
    });
}

#[test]
fn freeing_without_stop_reclaims_everything_in_flight() {
    require_messaging!();
    let _turn = take_turn();
    leaves_nothing_behind(|| {
        let mut sender = Host::new();
        let receiver = Host::new();
        let mut peers = Vec::new();
        for round in 0..20u64 {
            let (socket, peer) = accepted(&mut sender);
            peers.push(peer);
            ok(
                "hand over",
                iot_socket_handoff(sender.worker, socket, receiver.worker, round),
            );
            let mut payload = 0;
            ok("acquire", iot_payload_acquire(sender.worker, &mut payload));
            ok(
                "payload",
                iot_message_send_payload(sender.worker, receiver.worker, round, payload, 8),
            );
            ok("message", sender.message(receiver.worker, round, 0));
        }
        // And one payload the receiver's host holds when it is freed.
        let mut held = 0;
        ok("acquire", iot_payload_acquire(receiver.worker, &mut held));
        sender.flush();
        drop(receiver);
        for _ in 0..60 {
            let c = sender.next_where(|c| c.kind == IOT_KIND_MESSAGE_SENT);
            assert_eq!((c.result, c.handle), (0, 0));
        }
        for mut peer in peers {
            assert_eq!(peer.read(&mut [0u8; 1]).unwrap(), 0, "socket left open");
        }
    });
}
