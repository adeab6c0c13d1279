//! TCP through the C ABI, against std::net peers.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use support::echo::EchoServer;
use support::*;

fn client(port: u16, ip: &str) -> TcpStream {
    let stream = TcpStream::connect((ip, port)).expect("connect to echo server");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
}

fn echo_once(ip: &str) {
    let server = EchoServer::start(ip);
    let mut stream = client(server.port, ip);
    stream.write_all(b"hello io_uring").unwrap();
    let mut buf = [0u8; 14];
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello io_uring");
    drop(stream);
    let stats = server.stop();
    assert_eq!(stats.sockets_open, 0);
    assert_eq!(stats.buffers_outstanding, 0);
}

#[test]
fn echo_round_trip_ipv4() {
    echo_once("127.0.0.1");
}

#[test]
fn echo_round_trip_ipv6() {
    echo_once("::1");
}

#[test]
fn echo_500_concurrent_connections() {
    EchoServer::start("127.0.0.1").echo_all_at_once(500, 1000);
}

#[test]
fn echo_8_mib_byte_exact() {
    let server = EchoServer::start("127.0.0.1");
    let payload = pattern(8 << 20, 7);
    let mut stream = client(server.port, "127.0.0.1");
    let mut writer = stream.try_clone().unwrap();
    let sent = payload.clone();
    let write_thread = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut back = Vec::with_capacity(payload.len());
    stream.read_to_end(&mut back).unwrap();
    write_thread.join().unwrap();
    assert_eq!(back.len(), payload.len());
    assert!(back == payload, "echoed bytes differ");
}

#[test]
fn connect_refused_leaves_no_socket() {
    let mut host = Host::new();
    host.connect_refused(1);
    let c = host.next_tagged(1);
    assert_eq!(
        (c.kind, c.result, c.handle),
        (IOT_KIND_CONNECT, -libc::ECONNREFUSED, 0)
    );
    assert_eq!(host.stats().sockets_open, 0);
}

#[test]
fn connect_times_out_when_backlog_is_full() {
    // A listener that never accepts, with a full accept queue, drops further SYNs.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let port = listener.local_addr().unwrap().as_socket().unwrap().port();
    let mut host = Host::new();
    let mut fillers = Vec::new();
    let mut timed_out = false;
    for tag in 1..=8 {
        ok("connect", host.connect("127.0.0.1", port, tag, 300));
        let c = host.next_tagged(tag);
        if c.result == -libc::ETIMEDOUT {
            timed_out = true;
            break;
        }
        assert_eq!(
            c.result,
            0,
            "unexpected connect result {}",
            message(c.result)
        );
        fillers.push(c.handle);
    }
    assert!(timed_out, "connect never timed out against a full backlog");
    assert_eq!(host.stats().sockets_open as usize, fillers.len());
}

#[test]
fn recv_times_out() {
    let mut host = Host::new();
    let (socket, _peer) = host.connected_pair();
    ok("recv", iot_recv(host.worker, socket, 5, 0, 100));
    let c = host.next_tagged(5);
    assert_eq!(
        (c.kind, c.result, c.flags),
        (IOT_KIND_RECV, -libc::ETIMEDOUT, 0)
    );
    assert_eq!(host.stats().ops_in_flight, 0);
}

#[test]
fn recv_with_timeout_gets_data_in_time() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    peer.write_all(b"quick").unwrap();
    ok("recv", iot_recv(host.worker, socket, 5, 0, 10_000));
    let c = host.next_tagged(5);
    assert_eq!(c.result, 5);
    assert_eq!(host.payload(&c), b"quick");
    host.give_back(&c);
    assert_eq!(host.stats().ops_in_flight, 0);
}

#[test]
fn multishot_with_timeout_is_rejected() {
    let mut host = Host::new();
    let (socket, _peer) = host.connected_pair();
    assert_eq!(
        iot_recv(host.worker, socket, 5, IOT_OP_MULTISHOT, 100),
        -libc::EINVAL
    );
}

