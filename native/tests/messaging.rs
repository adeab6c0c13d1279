//! Messages between workers (IORING_OP_MSG_RING) through the C ABI, each worker driven
//! by its own thread like an isolate drives its own.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;

use support::echo::EchoSessions;
use support::messaging::*;
use support::*;

fn value_of(seq: u64) -> u32 {
    (seq as u32).wrapping_mul(2_654_435_761)
}

const PING_PONG: u64 = 100_000;
/// Pings in flight at once: the pong side must see them in order despite batching.
const PING_WINDOW: u64 = 64;

#[test]
fn ping_pong_100k_in_order_between_two_threads() {
    require_messaging!();
    let (pinger, ponger) = (Host::new(), Host::new());
    let (ping, pong) = (pinger.worker, ponger.worker);
    let pong_thread = thread::spawn(move || ping_pong_side(ponger, ping, false));
    let pinger = ping_pong_side(pinger, pong, true);
    let ponger = pong_thread.join().expect("pong thread");
    for host in [&pinger, &ponger] {
        assert_eq!(host.stats().ops_in_flight, 0);
    }
}

/// One side of the ping-pong: the pinger keeps `PING_WINDOW` pings in flight, the
/// ponger answers each; both check that what they receive comes in order and that
/// everything they sent was reported as sent.
fn ping_pong_side(mut host: Host, peer: u64, pinger: bool) -> Host {
    let (mut sent, mut next, mut reported) = (0, 0, 0);
    while next < PING_PONG || reported < PING_PONG {
        while pinger && sent < PING_PONG && sent - next < PING_WINDOW {
            ok("ping", host.message(peer, sent, value_of(sent)));
            sent += 1;
        }
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_MESSAGE => {
                let got = (c.tag, c.result as u32);
                assert_eq!(got, (next, value_of(next)), "out of order");
                if !pinger {
                    ok("pong", host.message(peer, c.tag, c.result as u32));
                }
                next += 1;
            }
            IOT_KIND_MESSAGE_SENT => {
                assert_eq!(c.result, 0, "not sent: {}", message(c.result));
                reported += 1;
            }
            other => panic!("unexpected completion kind {other}"),
        }
    }
    host
}

const PER_PAIR: u64 = 5_000;

