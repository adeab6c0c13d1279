//! Datagrams larger than one pool buffer, up to the protocol maximum (65,507 bytes over
//! IPv4, 65,527 over IPv6), through the C ABI against std peers: received whole in
//! spans (consecutive buffers) from the datagram ring or by one-shot receives, sent
//! from spans the host acquires, with clear errors past the maximum and no buffer lost
//! on any path (cancel, close, timeout, refusal). Every test holds `fd_check()`.

mod support;

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

use support::*;

/// The sizes every round trip covers: around one of its 16 KiB buffers, two, and the
/// maximum.
const SIZES_V4: [usize; 6] = [1, 16_383, 16_384, 16_385, 32 * 1024, 65_507];
const SIZES_V6: [usize; 6] = [1, 16_383, 16_384, 16_385, 32 * 1024, 65_527];

/// The pool's memory: buffer `id` at `base + id * size`, spans running on.
struct Pool {
    base: *mut u8,
    size: usize,
    count: usize,
}

impl Pool {
    fn of(host: &Host) -> Pool {
        let (mut base, mut size, mut count) = (std::ptr::null_mut(), 0, 0);
        ok(
            "buffers",
            iot_worker_buffers(host.worker, &mut base, &mut size, &mut count),
        );
        Pool {
            base,
            size: size as usize,
            count: count as usize,
        }
    }

    fn bytes(&self, id: u32, offset: usize, len: usize) -> &[u8] {
        let start = id as usize * self.size + offset;
        assert!(start + len <= self.size * self.count, "inside the pool");
        // SAFETY: the range lies inside the pool mapping, which outlives the test host.
        unsafe { std::slice::from_raw_parts(self.base.add(start), len) }
    }

    /// The payload of a datagram completion.
    fn payload(&self, c: &iot_completion) -> Vec<u8> {
        assert_ne!(c.flags & IOT_COMPLETION_BUFFER, 0, "no buffer in {c:?}");
        self.bytes(u32::from(c.buffer_id), c.offset as usize, c.result as usize)
            .to_vec()
    }

    fn fill(&self, id: u32, data: &[u8]) {
        assert!((id as usize) * self.size + data.len() <= self.size * self.count);
        // SAFETY: in the pool, and the host owns buffer (or span) `id`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.add(id as usize * self.size),
                data.len(),
            )
        }
    }
}

/// A span (or, for small data, a send buffer) holding `data`.
fn filled(host: &Host, pool: &Pool, data: &[u8]) -> u32 {
    let mut id = 0;
    if data.len() <= pool.size {
        ok("acquire", iot_buffer_acquire(host.worker, &mut id));
    } else {
        let len = data.len() as u32;
        ok("span", iot_buffer_acquire_span(host.worker, len, &mut id));
    }
    pool.fill(id, data);
    id
}

fn bind(host: &Host, ip: &str) -> (u64, u16) {
    let mut socket = 0;
    ok(
        "udp bind",
        iot_udp_bind(host.worker, cstr(ip).as_ptr(), 0, 0, &mut socket),
    );
    (socket, host.port(socket))
}