#[test]
fn cancel_multishot_recv() {
    let mut host = Host::new();
    let (socket, _peer) = host.connected_pair();
    ok(
        "recv",
        iot_recv(host.worker, socket, 9, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    ok("cancel", iot_cancel(host.worker, 9));
    let c = host.next_tagged(9);
    assert_eq!(
        (c.result, c.flags & IOT_COMPLETION_MORE),
        (-libc::ECANCELED, 0)
    );
    assert_eq!(iot_cancel(host.worker, 9), -libc::ENOENT);
    assert_eq!(host.stats().ops_in_flight, 0);
}

#[test]
fn peer_reset_mid_stream() {
    let mut host = Host::new();
    let (socket, peer) = host.connected_pair();
    ok(
        "recv",
        iot_recv(host.worker, socket, 3, IOT_OP_MULTISHOT, 0),
    );
    (&peer).write_all(b"partial").unwrap();
    reset(peer);
    let mut received = Vec::new();
    let last = loop {
        let c = host.next_tagged(3);
        if c.flags & IOT_COMPLETION_BUFFER != 0 {
            received.extend_from_slice(host.payload(&c));
            host.give_back(&c);
        }
        if c.flags & IOT_COMPLETION_MORE == 0 {
            break c;
        }
    };
    assert!(b"partial".starts_with(&received));
    assert_eq!(last.result, -libc::ECONNRESET);
    // Sending on the reset connection fails cleanly and gives the buffer back.
    send_fails_after_reset(&mut host, socket);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// Closes `peer` with a reset (RST) instead of a FIN.
fn reset(peer: TcpStream) {
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
}

/// A one-byte send on `socket`, whose peer reset it, fails with ECONNRESET (or EPIPE
/// once the connection is closed).
fn send_fails_after_reset(host: &mut Host, socket: u64) {
    let id = host.filled_buffer(b"x");
    ok("send", iot_send(host.worker, socket, id, 0, 1, 4, 0));
    let sent = host.next_tagged(4);
    assert!(
        sent.result == -libc::EPIPE || sent.result == -libc::ECONNRESET,
        "send got {}",
        message(sent.result)
    );
}

#[test]
fn a_reset_a_send_met_first_still_fails_the_next_receive() {
    let mut host = Host::new();
    let (socket, peer) = host.connected_pair();
    reset(peer);
    // The send meets the reset first and takes its error: a receive after it finds
    // no error left to take, only the end of the stream.
    send_fails_after_reset(&mut host, socket);
    let received = first_receive(&mut host, socket);
    assert_eq!(
        received.result,
        -libc::ECONNRESET,
        "a reset connection's receive got {}, as if it had ended cleanly",
        message(received.result)
    );
}

#[test]
fn a_reset_a_send_with_a_timeout_met_first_still_fails_the_receive_beside_it() {
    let mut host = Host::new();
    let (socket, peer) = host.connected_pair();
    reset(peer);
    // One flush: the send's CQE comes first, but the send settles only with its
    // timer's CQE, after the receive's end of stream was read.
    let id = host.filled_buffer(b"x");
    ok("send", iot_send(host.worker, socket, id, 0, 1, 4, 5_000));
    ok("recv", iot_recv(host.worker, socket, 3, 0, 0));
    host.flush();
    let received = host.next_tagged(3);
    assert_eq!(host.next_tagged(4).result, -libc::ECONNRESET);
    assert_eq!(
        received.result,
        -libc::ECONNRESET,
        "a reset connection's receive got {}",
        message(received.result)
    );
}

#[test]
fn a_reset_met_by_a_send_partly_sent_still_fails_the_next_receive() {
    const SIZE: usize = 256 << 10;
    let mut host = Host::with_config(&config(64, 8, SIZE as u32));
    let (socket, peer) = host.stuck_send(SIZE, 4);
    host.flush();
    let mut arrived = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&peer),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let ready = unsafe { libc::poll(&mut arrived, 1, DEADLINE.as_millis() as i32) };
    assert_eq!(ready, 1, "the send started");
    reset(peer);
    let sent = host.next_tagged(4);
    assert!(
        sent.result == -libc::EPIPE || sent.result == -libc::ECONNRESET,
        "send got {}",
        message(sent.result)
    );
    // With MSG_WAITALL the kernel's send took the reset's error and reported only
    // the bytes it had sent, so the receive found a clean end.
    let received = first_receive(&mut host, socket);
    assert_eq!(
        received.result,
        -libc::ECONNRESET,
        "a reset connection's receive got {}",
        message(received.result)
    );
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_send_that_times_out_cancels_the_sends_queued_behind_it() {
    const SIZE: usize = 256 << 10;
    let mut host = Host::with_config(&config(64, 8, SIZE as u32));
    let (socket, mut peer) = host.small_buffered_pair();
    let mut queued = Vec::new();
    for tag in 1..=3u8 {
        let data = [tag; SIZE];
        let id = host.filled_buffer(&data);
        let len = SIZE as u32;
        ok(
            "send",
            iot_send(host.worker, socket, id, 0, len, u64::from(tag), 100),
        );
        queued.extend_from_slice(&data);
    }
    assert_eq!(host.next_tagged(1).result, -libc::ETIMEDOUT);
    // Had the next send started, it would go out once the peer reads, after a gap.
    assert_eq!(host.stats().ops_in_flight, 0, "a send went on after a gap");
    for tag in 2..=3 {
        assert_eq!(host.next_tagged(tag).result, -libc::ECANCELED);
    }
    // Later ones would leave the same gap (or end the stream cleanly after it).
    let id = host.filled_buffer(b"later");
    ok("send", iot_send(host.worker, socket, id, 0, 5, 5, 0));
    let how = IOT_SHUTDOWN_WRITE;
    ok("shutdown", iot_socket_shutdown(host.worker, socket, how, 6));
    for tag in 5..=6 {
        assert_eq!(host.next_tagged(tag).result, -libc::ECANCELED);
    }
    ok("close", iot_socket_close(host.worker, socket));
    let mut received = Vec::new();
    peer.read_to_end(&mut received).unwrap();
    assert!(received.len() < SIZE, "the first send stopped part way");
    assert!(
        received == queued[..received.len()],
        "what arrived has no gap"
    );
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_peer_that_closed_before_our_reply_reset_it_ends_cleanly() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    peer.write_all(b"request").unwrap();
    drop(peer); // FIN, nothing unread: the reply below makes the peer's kernel reset
    assert_eq!(host.recv_exact(socket, 7, 100), b"request");
    host.send_all(socket, b"reply", 8);
    let received = first_receive(&mut host, socket);
    assert_eq!(
        received.result,
        0,
        "the peer ended cleanly before the reset: {}",
        message(received.result)
    );
}

#[test]
fn our_own_shutdown_then_the_peers_close_is_a_clean_end() {
    let mut host = Host::new();
    let (socket, peer) = host.connected_pair();
    ok(
        "shutdown",
        iot_socket_shutdown(host.worker, socket, libc::SHUT_WR, 5),
    );
    assert_eq!(host.next_tagged(5).result, 0);
    let mut peer = peer;
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap(); // our FIN
    drop(peer); // the peer's FIN: the connection is closed on both sides
    let received = first_receive(&mut host, socket);
    assert_eq!(received.result, 0, "a clean end is not a reset");
}

/// The first completion of a multishot receive started on `socket` now.
fn first_receive(host: &mut Host, socket: u64) -> iot_completion {
    ok(
        "recv",
        iot_recv(host.worker, socket, 3, IOT_OP_MULTISHOT, 0),
    );
    host.next_tagged(3)
}

#[test]
fn half_close_both_directions() {
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    // Peer closes its write side: we read its data then end of stream...
    peer.write_all(b"request").unwrap();
    peer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(host.recv_exact(socket, 100, 6), b"request");
    // ...and can still answer; our shutdown goes out after the queued send.
    let id = host.filled_buffer(b"response");
    ok("send", iot_send(host.worker, socket, id, 0, 8, 7, 0));
    ok(
        "shutdown",
        iot_socket_shutdown(host.worker, socket, IOT_SHUTDOWN_WRITE, 8),
    );
    assert_eq!(host.next_tagged(7).result, 8);
    assert_eq!(host.next_tagged(8).result, 0);
    let mut back = Vec::new();
    peer.read_to_end(&mut back).unwrap();
    assert_eq!(back, b"response");
}

#[test]
fn send_pool_exhaustion_is_reported_and_recovers() {
    let mut host = Host::with_config(&config(4, 2, 4096));
    let (socket, mut peer) = host.connected_pair();
    let a = host.filled_buffer(b"a");
    let _b = host.filled_buffer(b"b");
    let mut id = 0;
    assert_eq!(iot_buffer_acquire(host.worker, &mut id), -libc::ENOBUFS);
    ok("send", iot_send(host.worker, socket, a, 0, 1, 1, 0));
    assert_eq!(host.next_tagged(1).result, 1);
    ok(
        "acquire after send",
        iot_buffer_acquire(host.worker, &mut id),
    );
    let mut byte = [0u8; 1];
    peer.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"a");
}

#[test]
fn recv_pool_exhaustion_pauses_without_loss() {
    let size = 1024;
    let mut host = Host::with_config(&config(4, 4, size));
    let (socket, mut peer) = host.connected_pair();
    let payload = pattern(64 * size as usize, 11);
    let to_send = payload.clone();
    let writer = std::thread::spawn(move || {
        peer.write_all(&to_send).unwrap();
        peer
    });
    ok(
        "recv",
        iot_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
    );
    let mut received = Vec::new();
    let mut held = Vec::new();
    while received.len() < payload.len() {
        let c = host.next_tagged(1);
        assert!(c.result > 0, "recv ended early: {}", message(c.result));
        assert_ne!(
            c.flags & IOT_COMPLETION_MORE,
            0,
            "multishot recv must stay armed"
        );
        received.extend_from_slice(host.payload(&c));
        held.push(c);
        if held.len() == 2 {
            // As many receive buffers as one connection may hold when it holds half the
            // pool (the other half stays for other connections): no more arrive until
            // we give some back, and nothing may be lost meanwhile.
            host.poll();
            assert_eq!(host.stats().buffers_outstanding, 2);
            for c in held.drain(..) {
                host.give_back(&c);
            }
        }
    }
    writer.join().unwrap();
    assert!(
        received == payload,
        "bytes lost or reordered under buffer pressure"
    );
}

#[test]
fn accept_one_shot_with_timeout() {
    let mut host = Host::new();
    let (listener, port) = host.listen("127.0.0.1", 0);
    ok("accept", iot_tcp_accept(host.worker, listener, 1, 0, 100));
    assert_eq!(host.next_tagged(1).result, -libc::ETIMEDOUT);
    ok(
        "accept",
        iot_tcp_accept(host.worker, listener, 2, 0, 10_000),
    );
    host.flush();
    let _client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let c = host.next_tagged(2);
    assert_eq!(c.result, 0);
    assert_ne!(c.handle, 0);
    // An accepted socket reports its peer.
    let mut port_out = 0;
    let mut text = [0 as std::ffi::c_char; 64];
    let n = iot_socket_address(
        host.worker,
        c.handle,
        IOT_ADDRESS_PEER,
        text.as_mut_ptr(),
        64,
        &mut port_out,
    );
    assert_eq!(n, 9);
    assert_eq!(port_out, _client.local_addr().unwrap().port());
}

#[test]
fn operations_on_wrong_socket_kind_fail() {
    let host = Host::new();
    let (listener, _) = host.listen("127.0.0.1", 0);
    assert_eq!(
        iot_recv(host.worker, listener, 1, 0, 0),
        IOT_E_WRONG_SOCKET_KIND
    );
}

#[test]
fn listen_reuseport_shares_a_port_and_v6only() {
    let a = Host::new();
    let (_, port) = a.listen("127.0.0.1", IOT_LISTEN_REUSEPORT);
    let b = Host::new();
    let ip = std::ffi::CString::new("127.0.0.1").unwrap();
    let mut second = 0;
    ok(
        "second listener",
        iot_tcp_listen(
            b.worker,
            ip.as_ptr(),
            port,
            0,
            IOT_LISTEN_REUSEPORT,
            &mut second,
        ),
    );
    let mut third = 0;
    assert_eq!(
        iot_tcp_listen(b.worker, ip.as_ptr(), port, 0, 0, &mut third),
        -libc::EADDRINUSE
    );
    assert_eq!(third, 0, "outputs are written only on success");
    let any6 = std::ffi::CString::new("::").unwrap();
    ok(
        "v6only",
        iot_tcp_listen(
            b.worker,
            any6.as_ptr(),
            port,
            0,
            IOT_LISTEN_V6ONLY | IOT_LISTEN_REUSEPORT,
            &mut third,
        ),
    );
}

#[test]
fn sends_a_close_reaps_give_their_buffers_back_before_the_host_drains() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, mut peer) = host.connected_pair();
    const SENDS: usize = 3;
    for i in 0..SENDS {
        let id = host.filled_buffer(&[b'a' + i as u8; 100]);
        ok("send", iot_send(host.worker, socket, id, 0, 100, 7, 0));
    }
    // The close lets the queued sends into the kernel and reaps their CQEs outside a
    // drain: the kernel is done with their bytes, so the buffers are the pool's now,
    // while the completions wait for the host.
    ok("close", iot_socket_close(host.worker, socket));
    let stats = host.stats();
    assert_eq!(stats.buffers_outstanding, 0);
    // (The close's cancel may have left a CQE of its own, which no host sees.)
    assert!(stats.completions_ready >= SENDS as u32);
    for _ in 0..SENDS {
        let c = host.next_tagged(7);
        assert_eq!(c.result, 100, "{}", message(c.result));
        assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
    }
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 100 * SENDS);
    assert!(got
        .chunks(100)
        .zip(b'a'..)
        .all(|(c, b)| c.iter().all(|&x| x == b)));
}