/// Every worker sends `PER_PAIR` messages to every other one, interleaved, with no flow
/// control (receive queues overflow into the kernel's list); each receiver checks that
/// every sender's sequence arrives complete and in order.
fn all_to_all(workers: usize) {
    let hosts: Vec<Host> = (0..workers).map(|_| Host::new()).collect();
    let ids: Vec<u64> = hosts.iter().map(|h| h.worker).collect();
    let threads: Vec<_> = hosts
        .into_iter()
        .enumerate()
        .map(|(me, mut host)| {
            let peers: Vec<u64> = ids.iter().copied().filter(|&id| id != ids[me]).collect();
            thread::spawn(move || {
                let total = PER_PAIR * peers.len() as u64;
                let mut next_from: HashMap<u64, u64> = HashMap::new();
                let (mut sent, mut received, mut reported) = (0, 0, 0);
                while sent < total || received < total || reported < total {
                    for _ in 0..32 {
                        if sent == total {
                            break;
                        }
                        let peer = peers[(sent % peers.len() as u64) as usize];
                        let seq = sent / peers.len() as u64;
                        let tag = (me as u64) << 32 | seq;
                        ok("send", host.message(peer, tag, value_of(seq)));
                        sent += 1;
                    }
                    let c = host.next_where(|_| true);
                    match c.kind {
                        IOT_KIND_MESSAGE => {
                            let (from, seq) = (c.tag >> 32, c.tag & 0xffff_ffff);
                            let next = next_from.entry(from).or_insert(0);
                            assert_eq!(seq, *next, "from sender {from}: out of order");
                            assert_eq!(c.result as u32, value_of(seq));
                            *next += 1;
                            received += 1;
                        }
                        IOT_KIND_MESSAGE_SENT => {
                            assert_eq!(c.result, 0, "not sent: {}", message(c.result));
                            reported += 1;
                        }
                        other => panic!("unexpected completion kind {other}"),
                    }
                }
                assert!(next_from.values().all(|&n| n == PER_PAIR));
                assert_eq!(host.stats().ops_in_flight, 0);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker thread");
    }
}

#[test]
fn two_workers_exchange_in_order() {
    require_messaging!();
    all_to_all(2);
}

#[test]
fn four_workers_all_to_all_in_order() {
    require_messaging!();
    all_to_all(4);
}

#[test]
fn message_to_self_arrives() {
    require_messaging!();
    let mut host = Host::new();
    ok("send", host.message(host.worker, u64::MAX, u32::MAX));
    let c = host.next_where(|c| c.kind == IOT_KIND_MESSAGE);
    // Tags that look like internal sentinels are still just tags.
    assert_eq!((c.tag, c.result as u32, c.handle), (u64::MAX, u32::MAX, 0));
    assert_eq!(host.next_tagged(u64::MAX).kind, IOT_KIND_MESSAGE_SENT);
}

#[test]
fn payload_moves_byte_exact_and_is_released_once() {
    require_messaging!();
    let mut sender = Host::new();
    let mut receiver = Host::new();
    let (_, size, _) = payload_pool();
    let len = size.min(40_000);
    let data = pattern(len as usize, 3);
    let mut payload = 0;
    ok("acquire", iot_payload_acquire(sender.worker, &mut payload));
    payload_bytes(payload, data.len()).copy_from_slice(&data);
    assert_eq!(
        iot_message_send_payload(sender.worker, receiver.worker, 1, payload, size + 1),
        -libc::EINVAL
    );
    ok(
        "send payload",
        iot_message_send_payload(sender.worker, receiver.worker, 9, payload, len),
    );
    // The payload left with the message: the sender's handle is stale at once.
    assert_eq!(
        iot_payload_release(sender.worker, payload),
        IOT_E_BAD_BUFFER
    );
    assert_eq!(
        iot_message_send_payload(sender.worker, receiver.worker, 9, payload, len),
        IOT_E_BAD_BUFFER
    );
    sender.flush();
    let c = receiver.next_tagged(9);
    assert_eq!((c.kind, c.result as u32), (IOT_KIND_PAYLOAD, len));
    assert_ne!(
        c.handle, payload,
        "the receiver holds it under a new handle"
    );
    assert!(
        payload_bytes(c.handle, len as usize) == &data[..],
        "payload bytes differ"
    );
    // Only its holder may release it, exactly once: another worker's handle is a bad
    // handle there.
    assert_eq!(
        iot_payload_release(sender.worker, c.handle),
        IOT_E_BAD_HANDLE
    );
    ok("release", iot_payload_release(receiver.worker, c.handle));
    assert_eq!(
        iot_payload_release(receiver.worker, c.handle),
        IOT_E_BAD_BUFFER
    );
    let sent = sender.next_tagged(9);
    assert_eq!(
        (sent.kind, sent.result, sent.handle),
        (IOT_KIND_MESSAGE_SENT, 0, 0)
    );
}

#[test]
fn payload_pool_rejects_bad_geometry_and_late_configuration() {
    assert_eq!(iot_payload_pool_configure(0, 16), -libc::EINVAL);
    assert_eq!(iot_payload_pool_configure(4096, 0), -libc::EINVAL);
    payload_pool();
    assert_eq!(iot_payload_pool_configure(4096, 16), -libc::EBUSY);
    let mut payload = 0;
    assert_eq!(iot_payload_acquire(0, &mut payload), IOT_E_BAD_HANDLE);
    assert_eq!(payload, 0, "outputs are written only on success");
}

#[test]
fn messages_to_gone_or_stopped_workers_fail_clearly() {
    require_messaging!();
    let sender = Host::new();
    let freed = Host::new().worker; // dropped: freed at once
    assert_eq!(sender.message(freed, 1, 1), IOT_E_WORKER_GONE);
    assert_eq!(sender.message(1 << 40, 1, 1), IOT_E_WORKER_GONE);
    assert_eq!(
        iot_message_send(freed, sender.worker, 1, 1),
        IOT_E_BAD_HANDLE,
        "a bad sender is a bad handle, not a gone target"
    );
    assert!(message(IOT_E_WORKER_GONE).contains("gone"));

    let mut stopped = Host::new();
    stopped.stop_and_drain(|c| panic!("unexpected completion {c:?}"));
    assert_eq!(sender.message(stopped.worker, 1, 1), IOT_E_WORKER_GONE);
    ok("stop twice", iot_worker_stop(stopped.worker));

    // A failed send keeps what it would have carried.
    let mut payload = 0;
    ok("acquire", iot_payload_acquire(sender.worker, &mut payload));
    assert_eq!(
        iot_message_send_payload(sender.worker, freed, 1, payload, 1),
        IOT_E_WORKER_GONE
    );
    ok("release", iot_payload_release(sender.worker, payload));
    assert_eq!(sender.stats().ops_in_flight, 0);
}

#[test]
fn armed_idle_worker_is_woken_by_a_message() {
    require_messaging!();
    let sender = Host::new();
    let mut idle = Host::new();
    ok(
        "notifier",
        iot_worker_set_notifier(idle.worker, Some(record_wake)),
    );
    assert_eq!(idle.poll(), 0);
    ok("arm", iot_worker_arm(idle.worker));
    ok("send", sender.message(idle.worker, 5, 55));
    sender.flush();
    assert!(
        wait_woken(idle.worker, DEADLINE),
        "the message did not wake the armed worker"
    );
    let c = idle.next_where(|_| true);
    assert_eq!((c.kind, c.tag, c.result), (IOT_KIND_MESSAGE, 5, 55));
    ok("notifier off", iot_worker_set_notifier(idle.worker, None));
}

const CONNECTIONS: usize = 1_000;
const CLIENT_THREADS: usize = 10;
/// Tag of the acceptor's last message to each server: no more connections follow.
const NO_MORE: u64 = u64::MAX;

#[test]
fn acceptor_hands_1000_connections_to_3_servers() {
    require_messaging!();
    let acceptor = Host::new();
    let (listener, port) = acceptor.listen("127.0.0.1", 0);
    let servers: Vec<Host> = (0..3).map(|_| Host::new()).collect();
    let server_ids: Vec<u64> = servers.iter().map(|h| h.worker).collect();
    let server_threads: Vec<_> = servers
        .into_iter()
        .map(|host| thread::spawn(move || serve_handed_over(host)))
        .collect();
    let accept_thread = thread::spawn(move || hand_over(acceptor, listener, &server_ids));
    let clients: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| thread::spawn(move || echo_clients(port, t)))
        .collect();
    for c in clients {
        c.join().expect("client thread");
    }
    accept_thread.join().expect("acceptor thread");
    let mut served = Vec::new();
    for t in server_threads {
        let (count, stats) = t.join().expect("server thread");
        assert_eq!(
            (
                stats.sockets_open,
                stats.ops_in_flight,
                stats.buffers_outstanding
            ),
            (0, 0, 0)
        );
        served.push(count);
    }
    assert_eq!(served.iter().sum::<usize>(), CONNECTIONS);
    assert!(
        served.iter().all(|&n| n > 0),
        "least-loaded left a server idle: {served:?}"
    );
}

/// Accepts `CONNECTIONS` connections and hands each to the least-loaded server.
fn hand_over(mut host: Host, listener: u64, servers: &[u64]) {
    ok(
        "accept",
        iot_tcp_accept(host.worker, listener, 0, IOT_OP_MULTISHOT, 0),
    );
    let (mut handed, mut reported) = (0, 0);
    while reported < CONNECTIONS {
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_ACCEPT => {
                assert_eq!(c.result, 0, "accept: {}", message(c.result));
                let mut target = 0;
                ok(
                    "pick",
                    iot_worker_least_loaded(servers.as_ptr(), servers.len() as u32, &mut target),
                );
                ok(
                    "hand over",
                    iot_socket_handoff(host.worker, c.handle, target, handed),
                );
                handed += 1;
            }
            IOT_KIND_MESSAGE_SENT => {
                assert_eq!(c.result, 0, "hand-off: {}", message(c.result));
                assert_eq!(c.handle, 0);
                reported += 1;
            }
            other => panic!("unexpected completion kind {other}"),
        }
    }
    // Messages from one worker arrive in order: this comes after every hand-off.
    for &server in servers {
        ok("no more", host.message(server, NO_MORE, 0));
    }
    for _ in servers {
        assert_eq!(host.next_tagged(NO_MORE).result, 0);
    }
    ok("close listener", iot_socket_close(host.worker, listener));
    assert_eq!(
        host.next_where(|c| c.kind == IOT_KIND_ACCEPT).result,
        -libc::ECANCELED
    );
    assert_eq!(
        host.stats().sockets_open,
        0,
        "handed-over sockets left behind"
    );
}

/// Echoes on every socket handed over until told no more come and all have closed.
fn serve_handed_over(mut host: Host) -> (usize, iot_stats) {
    let mut sessions = EchoSessions::default();
    let mut no_more = false;
    while !(no_more && sessions.open() == 0) {
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_SOCKET => {
                assert_eq!(c.result, 0);
                sessions.start(host.worker, c.handle);
            }
            IOT_KIND_MESSAGE if c.tag == NO_MORE => no_more = true,
            _ => assert!(
                sessions.on_completion(host.worker, &c),
                "unexpected completion {c:?}"
            ),
        }
    }
    let closed = sessions.closed;
    (closed, sessions.finish(&mut host))
}

