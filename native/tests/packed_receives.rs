//! Packed receives (`IOU_PBUF_RING_INC`, Linux 6.12+): each stream receive takes the
//! next bytes of the buffer the kernel is filling, so many connections sending a few
//! bytes share buffers. The host holds pieces, named by buffer and offset; a buffer
//! goes back to the ring only once the kernel moved past it and every piece of it is
//! back, so a piece held stays intact however much else arrives; wrong releases are
//! refused and leave the pool intact; `IOT_CONFIG_WHOLE_BUFFERS` gives every receive a
//! whole buffer again. On kernels without incremental consumption the tests that need
//! it say so and pass.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::echo::EchoServer;
use support::*;

const ACCEPT: u64 = 1;

/// A host packing receives, or `None` (with a note) when this kernel cannot.
fn packing_host() -> Option<Host> {
    let host = Host::new();
    if host.stats().packs_receives == 0 {
        eprintln!("this kernel does not consume ring buffers incrementally: skipped");
        return None;
    }
    Some(host)
}

/// One receive on `socket` (tagged with it) that gets `bytes` from `client`.
fn receive(host: &mut Host, socket: u64, client: &mut TcpStream, bytes: &[u8]) -> iot_completion {
    ok("recv", iot_recv(host.worker, socket, socket, 0, 0));
    host.flush();
    client.write_all(bytes).unwrap();
    let c = host.next_tagged(socket);
    assert_eq!(c.result as usize, bytes.len(), "{}", message(c.result));
    assert_eq!(
        c.flags & (IOT_COMPLETION_BUFFER | IOT_COMPLETION_PIECE),
        IOT_COMPLETION_BUFFER | IOT_COMPLETION_PIECE
    );
    assert_eq!(host.payload(&c), bytes);
    c
}

fn tag_bytes(i: usize) -> Vec<u8> {
    format!("connection {i:04}").into_bytes()
}

#[test]
fn small_receives_of_many_connections_share_a_buffer() {
    let Some(mut host) = packing_host() else {
        return;
    };
    const CONNECTIONS: usize = 200;
    let (mut clients, sockets) = host.accepted_clients(CONNECTIONS, ACCEPT);
    let held: Vec<iot_completion> = (0..CONNECTIONS)
        .map(|i| receive(&mut host, sockets[i], &mut clients[i], &tag_bytes(i)))
        .collect();
    // Every piece where the completion says, none overlapping another.
    let mut ranges: Vec<(u16, u32, u32)> = held
        .iter()
        .map(|c| (c.buffer_id, c.offset, c.offset + c.result as u32))
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].2 <= pair[1].1,
            "pieces overlap: {pair:?}"
        );
    }
    for (i, c) in held.iter().enumerate() {
        assert_eq!(host.payload(c), tag_bytes(i), "connection {i}'s piece");
    }
    let buffers: std::collections::BTreeSet<u16> = held.iter().map(|c| c.buffer_id).collect();
    let stats = host.stats();
    assert_eq!(stats.pieces_outstanding, CONNECTIONS as u32);
    // 200 x 15 bytes fill 3 KiB of the first buffer.
    assert_eq!(buffers.len(), 1, "pieces in buffers {buffers:?}");
    assert_eq!(stats.buffers_outstanding, 1);
    for c in &held {
        host.give_back(c);
    }
    let stats = host.stats();
    assert_eq!(
        (stats.buffers_outstanding, stats.pieces_outstanding),
        (0, 0)
    );
}

