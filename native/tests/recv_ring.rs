//! The receive ring under load: it starts with at most 256 buffers and grows while
//! receives find it empty, up to `recv_buffer_count`; receives that find no buffer at
//! all wait and lose nothing.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::*;

const ACCEPT: u64 = 1;

/// `count` clients of our listener, each accepted and receiving (multishot) with its
/// own socket handle as tag; returns the clients and the accepted sockets.
fn accepted_receivers(host: &mut Host, count: usize) -> (Vec<TcpStream>, Vec<u64>) {
    let (clients, sockets) = host.accepted_clients(count, ACCEPT);
    for &socket in &sockets {
        ok(
            "recv",
            iot_recv(host.worker, socket, socket, IOT_OP_MULTISHOT, 0),
        );
    }
    host.flush();
    (clients, sockets)
}

/// The next receive completion with data; its buffer stays the test's.
fn next_received(host: &mut Host) -> iot_completion {
    let c = host.next_where(|c| c.kind == IOT_KIND_RECV);
    assert!(c.result > 0, "receive failed: {}", message(c.result));
    assert_ne!(c.flags & IOT_COMPLETION_BUFFER, 0);
    c
}

#[test]
fn the_ring_grows_to_its_limit_while_receives_hold_every_buffer() {
    const LIMIT: usize = 300;
    let mut host = Host::with_config(&config(LIMIT as u32, 4, 1024));
    assert_eq!(host.stats().recv_ring_buffers, 256, "the ring starts small");
    let (mut clients, _sockets) = accepted_receivers(&mut host, LIMIT + 1);

    // Every client but the last sends one byte; the test holds every buffer.
    for client in &mut clients[..LIMIT] {
        client.write_all(b"x").unwrap();
    }
    let held: Vec<u16> = (0..LIMIT)
        .map(|_| next_received(&mut host).buffer_id)
        .collect();
    assert_eq!(
        host.stats().recv_ring_buffers,
        LIMIT as u32,
        "the ring grew as far as the limit, no further"
    );

    // Now no buffer is left: the last client's byte waits, and arrives as soon as one
    // buffer comes back.
    clients[LIMIT].write_all(b"y").unwrap();
    host.release(held[0]);
    let late = next_received(&mut host);
    assert_eq!(host.payload(&late), b"y");
    host.release(late.buffer_id);
    for &id in &held[1..] {
        host.release(id);
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn receives_starved_of_buffers_all_complete_as_buffers_come_back_one_by_one() {
    const BUFFERS: usize = 8;
    const CLIENTS: usize = 40;
    let mut host = Host::with_config(&config(BUFFERS as u32, 4, 1024));
    let (mut clients, sockets) = accepted_receivers(&mut host, CLIENTS);
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(&[i as u8]).unwrap();
    }
    // Eight receives get a buffer, the others wait; each returned buffer lets one more
    // through, until every client's byte has arrived exactly once.
    let mut seen = [false; CLIENTS];
    for _ in 0..CLIENTS {
        let c = next_received(&mut host);
        let from = sockets
            .iter()
            .position(|&s| s == c.tag)
            .expect("our socket");
        assert_eq!(host.payload(&c), [from as u8]);
        assert!(!seen[from], "client {from} received twice");
        seen[from] = true;
        host.release(c.buffer_id);
    }
    assert!(seen.iter().all(|&s| s));
    assert_eq!(host.stats().recv_ring_buffers, BUFFERS as u32);
}
