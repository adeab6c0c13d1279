//! UDP through the C ABI, against std::net peers. Every test holds `fd_check()`: the
//! tests run one at a time and each must leave no fd behind.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use support::*;

fn bind(host: &Host, ip: &str, flags: u32) -> (u64, u16) {
    let mut socket = 0;
    ok(
        "udp bind",
        iot_udp_bind(host.worker, cstr(ip).as_ptr(), 0, flags, &mut socket),
    );
    (socket, host.port(socket))
}

fn peer(ip: &str) -> UdpSocket {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

/// Sends `data` from a fresh send buffer to `ip:port`; returns the completion.
fn send_to(host: &mut Host, socket: u64, data: &[u8], ip: &str, port: u16, tag: u64) -> i32 {
    let id = host.filled_buffer(data);
    let ip = cstr(ip);
    let len = data.len() as u32;
    ok(
        "send_to",
        iot_udp_send_to(host.worker, socket, id, 0, len, ip.as_ptr(), port, tag, 0),
    );
    let c = host.next_tagged(tag);
    assert_eq!(c.kind, IOT_KIND_SEND_TO);
    c.result
}

fn round_trip(ip: &str) {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, port) = bind(&host, ip, 0);
    let peer = peer(ip);
    let peer_port = peer.local_addr().unwrap().port();
    for message in [&b"hello over udp"[..], b""] {
        peer.send_to(message, (ip, port)).unwrap();
        let got = host.recv_datagram(socket, 1);
        assert_eq!(got.payload, message);
        assert_eq!((got.sender.as_str(), got.port), (ip, peer_port));
        assert_eq!(got.flags & IOT_COMPLETION_TRUNCATED, 0);
        assert_eq!(
            got.offset, 144,
            "payload after recvmsg_out + sockaddr_storage"
        );
        let sent = send_to(&mut host, socket, message, ip, peer_port, 2);
        assert_eq!(sent, message.len() as i32);
        let mut back = [0u8; 64];
        let (n, from) = peer.recv_from(&mut back).unwrap();
        assert_eq!((&back[..n], from.port()), (message, port));
    }
    let stats = host.stats();
    assert_eq!((stats.ops_in_flight, stats.buffers_outstanding), (0, 0));
}

#[test]
fn round_trip_ipv4_reports_the_sender() {
    round_trip("127.0.0.1");
}

#[test]
fn round_trip_ipv6_reports_the_sender() {
    round_trip("::1");
}

/// A UDP client that keeps `window` datagrams unanswered at most, so no queue on the
/// path can overflow; returns how many echoes came back intact.
fn paced_client(port: u16, count: u32, window: u32) -> (u32, u32) {
    let socket = peer("127.0.0.1");
    socket.connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let datagram = |seq: u32| {
        let mut bytes = seq.to_le_bytes().to_vec();
        bytes.resize(16 + (seq % 1000) as usize, seq as u8);
        bytes
    };
    let mut seen = vec![false; count as usize];
    let (mut sent, mut echoed) = (0, 0);
    let mut back = vec![0u8; 2048];
    while echoed < count {
        while sent < count && sent - echoed < window {
            socket.send(&datagram(sent)).unwrap();
            sent += 1;
        }
        let Ok(n) = socket.recv(&mut back) else {
            break; // nothing for 5 s: something was lost
        };
        let seq = u32::from_le_bytes(back[..4].try_into().unwrap());
        assert_eq!(&back[..n], &datagram(seq)[..], "echo {seq} corrupted");
        assert!(!seen[seq as usize], "echo {seq} twice");
        seen[seq as usize] = true;
        echoed += 1;
    }
    (echoed, dropped_by(&socket))
}

/// `SO_MEMINFO`'s drop counter of a std socket.
fn dropped_by(socket: &UdpSocket) -> u32 {
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: info has room for len bytes.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_SOCKET,
            55, // SO_MEMINFO
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0);
    info[libc::SK_MEMINFO_DROPS as usize]
}