fn peer(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

/// Queues a send of `len` bytes of `id` to `ip:port`.
fn send_to(host: &Host, socket: u64, id: u32, len: usize, ip: &str, port: u16, tag: u64) -> i32 {
    let ip = cstr(ip);
    let len = len as u32;
    iot_udp_send_to(host.worker, socket, id, 0, len, ip.as_ptr(), port, tag, 0)
}

fn assert_nothing_held(host: &Host) {
    let stats = host.stats();
    assert_eq!(
        (stats.ops_in_flight, stats.buffers_outstanding),
        (0, 0),
        "no op and no buffer left"
    );
}

/// Every size from a std peer to the worker (multishot and one-shot receives) and
/// back (sent from a filled span, and echoed zero-copy from the received span), through
/// 16 KiB buffers: with the default 64 KiB ones only the maximum would take a span.
fn round_trip(ip: &str, sizes: &[usize]) {
    let _fds = fd_check();
    let mut host = Host::with_config(&config(1024, 256, 16 << 10));
    let pool = Pool::of(&host);
    let (socket, port) = bind(&host, ip);
    let peer = peer(ip);
    let peer_port = peer.local_addr().unwrap().port();
    let mut back = vec![0u8; 70_000];
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    for (i, &len) in sizes.iter().enumerate() {
        let data = pattern(len, i as u32 + 1);
        // Multishot: from the datagram ring.
        peer.send_to(&data, (ip, port)).unwrap();
        let c = host.next_tagged(1);
        assert_eq!(
            (c.result, c.flags & IOT_COMPLETION_TRUNCATED),
            (len as i32, 0)
        );
        assert!(
            pool.payload(&c) == data,
            "{len} bytes arrive whole and exact"
        );
        assert_eq!(host.sender(c.buffer_id), (ip.to_string(), peer_port));
        // Echo from the very span it arrived in (no copy).
        host.echo_datagram(socket, &c, 2);
        let sent = host.next_tagged(2);
        assert_eq!(sent.result, len as i32, "{}", message(sent.result));
        assert_ne!(sent.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
        let (n, _) = peer.recv_from(&mut back).unwrap();
        assert!(back[..n] == data[..], "{len} bytes echoed exactly");
        // Sent from a span (or buffer) the host filled.
        let id = filled(&host, &pool, &data);
        ok("send", send_to(&host, socket, id, len, ip, peer_port, 3));
        assert_eq!(host.next_tagged(3).result, len as i32);
        let (n, _) = peer.recv_from(&mut back).unwrap();
        assert!(back[..n] == data[..], "{len} bytes sent exactly");
    }
    host.cancel_to_end(1);
    // One-shot receives: into a free span.
    for (i, &len) in sizes.iter().enumerate() {
        let data = pattern(len, 100 + i as u32);
        peer.send_to(&data, (ip, port)).unwrap();
        ok("recv", iot_datagram_recv(host.worker, socket, 4, 0, 10_000));
        let c = host.next_tagged(4);
        assert_eq!(
            (c.result, c.flags & IOT_COMPLETION_TRUNCATED),
            (len as i32, 0)
        );
        assert!(pool.payload(&c) == data, "{len} bytes, one-shot");
        assert_eq!(host.sender(c.buffer_id), (ip.to_string(), peer_port));
        host.release(c.buffer_id);
    }
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
}

#[test]
fn datagrams_up_to_65507_bytes_round_trip_over_ipv4() {
    round_trip("127.0.0.1", &SIZES_V4);
}

#[test]
fn datagrams_up_to_65527_bytes_round_trip_over_ipv6() {
    round_trip("::1", &SIZES_V6);
}

#[test]
fn datagrams_over_the_protocol_maximum_fail_clearly_and_lose_nothing() {
    let _fds = fd_check();
    let mut host = Host::new();
    let pool = Pool::of(&host);
    for (ip, max) in [("127.0.0.1", 65_507), ("::1", 65_527)] {
        let (socket, _) = bind(&host, ip);
        let peer = peer(ip);
        let peer_port = peer.local_addr().unwrap().port();
        let id = filled(&host, &pool, &pattern(max + 1, 7));
        ok(
            "send",
            send_to(&host, socket, id, max + 1, ip, peer_port, 1),
        );
        let c = host.next_tagged(1);
        assert_eq!(c.result, -libc::EMSGSIZE, "{ip}: {}", message(c.result));
        assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
        assert_nothing_held(&host);
        ok("close", iot_socket_close(host.worker, socket));
    }
    // Past a span: refused before any buffer is taken.
    let mut id = u32::MAX;
    assert_eq!(
        iot_buffer_acquire_span(host.worker, 200_000, &mut id),
        -libc::EMSGSIZE
    );
    assert_eq!(id, u32::MAX, "nothing written on failure");
    assert_nothing_held(&host);
}

#[test]
fn bad_span_calls_are_refused_and_change_nothing() {
    let _fds = fd_check();
    let host = Host::new();
    let pool = Pool::of(&host);
    let mut id = 0;
    assert_eq!(
        iot_buffer_acquire_span(0, 70_000, &mut id),
        IOT_E_BAD_HANDLE
    );
    assert_eq!(
        iot_buffer_acquire_span(host.worker, 70_000, std::ptr::null_mut()),
        IOT_E_NULL_POINTER
    );
    let span = filled(&host, &pool, &pattern(70_000, 1));
    let size = pool.size as u32;
    // Only the head names the span.
    assert_eq!(
        iot_buffer_release(host.worker, span + 1, 0),
        IOT_E_BAD_BUFFER
    );
    let (socket, _) = bind(&host, "127.0.0.1");
    let peer = peer("127.0.0.1");
    let peer_port = peer.local_addr().unwrap().port();
    let ip = cstr("127.0.0.1");
    // Past the span's end; a bad socket; a closed socket: the span stays the host's.
    let past = 5 * size + 1;
    assert_eq!(
        iot_udp_send_to(
            host.worker,
            socket,
            span,
            0,
            past,
            ip.as_ptr(),
            peer_port,
            1,
            0
        ),
        -libc::EINVAL
    );
    assert_eq!(
        iot_udp_send_to(
            host.worker,
            12345,
            span,
            0,
            100,
            ip.as_ptr(),
            peer_port,
            1,
            0
        ),
        IOT_E_BAD_HANDLE
    );
    ok("close", iot_socket_close(host.worker, socket));
    assert_eq!(
        iot_udp_send_to(
            host.worker,
            socket,
            span,
            0,
            70_000,
            ip.as_ptr(),
            peer_port,
            1,
            0
        ),
        IOT_E_BAD_HANDLE
    );
    assert_eq!(host.stats().buffers_outstanding, 1, "still the host's");
    ok("release", iot_buffer_release(host.worker, span, 0));
    assert_eq!(iot_buffer_release(host.worker, span, 0), IOT_E_BAD_BUFFER);
    assert_nothing_held(&host);
}

#[test]
fn free_spans_run_out_and_come_back() {
    let _fds = fd_check();
    let host = Host::new();
    let mut held = Vec::new();
    let mut id = 0;
    loop {
        match iot_buffer_acquire_span(host.worker, 65_507, &mut id) {
            0 => held.push(id),
            code => {
                assert_eq!(code, -libc::ENOBUFS);
                break;
            }
        }
    }
    assert_eq!(held.len(), 16);
    held.sort_unstable();
    held.dedup();
    assert_eq!(held.len(), 16, "every span once");
    let sizes: Vec<u32> = held.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(sizes.iter().all(|&d| d * host.buffer_size() >= 65_679));
    for &span in &held {
        ok("release", iot_buffer_release(host.worker, span, 0));
    }
    ok(
        "again",
        iot_buffer_acquire_span(host.worker, 65_507, &mut id),
    );
    ok("release", iot_buffer_release(host.worker, id, 0));
    assert_nothing_held(&host);
}

#[test]
fn a_one_shot_receive_without_a_free_span_takes_a_send_buffer_and_says_truncated() {
    let _fds = fd_check();
    let mut host = Host::new();
    let pool = Pool::of(&host);
    let (socket, port) = bind(&host, "127.0.0.1");
    let peer = peer("127.0.0.1");
    let mut spans = Vec::new();
    let mut id = 0;
    while iot_buffer_acquire_span(host.worker, 1, &mut id) == 0 {
        spans.push(id);
    }
    // The largest datagram: more than a buffer holds after the 144-byte header.
    let data = pattern(65_507, 3);
    peer.send_to(&data, ("127.0.0.1", port)).unwrap();
    ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 10_000));
    let c = host.next_tagged(1);
    let room = pool.size - 144;
    assert_eq!(c.result, room as i32);
    assert_ne!(c.flags & IOT_COMPLETION_TRUNCATED, 0, "cut, and said so");
    assert!(pool.payload(&c) == data[..room]);
    host.release(c.buffer_id);
    for span in spans {
        ok("release", iot_buffer_release(host.worker, span, 0));
    }
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
}