fn echo_clients(port: u16, thread_index: usize) {
    let per_thread = CONNECTIONS / CLIENT_THREADS;
    let mut streams: Vec<(TcpStream, Vec<u8>)> = (0..per_thread)
        .map(|i| {
            let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let seed = (thread_index * per_thread + i) as u32;
            (stream, pattern(100 + (seed as usize % 900), seed))
        })
        .collect();
    for (stream, data) in &mut streams {
        stream.write_all(data).unwrap();
    }
    for (stream, data) in &mut streams {
        let mut back = vec![0u8; data.len()];
        stream.read_exact(&mut back).unwrap();
        assert!(back == *data, "echoed bytes differ");
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        // The server's FIN after its echoes: end of stream, nothing more.
        assert_eq!(stream.read(&mut [0u8; 1]).unwrap(), 0);
    }
}

#[test]
fn busy_or_wrong_sockets_are_not_handed_over() {
    require_messaging!();
    let mut host = Host::new();
    let target = Host::new();
    let (listener, port) = host.listen("127.0.0.1", 0);
    assert_eq!(
        iot_socket_handoff(host.worker, listener, target.worker, 1),
        IOT_E_WRONG_SOCKET_KIND
    );
    ok("accept", iot_tcp_accept(host.worker, listener, 2, 0, 0));
    host.flush();
    let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let socket = host.next_tagged(2).handle;
    ok("recv", iot_recv(host.worker, socket, 3, 0, 0));
    assert_eq!(
        iot_socket_handoff(host.worker, socket, target.worker, 4),
        -libc::EBUSY
    );
    assert_eq!(
        iot_socket_handoff(host.worker, socket, 1 << 40, 4),
        -libc::EBUSY,
        "checks of the socket come first"
    );
    ok("cancel", iot_cancel(host.worker, 3));
    assert_eq!(host.next_tagged(3).result, -libc::ECANCELED);
    assert_eq!(
        iot_socket_handoff(host.worker, socket, 1 << 40, 4),
        IOT_E_WORKER_GONE
    );
    // Still ours after the failed attempt.
    ok("close", iot_socket_close(host.worker, socket));
}