#[test]
fn ten_thousand_datagrams_echoed_none_lost() {
    const COUNT: u32 = 10_000;
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, port) = bind(&host, "127.0.0.1", 0);
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    let client = std::thread::spawn(move || paced_client(port, COUNT, 32));
    let (mut received, mut sent) = (0, 0);
    while sent < COUNT {
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_RECV_FROM => {
                assert_ne!(c.flags & IOT_COMPLETION_MORE, 0, "{}", message(c.result));
                received += 1;
                // Echo from the receive buffer itself; it returns to the pool after.
                host.echo_datagram(socket, &c, 2);
            }
            IOT_KIND_SEND_TO => {
                assert!(c.result > 0, "echo failed: {}", message(c.result));
                sent += 1;
            }
            other => panic!("unexpected completion kind {other}"),
        }
    }
    let (echoed, client_drops) = client.join().unwrap();
    let mut our_drops = u32::MAX;
    ok(
        "dropped",
        iot_socket_dropped(host.worker, socket, &mut our_drops),
    );
    assert_eq!((received, echoed), (COUNT, COUNT));
    assert_eq!((our_drops, client_drops), (0, 0));
    host.cancel_to_end(1);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn an_overflowing_queue_is_counted_not_silent() {
    const COUNT: usize = 300;
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, port) = bind(&host, "127.0.0.1", 0);
    // The smallest receive queue the kernel allows holds only a few datagrams.
    ok(
        "rcvbuf",
        iot_socket_set_option(host.worker, socket, IOT_OPTION_RECV_BUFFER, 1),
    );
    let mut rcvbuf = 0;
    ok(
        "get rcvbuf",
        iot_socket_get_option(host.worker, socket, IOT_OPTION_RECV_BUFFER, &mut rcvbuf),
    );
    assert!(rcvbuf < 16 * 1024, "rcvbuf {rcvbuf}");
    let sender = peer("127.0.0.1");
    for _ in 0..COUNT {
        sender.send_to(&[7u8; 1000], ("127.0.0.1", port)).unwrap();
    }
    // Receive what the queue kept, until a receive waits 200 ms in vain.
    let mut received = 0;
    loop {
        ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 200));
        let c = host.next_tagged(1);
        if c.result == -libc::ETIMEDOUT {
            break;
        }
        assert_eq!(c.result, 1000, "{}", message(c.result));
        host.release(c.buffer_id);
        received += 1;
        assert!(received <= COUNT);
    }
    let mut dropped = 0;
    ok(
        "dropped",
        iot_socket_dropped(host.worker, socket, &mut dropped),
    );
    assert!(dropped > 0, "a tiny queue must overflow");
    assert_eq!(received + dropped as usize, COUNT, "lost without a count");
}

/// One datagram of `len` bytes through a worker with 1024-byte buffers (880 bytes of
/// payload room); returns (result, truncated, payload).
fn receive_sized(multishot: bool, lens: &[usize]) -> Vec<(i32, bool, Vec<u8>)> {
    let mut host = Host::with_config(&config(8, 8, 1024));
    let (socket, port) = bind(&host, "127.0.0.1", 0);
    let sender = peer("127.0.0.1");
    if multishot {
        ok(
            "recv",
            iot_datagram_recv(host.worker, socket, 1, IOT_OP_MULTISHOT, 0),
        );
        host.flush();
    }
    let results = lens
        .iter()
        .map(|&len| {
            sender
                .send_to(&pattern(len, len as u32), ("127.0.0.1", port))
                .unwrap();
            if !multishot {
                ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 10_000));
            }
            let c = host.next_tagged(1);
            assert!(c.result >= 0, "{}", message(c.result));
            let truncated = c.flags & IOT_COMPLETION_TRUNCATED != 0;
            let out = (c.result, truncated, host.payload(&c).to_vec());
            host.release(c.buffer_id);
            out
        })
        .collect();
    if multishot {
        host.cancel_to_end(1);
    }
    results
}

#[test]
fn truncation_is_reported_one_shot_and_multishot() {
    let _fds = fd_check();
    let lens = [880, 881, 3000];
    let expected = [(880, false), (880, true), (880, true)];
    for multishot in [false, true] {
        let results = receive_sized(multishot, &lens);
        for ((result, truncated, payload), (len, want)) in
            results.iter().zip(lens.iter().zip(expected))
        {
            assert_eq!(
                (*result, *truncated),
                want,
                "len {len}, multishot {multishot}"
            );
            // The kept bytes are the datagram's first ones.
            assert!(*payload == pattern(*len, *len as u32)[..880], "len {len}");
        }
    }
}