#[test]
fn a_multishot_receive_waits_for_spans_and_loses_nothing() {
    let _fds = fd_check();
    let mut host = Host::new();
    let pool = Pool::of(&host);
    let (socket, port) = bind(&host, "127.0.0.1");
    let peer = peer("127.0.0.1");
    // Room in the kernel queue for what waits while the ring is dry.
    ok(
        "rcvbuf",
        iot_socket_set_option(host.worker, socket, IOT_OPTION_RECV_BUFFER, 4 << 20),
    );
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    // More datagrams than the 64 ring spans, each held until all arrived.
    let count = 100;
    let len = |i: usize| if i % 2 == 0 { 20_000 } else { 30 };
    for i in 0..count {
        peer.send_to(&pattern(len(i), i as u32), ("127.0.0.1", port))
            .unwrap();
    }
    let mut held = Vec::new();
    for i in 0..count {
        if held.len() == 64 {
            // The ring is dry: the receive waits for a span; give the oldest back.
            let c: iot_completion = held.remove(0);
            host.release(c.buffer_id);
        }
        let c = host.next_tagged(1);
        assert_ne!(c.flags & IOT_COMPLETION_MORE, 0, "still armed");
        assert_eq!(c.result, len(i) as i32, "datagram {i} in order");
        assert!(
            pool.payload(&c) == pattern(len(i), i as u32),
            "datagram {i} exact"
        );
        held.push(c);
    }
    let mut dropped = u32::MAX;
    ok(
        "dropped",
        iot_socket_dropped(host.worker, socket, &mut dropped),
    );
    assert_eq!(dropped, 0);
    for c in held {
        host.release(c.buffer_id);
    }
    host.cancel_to_end(1);
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
}