#[test]
fn pieces_come_back_in_any_order() {
    let Some(mut host) = packing_host() else {
        return;
    };
    const PIECES: usize = 8;
    let (mut clients, sockets) = host.accepted_clients(PIECES, ACCEPT);
    let orders: [[usize; PIECES]; 4] = [
        [0, 1, 2, 3, 4, 5, 6, 7],
        [7, 6, 5, 4, 3, 2, 1, 0],
        [1, 3, 5, 7, 0, 2, 4, 6],
        [4, 0, 7, 2, 6, 1, 5, 3],
    ];
    // Rounds of 8 pieces of an eighth of a buffer fill one buffer each: the kernel is
    // done with it at the last piece, and it goes back to the ring with whichever piece
    // comes last.
    let piece = host.buffer_size() / PIECES as u32;
    for (round, order) in orders.iter().cycle().take(12).enumerate() {
        let held: Vec<iot_completion> = (0..PIECES)
            .map(|i| {
                let bytes = pattern(piece as usize, (round * PIECES + i) as u32);
                receive(&mut host, sockets[i], &mut clients[i], &bytes)
            })
            .collect();
        assert!(held.iter().all(|c| c.buffer_id == held[0].buffer_id));
        let mut offsets: Vec<u32> = held.iter().map(|c| c.offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..8).map(|i| i * piece).collect::<Vec<u32>>());
        for (n, &i) in order.iter().enumerate() {
            assert_eq!(host.stats().buffers_outstanding, 1, "round {round}");
            host.give_back(&held[i]);
            assert_eq!(host.stats().pieces_outstanding, (PIECES - n - 1) as u32);
        }
        assert_eq!(host.stats().buffers_outstanding, 0, "round {round}");
    }
}