#[test]
fn connected_udp_sends_receives_and_reports_refusal() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, port) = bind(&host, "127.0.0.1", 0);
    let peer = peer("127.0.0.1");
    let peer_port = peer.local_addr().unwrap().port();
    let ip = cstr("127.0.0.1");
    ok(
        "connect",
        iot_udp_connect(host.worker, socket, ip.as_ptr(), peer_port),
    );
    assert_eq!(
        host.address(socket, IOT_ADDRESS_PEER),
        ("127.0.0.1".into(), peer_port)
    );
    let id = host.filled_buffer(b"connected");
    ok("send", iot_send(host.worker, socket, id, 0, 9, 1, 0));
    assert_eq!(host.next_tagged(1).result, 9);
    let mut back = [0u8; 16];
    let (n, from) = peer.recv_from(&mut back).unwrap();
    assert_eq!((&back[..n], from.port()), (&b"connected"[..], port));
    peer.send_to(b"reply", ("127.0.0.1", port)).unwrap();
    let payload = host.recv_datagram(socket, 2).payload;
    assert_eq!(payload, b"reply");
    // A peer that is gone: the ICMP error shows up on the next receive.
    let gone = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ok(
        "reconnect",
        iot_udp_connect(host.worker, socket, ip.as_ptr(), gone),
    );
    let id = host.filled_buffer(b"anyone?");
    ok("send", iot_send(host.worker, socket, id, 0, 7, 3, 0));
    assert_eq!(host.next_tagged(3).result, 7);
    ok("recv", iot_datagram_recv(host.worker, socket, 4, 0, 10_000));
    assert_eq!(host.next_tagged(4).result, -libc::ECONNREFUSED);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn receive_times_out_and_multishot_cancels() {
    let _fds = fd_check();
    let mut host = Host::new();
    let (socket, _) = bind(&host, "127.0.0.1", 0);
    ok("recv", iot_datagram_recv(host.worker, socket, 1, 0, 100));
    let c = host.next_tagged(1);
    // No datagram; the room the receive took is free again.
    assert_eq!(
        (c.result, c.flags),
        (-libc::ETIMEDOUT, IOT_COMPLETION_BUFFERS_RETURNED)
    );
    assert_eq!(
        iot_datagram_recv(host.worker, socket, 2, IOT_OP_MULTISHOT, 100),
        -libc::EINVAL,
        "a multishot receive has no single deadline"
    );
    ok(
        "recv",
        iot_datagram_recv(host.worker, socket, 2, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    host.cancel_to_end(2);
    assert_eq!(host.stats().ops_in_flight, 0);
}

#[test]
fn broadcast_needs_the_option() {
    let _fds = fd_check();
    let mut host = Host::new();
    // Bound to loopback's broadcast address, a socket gets loopback broadcasts only.
    let (receiver, port) = bind(&host, "127.255.255.255", 0);
    let (sender, _) = bind(&host, "127.0.0.1", 0);
    let denied = send_to(&mut host, sender, b"all", "127.255.255.255", port, 1);
    assert_eq!(denied, -libc::EACCES);
    ok(
        "broadcast on",
        iot_socket_set_option(host.worker, sender, IOT_OPTION_BROADCAST, 1),
    );
    let mut on = 0;
    ok(
        "get",
        iot_socket_get_option(host.worker, sender, IOT_OPTION_BROADCAST, &mut on),
    );
    assert_eq!(on, 1);
    assert_eq!(
        send_to(&mut host, sender, b"all", "127.255.255.255", port, 1),
        3
    );
    let got = host.recv_datagram(receiver, 2);
    assert_eq!(
        (got.payload.as_slice(), got.sender.as_str()),
        (&b"all"[..], "127.0.0.1")
    );
}

#[test]
fn multicast_join_delivers_and_leave_stops() {
    const GROUP: &str = "239.255.42.99";
    let _fds = fd_check();
    let mut host = Host::new();
    // SAFETY: a NUL-terminated interface name.
    let lo = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
    assert_ne!(lo, 0);
    let group = cstr(GROUP);
    let (receiver, port) = bind(&host, GROUP, IOT_BIND_REUSEADDR);
    ok(
        "join",
        iot_udp_join_multicast(host.worker, receiver, group.as_ptr(), lo),
    );
    let (sender, _) = bind(&host, "127.0.0.1", 0);
    ok(
        "interface",
        iot_socket_set_option(host.worker, sender, IOT_OPTION_MULTICAST_INTERFACE, lo),
    );
    ok(
        "hops",
        iot_socket_set_option(host.worker, sender, IOT_OPTION_MULTICAST_HOPS, 1),
    );
    let mut looped = 0;
    ok(
        "loop",
        iot_socket_get_option(host.worker, sender, IOT_OPTION_MULTICAST_LOOP, &mut looped),
    );
    assert_eq!(looped, 1, "multicast loops back by default");
    assert_eq!(send_to(&mut host, sender, b"group", GROUP, port, 1), 5);
    let payload = host.recv_datagram(receiver, 2).payload;
    assert_eq!(payload, b"group");
    ok(
        "leave",
        iot_udp_leave_multicast(host.worker, receiver, group.as_ptr(), lo),
    );
    assert_eq!(send_to(&mut host, sender, b"group", GROUP, port, 1), 5);
    ok("recv", iot_datagram_recv(host.worker, receiver, 3, 0, 200));
    assert_eq!(
        host.next_tagged(3).result,
        -libc::ETIMEDOUT,
        "left the group"
    );
    let not_a_group = cstr("127.0.0.1");
    assert_eq!(
        iot_udp_join_multicast(host.worker, receiver, not_a_group.as_ptr(), lo),
        -libc::EINVAL
    );
}

#[test]
fn bind_flags_share_ports_and_datagram_rules_are_checked() {
    let _fds = fd_check();
    let host = Host::with_config(&config(4, 4, 128));
    let (first, port) = bind(&host, "127.0.0.1", IOT_LISTEN_REUSEPORT);
    let ip = cstr("127.0.0.1");
    let mut second = 0;
    ok(
        "reuseport",
        iot_udp_bind(
            host.worker,
            ip.as_ptr(),
            port,
            IOT_LISTEN_REUSEPORT,
            &mut second,
        ),
    );
    let mut third = 0;
    assert_eq!(
        iot_udp_bind(host.worker, ip.as_ptr(), port, 0, &mut third),
        -libc::EADDRINUSE
    );
    assert_eq!(third, 0, "outputs are written only on success");
    let any6 = cstr("::");
    ok(
        "v6only",
        iot_udp_bind(host.worker, any6.as_ptr(), 0, IOT_LISTEN_V6ONLY, &mut third),
    );
    // Stream receives would cut datagrams silently; datagram receives need room for
    // the 144-byte header before any payload.
    assert_eq!(
        iot_recv(host.worker, first, 1, 0, 0),
        IOT_E_WRONG_SOCKET_KIND
    );
    assert_eq!(
        iot_datagram_recv(host.worker, first, 1, 0, 0),
        -libc::EINVAL
    );
    let mut text = [0 as std::ffi::c_char; 8];
    let mut p = 0;
    assert_eq!(
        iot_datagram_sender(host.worker, 0, text.as_mut_ptr(), 8, &mut p),
        IOT_E_BAD_BUFFER,
        "a buffer the kernel owns"
    );
}

#[test]
fn a_one_shot_receive_needs_a_free_send_buffer() {
    let _fds = fd_check();
    // Buffers too small for spans: a one-shot receive lands in a send buffer (with
    // spans it takes a free span first: udp_large.rs).
    let mut host = Host::with_config(&config(4, 1, 1024));
    let (socket, port) = bind(&host, "127.0.0.1", 0);
    let only = host.filled_buffer(b"");
    assert_eq!(
        iot_datagram_recv(host.worker, socket, 1, 0, 0),
        -libc::ENOBUFS
    );
    ok("release", iot_buffer_release(host.worker, only, 0));
    peer("127.0.0.1")
        .send_to(b"now", ("127.0.0.1", port))
        .unwrap();
    let payload = host.recv_datagram(socket, 1).payload;
    assert_eq!(payload, b"now");
    // A failed receive gives its buffer back to the pool.
    ok("recv", iot_datagram_recv(host.worker, socket, 2, 0, 50));
    assert_eq!(host.next_tagged(2).result, -libc::ETIMEDOUT);
    assert_eq!(host.stats().buffers_outstanding, 0);
}