#[test]
fn receives_cut_short_by_timeout_cancel_or_close_return_their_spans() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, _) = bind(&host, "127.0.0.1");
    // Timeout: the span it took is free again, and the completion says so (a sender
    // waiting for a span may go on).
    ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 20));
    let c = host.next_tagged(1);
    assert_eq!(c.result, -libc::ETIMEDOUT);
    assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
    assert_nothing_held(&host);
    // Cancel, one-shot and multishot.
    ok("recv", iot_datagram_recv(host.worker, socket, 2, 0, 0));
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 3, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    assert_eq!(host.stats().buffers_outstanding, 1, "the one-shot's span");
    host.cancel_to_end(2);
    host.cancel_to_end(3);
    assert_nothing_held(&host);
    // Close.
    ok("recv", iot_datagram_recv(host.worker, socket, 4, 0, 0));
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 5, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    ok("close", iot_socket_close(host.worker, socket));
    for tag in [4, 5] {
        let c = host.next_where(|c| c.tag == tag && c.flags & IOT_COMPLETION_MORE == 0);
        assert_eq!(c.result, -libc::ECANCELED, "{}", message(c.result));
        let took_a_span = tag == 4;
        assert_eq!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED != 0, took_a_span);
    }
    assert_nothing_held(&host);
}