#[test]
fn a_held_piece_stays_intact_while_other_connections_receive() {
    let Some(mut host) = packing_host() else {
        return;
    };
    let (mut clients, sockets) = host.accepted_clients(4, ACCEPT);
    let kept_bytes = pattern(100, 7);
    let kept = receive(&mut host, sockets[0], &mut clients[0], &kept_bytes);
    // 4 MiB more through the other connections, each piece released at once: the
    // ring (16 buffers at first) cycles many times over, never through the buffer
    // of the piece still held.
    let others = pattern(4 << 20, 8);
    for (n, chunk) in others.chunks(3000).enumerate() {
        let i = 1 + n % 3;
        clients[i].write_all(chunk).unwrap();
        let mut got = 0;
        while got < chunk.len() {
            // A chunk that does not fit the rest of a buffer arrives in two pieces.
            ok("recv", iot_recv(host.worker, sockets[i], sockets[i], 0, 0));
            let c = host.next_tagged(sockets[i]);
            assert!(c.result > 0, "{}", message(c.result));
            assert_eq!(host.payload(&c), &chunk[got..got + c.result as usize]);
            assert_ne!(
                (c.buffer_id, c.offset),
                (kept.buffer_id, kept.offset),
                "a held piece was handed out again"
            );
            got += c.result as usize;
            host.give_back(&c);
        }
        assert_eq!(host.payload(&kept), kept_bytes, "after {n} chunks");
    }
    assert_eq!(host.stats().buffers_outstanding, 1);
    host.give_back(&kept);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn wrong_releases_are_refused_and_leave_the_pool_intact() {
    let Some(mut host) = packing_host() else {
        return;
    };
    let (mut clients, sockets) = host.accepted_clients(2, ACCEPT);
    let a = receive(&mut host, sockets[0], &mut clients[0], b"first piece");
    let b = receive(&mut host, sockets[1], &mut clients[1], b"second piece");
    assert_eq!(a.buffer_id, b.buffer_id);
    let (worker, id) = (host.worker, u32::from(a.buffer_id));
    let release = |offset: u32| iot_buffer_release(worker, id, offset);
    assert_eq!(release(a.offset + 1), IOT_E_BAD_BUFFER, "inside a piece");
    assert_eq!(release(b.offset + 12), IOT_E_BAD_BUFFER, "never handed out");
    assert_eq!(release(9000), IOT_E_BAD_BUFFER, "far past the pieces");
    assert_eq!(
        iot_buffer_release(worker, id + 1, 0),
        IOT_E_BAD_BUFFER,
        "a buffer not out"
    );
    ok("release", release(a.offset));
    assert_eq!(release(a.offset), IOT_E_BAD_BUFFER, "a second release");
    // A send may take bytes of its own piece only.
    let send = |offset: u32, len: u32| iot_send(worker, sockets[1], id, offset, len, 9, 0);
    assert_eq!(send(a.offset, 5), IOT_E_BAD_BUFFER, "a released piece");
    assert_eq!(send(b.offset, 13), -libc::EINVAL, "past the piece's end");
    ok("send", send(b.offset + 7, 5));
    assert_eq!(release(b.offset), IOT_E_BAD_BUFFER, "lent to the send");
    assert_eq!(host.next_tagged(9).result, 5);
    assert_eq!(release(b.offset), IOT_E_BAD_BUFFER, "the send gave it back");
    let mut echoed = [0u8; 5];
    std::io::Read::read_exact(&mut clients[1], &mut echoed).unwrap();
    assert_eq!(&echoed, b"piece");
    assert_eq!(host.stats().buffers_outstanding, 0);
    // The pool goes on as before.
    let c = receive(&mut host, sockets[0], &mut clients[0], b"third");
    host.give_back(&c);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn receives_with_timeouts_get_their_own_bytes() {
    let Some(mut host) = packing_host() else {
        return;
    };
    // A receive with a timeout settles only once its timeout's CQE is in too; one
    // without, packed into the same buffer after it, settles before it. Each piece
    // still holds the bytes its own connection sent.
    const CONNECTIONS: usize = 50;
    let (mut clients, sockets) = host.accepted_clients(CONNECTIONS, ACCEPT);
    for round in 0..50u8 {
        for (i, &socket) in sockets.iter().enumerate() {
            let timeout = if i % 2 == 0 { 10_000 } else { 0 };
            ok("recv", iot_recv(host.worker, socket, socket, 0, timeout));
        }
        host.flush();
        // Written from another thread while this one waits: the receives complete in
        // batches, their timeouts' CQEs after them.
        let writer = std::thread::spawn(move || {
            for (i, client) in clients.iter_mut().enumerate() {
                client.write_all(&[i as u8 ^ round; 100]).unwrap();
            }
            clients
        });
        for _ in 0..CONNECTIONS {
            let c = host.next_where(|c| c.kind == IOT_KIND_RECV);
            let i = sockets.iter().position(|&s| s == c.tag).expect("ours");
            assert!(c.result > 0, "{}", message(c.result));
            assert!(
                host.payload(&c).iter().all(|&b| b == i as u8 ^ round),
                "connection {i} got another's bytes in round {round}"
            );
            host.give_back(&c);
            let left = 100 - c.result as usize;
            if left > 0 {
                let rest = host.recv_exact(sockets[i], left, c.tag);
                assert!(rest.iter().all(|&b| b == i as u8 ^ round));
            }
        }
        clients = writer.join().expect("writer");
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn many_connections_echo_large_messages_intact() {
    EchoServer::start("127.0.0.1").echo_all_at_once(100, 20_000);
}

#[test]
fn pieces_held_past_a_close_come_back_and_nothing_leaks() {
    let Some(mut host) = packing_host() else {
        return;
    };
    let (mut clients, sockets) = host.accepted_clients(3, ACCEPT);
    let held: Vec<iot_completion> = (0..3)
        .map(|i| receive(&mut host, sockets[i], &mut clients[i], &tag_bytes(i)))
        .collect();
    ok(
        "multishot",
        iot_recv(host.worker, sockets[2], sockets[2], IOT_OP_MULTISHOT, 0),
    );
    for &socket in &sockets {
        ok("close", iot_socket_close(host.worker, socket));
    }
    host.release_pending();
    assert_eq!(
        host.payload(&held[1]),
        tag_bytes(1),
        "a closed socket's piece"
    );
    for c in &held {
        host.give_back(c);
    }
    let stats = host.stats();
    assert_eq!((stats.sockets_open, stats.buffers_outstanding), (1, 0));
    drop(clients);
    // Host's drop frees the worker and checks that it freed cleanly.
}

#[test]
fn whole_buffers_on_request() {
    let mut config = iot_config::default();
    ok("config", iot_config_default(&mut config));
    config.flags |= IOT_CONFIG_WHOLE_BUFFERS;
    let mut host = Host::with_config(&config);
    assert_eq!(host.stats().packs_receives, 0);
    assert_eq!(
        host.stats().recv_ring_buffers,
        256,
        "the whole-buffer ring size"
    );
    let (mut clients, sockets) = host.accepted_clients(20, ACCEPT);
    let held: Vec<iot_completion> = (0..20)
        .map(|i| receive(&mut host, sockets[i], &mut clients[i], &tag_bytes(i)))
        .collect();
    assert!(
        held.iter().all(|c| c.offset == 0),
        "every receive at a buffer's start"
    );
    let stats = host.stats();
    assert_eq!(
        (stats.buffers_outstanding, stats.pieces_outstanding),
        (20, 20)
    );
    // A whole buffer is one piece at offset 0: the host may send any part of it.
    let id = u32::from(held[0].buffer_id);
    ok("send", iot_send(host.worker, sockets[0], id, 5, 4, 9, 0));
    assert_eq!(host.next_tagged(9).result, 4);
    for c in &held[1..] {
        host.give_back(c);
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}

/// Clients that send `size` bytes on every connection, then read every echo back,
/// `rounds` times over.
fn echo_rounds(mut clients: Vec<TcpStream>, rounds: u32, size: usize) {
    for round in 0..rounds {
        let bytes = |i: usize| pattern(size, round * 10_000 + i as u32);
        for (i, client) in clients.iter_mut().enumerate() {
            client.write_all(&bytes(i)).unwrap();
        }
        for (i, client) in clients.iter_mut().enumerate() {
            let mut back = vec![0u8; size];
            client.set_read_timeout(Some(DEADLINE)).unwrap();
            std::io::Read::read_exact(client, &mut back).expect("an echo");
            assert!(back == bytes(i), "connection {i}, round {round}");
        }
    }
}

/// Echoes on `sockets` until `clients` is done, draining in batches; between drains
/// it blocks in `iot_worker_wait` (which feeds receives waiting for the ring before
/// it sleeps) only when `block`, else sleeps like a host that only drains. Returns
/// the most buffers the host held at once.
fn serve_echo(
    host: &Host,
    sockets: &[u64],
    clients: std::thread::JoinHandle<()>,
    block: bool,
) -> u32 {
    let worker = host.worker;
    let mut sessions = support::echo::EchoSessions::default();
    for &socket in sockets {
        sessions.start(worker, socket);
    }
    let mut most_out = 0;
    let mut batch = [iot_completion::default(); 64];
    while !clients.is_finished() {
        ok("flush", iot_worker_flush(worker));
        let n = ok("drain", iot_worker_drain(worker, batch.as_mut_ptr(), 64)) as usize;
        for c in &batch[..n] {
            sessions.on_completion(worker, c);
        }
        most_out = most_out.max(host.stats().buffers_outstanding);
        match (n, block) {
            (0, true) => drop(ok("wait", iot_worker_wait(worker, 10))),
            (0, false) => std::thread::sleep(std::time::Duration::from_millis(1)),
            _ => {}
        }
    }
    clients.join().expect("every echo came back");
    most_out
}

#[test]
fn receives_waiting_for_the_ring_all_complete_for_a_host_that_only_drains() {
    // A host like Dart's drains and never blocks in `iot_worker_wait`. With 32
    // buffers of 16 KiB for 200 connections sending 4 KiB at once, receives find the
    // ring empty; a packed buffer that comes back serves four of them, not only the
    // one it resumes.
    let mut host = Host::with_config(&config(32, 256, 16 << 10));
    let (clients, sockets) = host.accepted_clients(200, ACCEPT);
    let clients = std::thread::spawn(move || echo_rounds(clients, 3, 4096));
    serve_echo(&host, &sockets, clients, false);
}

#[test]
fn the_ring_grows_as_far_as_a_burst_needs() {
    // A burst's receives that found the ring empty report it over several drains;
    // only those tried after the ring last grew make it grow again. 1,000
    // connections x 4 KiB at once need 250 packed buffers, and hold at most that
    // many; the ring doubles, and the host's holdings are sampled between drains.
    let Some(mut host) = packing_host() else {
        return;
    };
    let (clients, sockets) = host.accepted_clients(1000, ACCEPT);
    let clients = std::thread::spawn(move || echo_rounds(clients, 20, 4096));
    let most_out = serve_echo(&host, &sockets, clients, true);
    let ring = host.stats().recv_ring_buffers;
    assert!(
        ring <= 4 * most_out.max(16),
        "the ring grew to {ring} buffers; at most {most_out} were out"
    );
}

#[test]
fn a_waiting_message_of_48_kb_comes_in_one_receive_by_default() {
    // Buffers are 64 KiB by default, so that a large message costs one receive and
    // one send, not one per 16 KiB; packing keeps small messages from paying for it.
    let mut host = Host::new();
    assert_eq!(host.buffer_size(), 64 << 10);
    let (mut clients, sockets) = host.accepted_clients(1, ACCEPT);
    // Written before the receive starts: it waits whole in the socket's buffer.
    let bytes = pattern(48_000, 7);
    clients[0].write_all(&bytes).unwrap();
    ok("recv", iot_recv(host.worker, sockets[0], 5, 0, 0));
    host.flush();
    let c = host.next_tagged(5);
    assert_eq!(c.result, 48_000, "{}", message(c.result));
    assert_eq!(host.payload(&c), bytes);
    host.give_back(&c);
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_burst_that_an_echo_sends_on_keeps_the_ring_near_its_budget() {
    // 128 connections' 32 KiB messages wait in their sockets before the host drains:
    // 4 MiB at once. A ring that doubled whenever a receive found it empty held 64
    // buffers of 64 KiB after it. Its budget is 16 KiB a socket: past it, the ring
    // waits a drain first, and the buffers the echo sends on come back in it.
    const SIZE: usize = 32 << 10;
    let Some(mut host) = packing_host() else {
        return;
    };
    let (clients, sockets) = host.accepted_clients(128, ACCEPT);
    let mut sessions = support::echo::EchoSessions::default();
    for &socket in &sockets {
        sessions.start(host.worker, socket);
    }
    host.flush();
    let (written, all_written) = std::sync::mpsc::channel();
    let clients = std::thread::spawn(move || {
        for (i, mut client) in clients.iter().enumerate() {
            client.write_all(&pattern(SIZE, i as u32)).unwrap();
        }
        written.send(()).unwrap();
        for (i, mut client) in clients.iter().enumerate() {
            let mut back = vec![0u8; SIZE];
            client.set_read_timeout(Some(DEADLINE)).unwrap();
            std::io::Read::read_exact(&mut client, &mut back).expect("an echo");
            assert!(back == pattern(SIZE, i as u32), "connection {i}");
        }
    });
    all_written
        .recv_timeout(DEADLINE)
        .expect("every message written");
    let mut batch = [iot_completion::default(); 64];
    while !clients.is_finished() {
        let n = ok(
            "drain",
            iot_worker_drain(host.worker, batch.as_mut_ptr(), 64),
        ) as usize;
        for c in &batch[..n] {
            sessions.on_completion(host.worker, c);
        }
        ok("flush", iot_worker_flush(host.worker));
        if n == 0 {
            ok("wait", iot_worker_wait(host.worker, 10));
        }
    }
    clients.join().expect("every echo came back");
    // 16 KiB for each of 129 sockets (the listener's too) is 33 buffers of 64 KiB.
    let ring = host.stats().recv_ring_buffers;
    assert!(ring <= 33, "the ring grew to {ring} buffers of 64 KiB");
}

/// `clients` each send `size` bytes at once, which wait in their sockets before the
/// host drains, while the host holds every piece it gets, sleeping in the worker
/// whenever it has drained everything (the worker must bring the drain that grows
/// the ring itself, or the wait would time out). Returns the pieces once every byte is
/// in, each connection's intact.
fn receive_all_holding(
    host: &mut Host,
    clients: &mut [TcpStream],
    sockets: &[u64],
    size: usize,
) -> Vec<iot_completion> {
    for &socket in sockets {
        ok(
            "recv",
            iot_recv(host.worker, socket, socket, IOT_OP_MULTISHOT, 0),
        );
    }
    host.flush();
    // Once the receives that found the ring empty wait for it, no other completion
    // can come.
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(&pattern(size, i as u32)).unwrap();
    }
    let mut received = vec![Vec::new(); sockets.len()];
    let mut held = Vec::new();
    let mut batch = [iot_completion::default(); 64];
    while received.iter().map(Vec::len).sum::<usize>() < sockets.len() * size {
        let n = ok(
            "drain",
            iot_worker_drain(host.worker, batch.as_mut_ptr(), 64),
        ) as usize;
        for c in batch[..n].iter().filter(|c| c.kind == IOT_KIND_RECV) {
            assert!(c.result > 0, "receive failed: {}", message(c.result));
            let from = sockets
                .iter()
                .position(|&s| s == c.tag)
                .expect("our socket");
            received[from].extend_from_slice(host.payload(c));
            held.push(*c);
        }
        if n == 0 {
            let woke = ok("wait", iot_worker_wait(host.worker, 5_000));
            assert_eq!(woke, 1, "the host slept with receives waiting for the ring");
        }
    }
    for (i, bytes) in received.iter().enumerate() {
        assert!(*bytes == pattern(size, i as u32), "connection {i}'s bytes");
    }
    held
}

#[test]
fn a_host_that_holds_what_it_receives_gets_every_byte_past_the_budget() {
    // 40 connections send 64 KiB each and the host keeps every piece: 2.5 MiB, past
    // the 1 MiB budget. The ring waits a drain, then grows, until every byte is in. (A
    // receive tried before the ring last grew used to wait for a buffer to come back
    // instead: for ever here.)
    const SIZE: usize = 64 << 10;
    let Some(mut host) = packing_host() else {
        return;
    };
    let (mut clients, sockets) = host.accepted_clients(40, ACCEPT);
    let held = receive_all_holding(&mut host, &mut clients, &sockets, SIZE);
    let ring = host.stats().recv_ring_buffers;
    assert!(
        ring > 16,
        "every byte is in, yet the ring has only {ring} buffers"
    );
    for c in &held {
        host.give_back(c);
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_burst_grows_the_ring_by_what_it_needs_not_by_doubling() {
    // 300 connections' 4 KiB, held: 19 buffers of 64 KiB. A ring that doubled at a
    // burst's failures went 4, 8, 16, 32, and the 13 buffers no receive needed stayed
    // ahead of every buffer that came back, so the next burst made their pages
    // resident too.
    let Some(mut host) = packing_host() else {
        return;
    };
    let (mut clients, sockets) = host.accepted_clients(300, ACCEPT);
    let held = receive_all_holding(&mut host, &mut clients, &sockets, 4096);
    let ring = host.stats().recv_ring_buffers;
    assert!(
        (19..=22).contains(&ring),
        "300 x 4 KiB held grew the ring to {ring} buffers of 64 KiB"
    );
    for c in &held {
        host.give_back(c);
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}