#[test]
fn a_large_send_cut_short_by_cancel_or_close_returns_its_span() {
    let _fds = fd_check();
    let mut host = Host::new();
    let pool = Pool::of(&host);
    let dir = std::env::temp_dir().join(format!("iot-udp-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A Unix receiver that never reads, with a tiny queue: sends to it wait.
    let path = dir.join("full");
    let receiver = UnixDatagram::bind(&path).unwrap();
    let mut socket = 0;
    ok(
        "bind",
        iot_unix_datagram_bind(host.worker, std::ptr::null(), 0, &mut socket),
    );
    let to = cstr(path.to_str().unwrap());
    let data = pattern(60_000, 9);
    let mut tag = 10;
    loop {
        let id = filled(&host, &pool, &data);
        ok(
            "send",
            iot_unix_send_to(host.worker, socket, id, 0, 60_000, to.as_ptr(), tag, 0),
        );
        host.poll();
        if host.stats().ops_in_flight > 0 {
            break; // this one waits for room
        }
        assert_eq!(host.next_tagged(tag).result, 60_000);
        tag += 1;
    }
    host.cancel_to_end(tag);
    assert_nothing_held(&host);
    let id = filled(&host, &pool, &data);
    ok(
        "send",
        iot_unix_send_to(host.worker, socket, id, 0, 60_000, to.as_ptr(), 99, 0),
    );
    host.flush();
    ok("close", iot_socket_close(host.worker, socket));
    let c = host.next_tagged(99);
    assert_eq!(c.result, -libc::ECANCELED, "{}", message(c.result));
    assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
    assert_nothing_held(&host);
    drop(receiver);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unix_datagrams_of_64_kib_round_trip_whole() {
    let _fds = fd_check();
    let mut host = Host::new();
    let pool = Pool::of(&host);
    let dir = std::env::temp_dir().join(format!("iot-unix-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ours = dir.join("ours");
    let mut socket = 0;
    let path = cstr(ours.to_str().unwrap());
    ok(
        "bind",
        iot_unix_datagram_bind(host.worker, path.as_ptr(), 0, &mut socket),
    );
    let peer_path = dir.join("peer");
    let peer = UnixDatagram::bind(&peer_path).unwrap();
    peer.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut back = vec![0u8; 70_000];
    for len in [1, 16_385, 65_535] {
        let data = pattern(len, len as u32);
        peer.send_to(&data, &ours).unwrap();
        ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 10_000));
        let c = host.next_tagged(1);
        assert_eq!(
            (c.result, c.flags & IOT_COMPLETION_TRUNCATED),
            (len as i32, 0)
        );
        assert!(pool.payload(&c) == data);
        host.release(c.buffer_id);
        let id = filled(&host, &pool, &data);
        let to = cstr(peer_path.to_str().unwrap());
        ok(
            "send",
            iot_unix_send_to(host.worker, socket, id, 0, len as u32, to.as_ptr(), 2, 0),
        );
        assert_eq!(host.next_tagged(2).result, len as i32);
        let n = peer.recv(&mut back).unwrap();
        assert!(back[..n] == data[..]);
    }
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
    drop(peer);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tiny_buffers_have_no_spans_and_still_report_truncation() {
    let _fds = fd_check();
    let mut host = Host::with_config(&config(8, 8, 1024));
    let pool = Pool::of(&host);
    assert_eq!(pool.count, 16, "no spans");
    let mut id = 0;
    assert_eq!(
        iot_buffer_acquire_span(host.worker, 2000, &mut id),
        -libc::EMSGSIZE
    );
    let (socket, port) = bind(&host, "127.0.0.1");
    let peer = peer("127.0.0.1");
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    peer.send_to(&pattern(65_507, 1), ("127.0.0.1", port))
        .unwrap();
    let c = host.next_tagged(1);
    assert_eq!(c.result, 1024 - 144);
    assert_ne!(c.flags & IOT_COMPLETION_TRUNCATED, 0);
    host.release(c.buffer_id);
    host.cancel_to_end(1);
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
}

#[test]
fn buffers_big_enough_need_no_spans() {
    let _fds = fd_check();
    let mut host = Host::with_config(&config(8, 8, 128 * 1024));
    let pool = Pool::of(&host);
    assert_eq!(pool.count, 16, "no spans");
    let (socket, port) = bind(&host, "127.0.0.1");
    let peer = peer("127.0.0.1");
    let data = pattern(65_507, 2);
    peer.send_to(&data, ("127.0.0.1", port)).unwrap();
    let got = host.recv_datagram(socket, 1);
    assert!(got.payload.len() == 65_507 && got.payload == data);
    assert_nothing_held(&host);
    ok("close", iot_socket_close(host.worker, socket));
}
