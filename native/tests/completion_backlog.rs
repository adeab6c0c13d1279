//! A host that drains in small batches and falls behind: once the completion queue is
//! half full, `iot_worker_flush` reaps its CQEs into the worker's own queue, where they
//! wait, in order, for the next drain. Sends and writes reaped that way give their
//! buffers back to the pool at once; reads keep theirs until the host drains them.
//! Each test drives the C ABI as a demanding host would and checks what it sees:
//! every byte once and in order, every completion once, the buffers' owners, and that
//! nothing stays behind.

mod support;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::Instant;

use support::*;

/// A worker whose completion queue has 16 entries (half: 8): two SQEs (room for an op
/// and its linked timeout), one receive buffer, `send` send buffers (at most 7) of
/// 4 KiB; `next_power_of_two(max(2 * 4 + 1 + send, 1 * 16))` is 16.
fn sixteen_entry_queue(send: u32) -> Host {
    assert!(
        send <= 7,
        "more send buffers would grow the completion queue"
    );
    Host::with_ring(2, 1, send, 4096)
}

/// A host that fell behind: drains at most `max` completions, then flushes (which
/// moves the CQEs into the worker's queue when the kernel's is half full).
fn drain_batch(worker: u64, max: usize) -> Vec<iot_completion> {
    let mut batch = [iot_completion::default(); 8];
    let max = max.clamp(1, batch.len());
    let n = ok(
        "drain",
        iot_worker_drain(worker, batch.as_mut_ptr(), max as u32),
    ) as usize;
    ok("flush", iot_worker_flush(worker));
    batch[..n].to_vec()
}

/// `drain_batch`, then, when nothing was ready, a wait of up to `wait_ms` for more.
fn drain_or_wait(worker: u64, max: usize, wait_ms: u32) -> Vec<iot_completion> {
    let batch = drain_batch(worker, max);
    if batch.is_empty() {
        ok("wait", iot_worker_wait(worker, wait_ms));
    }
    batch
}

/// Turns for the loops that drain or wait, with no other bound: the deadline does.
const TURNS: u64 = 1_000_000;

/// The turns of a host's loop, all bounded by one deadline and a count.
struct Turns {
    deadline: Instant,
    count: u64,
    limit: u64,
}

impl Turns {
    fn new(limit: u64) -> Turns {
        Turns {
            deadline: Instant::now() + DEADLINE,
            count: 0,
            limit,
        }
    }

    /// Starts a turn; past the deadline or the turn limit, fails saying `what`.
    fn start(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        assert!(
            self.count < self.limit && Instant::now() < self.deadline,
            "stuck after {} turns: {}",
            self.count,
            what()
        );
    }

    /// A turn that drains at most `max` of `worker`'s completions (`drain_or_wait`,
    /// waiting up to 100 ms).
    fn next(
        &mut self,
        worker: u64,
        max: usize,
        what: impl FnOnce() -> String,
    ) -> Vec<iot_completion> {
        self.start(what);
        drain_or_wait(worker, max, 100)
    }

    /// Turns of at most `max` completions each until `count` came: all of them, in
    /// the order drained.
    fn collect(&mut self, worker: u64, count: usize, max: usize) -> Vec<iot_completion> {
        let mut got = Vec::new();
        while got.len() < count {
            let batch = self.next(worker, max, || format!("{got:?}"));
            got.extend(batch);
        }
        got
    }
}

/// Flushes until `done` holds for the worker's counters, draining nothing. Between
/// flushes a `sched_yield` enters the kernel, so task work this thread owes (a
/// receive, an accept whose socket became ready) posts its CQEs: no sleeping.
fn flush_until(host: &Host, what: &str, done: impl Fn(&iot_stats) -> bool) -> iot_stats {
    let mut turns = Turns::new(10 * TURNS);
    loop {
        host.flush();
        let stats = host.stats();
        if done(&stats) {
            return stats;
        }
        turns.start(|| format!("{what}: {stats:?}"));
        std::thread::yield_now();
    }
}

/// Every counter that says something stayed behind is 0, once a last drain took
/// what no host sees (a close's cancel leaves a CQE of its own) and found nothing.
fn assert_nothing_left(host: &Host) {
    let rest = drain_batch(host.worker, 8);
    assert!(rest.is_empty(), "completions nobody expected: {rest:?}");
    let stats = host.stats();
    assert_eq!(stats.ops_in_flight, 0, "{stats:?}");
    assert_eq!(stats.buffers_outstanding, 0, "{stats:?}");
    assert_eq!(stats.pieces_outstanding, 0, "{stats:?}");
    assert_eq!(stats.completions_ready, 0, "{stats:?}");
    assert_eq!(stats.sockets_open, 0, "{stats:?}");
}

/// Every send buffer the pool hands out now (each filled with `fill`, over what was
/// in it) is one of `expected`, and each of them comes once (`what` says so); then
/// each goes back once (a second release is refused).
fn assert_free_buffers(host: &Host, fill: &[u8], expected: &[u32], what: &str) {
    let mut again = Vec::new();
    while let Some(id) = host.try_filled_buffer(fill) {
        again.push(id);
        assert!(
            again.len() <= expected.len(),
            "the pool handed out {again:?}"
        );
    }
    let mut sorted = again.clone();
    sorted.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "{what}");
    for &id in &again {
        host.release(id as u16);
        assert_eq!(iot_buffer_release(host.worker, id, 0), IOT_E_BAD_BUFFER);
    }
}

/// A UDP socket of ours on 127.0.0.1, and its port.
fn udp_bound(host: &Host) -> (u64, u16) {
    let mut udp = 0;
    let ip = cstr("127.0.0.1");
    ok(
        "bind",
        iot_udp_bind(host.worker, ip.as_ptr(), 0, 0, &mut udp),
    );
    (udp, host.port(udp))
}

/// `udp_bound`, with a multishot datagram receive tagged `tag` queued on it.
fn udp_receiving(host: &Host, tag: u64) -> (u64, u16) {
    let (udp, port) = udp_bound(host);
    ok(
        "recv",
        iot_datagram_recv(host.worker, udp, tag, IOT_OP_MULTISHOT, 0),
    );
    (udp, port)
}

/// Datagrams `[0]`, `[1]`, ... `[count - 1]` to 127.0.0.1:`port`, from a new socket.
fn send_datagrams(port: u16, count: u8) {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..count {
        sender.send_to(&[seq], ("127.0.0.1", port)).unwrap();
    }
}

/// A multishot receive on each of `sockets`, tagged `tag | its index`, flushed.
fn start_receives(host: &Host, sockets: &[u64], tag: u64) {
    for (i, &socket) in sockets.iter().enumerate() {
        ok(
            "recv",
            iot_recv(host.worker, socket, tag | i as u64, IOT_OP_MULTISHOT, 0),
        );
    }
    host.flush();
}

const ACCEPT: u64 = 1;

/// `count` clients connect to a new listener whose multishot accept (tag `ACCEPT`)
/// the host flushes after each connect but does not drain. Returns, once every accept
/// completed, the listener, the clients in the order they connected, and the
/// worker's counters.
fn clients_not_drained(host: &Host, count: usize) -> (u64, Vec<TcpStream>, iot_stats) {
    let (listener, port) = host.accepting(ACCEPT);
    let clients = (0..count)
        .map(|_| {
            // The accept's CQE is posted as `connect` returns (task work of this thread).
            let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            host.flush();
            client
        })
        .collect();
    let stats = flush_until(host, "every accept completed", |s| {
        s.completions_ready as usize >= count
    });
    (listener, clients, stats)
}

/// Socket `i` of `sockets` is the accepted end of client `i` (as far as both go).
fn assert_accepted_in_order(host: &Host, sockets: &[u64], clients: &[TcpStream]) {
    for (i, (&socket, client)) in sockets.iter().zip(clients).enumerate() {
        assert_eq!(
            host.address(socket, IOT_ADDRESS_PEER).1,
            client.local_addr().unwrap().port(),
            "accept {i} is not client {i}"
        );
    }
}

/// Closes `listener`: the next completion of its multishot accept (tag `ACCEPT`) is
/// the last, cancelled.
fn close_accepting(host: &mut Host, listener: u64) {
    ok("close", iot_socket_close(host.worker, listener));
    let end = host.next_tagged(ACCEPT);
    assert_eq!(
        end.flags & IOT_COMPLETION_MORE,
        0,
        "an accept nobody made: {end:?}"
    );
    assert_eq!(
        end.result,
        -libc::ECANCELED,
        "{}: {end:?}",
        message(end.result)
    );
}

#[test]
fn accepts_a_host_leaves_waiting_are_kept_in_order_without_overflow() {
    // The host flushes after each connection but drains nothing: every time the
    // queue is half full the flush moves its 8 CQEs into the worker's queue, so 40
    // accepts fit a 16-entry queue that overflowed before.
    let _fds = fd_check();
    let mut host = sixteen_entry_queue(0);
    const CLIENTS: usize = 40;
    let (listener, clients, stats) = clients_not_drained(&host, CLIENTS);
    assert_eq!(
        stats.completion_overflows, 0,
        "the kernel parked accepts although the host flushed: {stats:?}"
    );
    assert_eq!(stats.completions_ready as usize, CLIENTS, "{stats:?}");
    // The accepted sockets were adopted when their CQEs were reaped.
    assert_eq!(stats.sockets_open as usize, CLIENTS + 1, "{stats:?}");

    let mut rng = Rng(0xacce);
    let mut turns = Turns::new(TURNS);
    let mut accepted = Vec::new();
    while accepted.len() < CLIENTS {
        let what = || format!("{} accepts", accepted.len());
        for c in turns.next(host.worker, 1 + rng.below(4), what) {
            assert_eq!((c.tag, c.kind), (ACCEPT, IOT_KIND_ACCEPT), "{c:?}");
            assert_eq!(c.result, 0, "accept: {}", message(c.result));
            assert_ne!(c.flags & IOT_COMPLETION_MORE, 0, "{c:?}");
            accepted.push(c.handle);
        }
    }
    // In the order the clients connected (the kernel's accept queue is FIFO).
    assert_accepted_in_order(&host, &accepted, &clients);
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), CLIENTS);
    host.close_all(&accepted);
    close_accepting(&mut host, listener);
    assert_nothing_left(&host);
    drop(clients);
}

const READ: u64 = 100;
const WRITE: u64 = 200;
const STAT: u64 = 300;

/// `iot_file_read` or `iot_file_write`.
type BlockOp = extern "C" fn(u64, u64, u32, u32, u32, u64, u64, u32) -> i32;

#[test]
fn reads_keep_their_buffers_until_drained_while_writes_give_theirs_back_at_once() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data");
    const BLOCK: usize = 4096;
    let old = pattern(4 * BLOCK, 7);
    std::fs::write(&path, &old).unwrap();
    let mut host = sixteen_entry_queue(7);
    let file = host.open_rw(&path);

    // Four buffers to read into, scribbled over so a read that did not land shows.
    let reads: Vec<u32> = (0..4).map(|_| host.filled_buffer(&[0xee; BLOCK])).collect();
    // Three to write from: blocks 4, 5 and 6 of the file.
    let news: Vec<Vec<u8>> = (0..3).map(|k| pattern(BLOCK, 100 + k)).collect();
    let writes: Vec<u32> = news.iter().map(|data| host.filled_buffer(data)).collect();
    let at = |block: usize| (block * BLOCK) as u64;
    // Block `block` of the file read into, or written from, the whole of buffer `id`.
    let whole_block = |what: &str, op: BlockOp, id: u32, block: usize, tag: u64| {
        let code = op(host.worker, file, id, 0, BLOCK as u32, at(block), tag, 0);
        ok(what, code);
    };
    let whole = |buffer_id: u32| iot_buffer_slice {
        buffer_id,
        offset: 0,
        len: BLOCK as u32,
    };

    // Eight CQEs: two reads, a vectored read into two buffers, two writes, a
    // vectored write, a stat of the file and one of its path.
    for (k, &id) in reads[..2].iter().enumerate() {
        whole_block("read", iot_file_read, id, k, READ + k as u64);
    }
    let into = [whole(reads[2]), whole(reads[3])];
    ok(
        "readv",
        iot_file_readv(host.worker, file, into.as_ptr(), 2, at(2), READ + 2, 0),
    );
    for (k, &id) in writes[..2].iter().enumerate() {
        whole_block("write", iot_file_write, id, 4 + k, WRITE + k as u64);
    }
    let from = [whole(writes[2])];
    ok(
        "writev",
        iot_file_writev(host.worker, file, from.as_ptr(), 1, at(6), WRITE + 2, 0),
    );
    let mut of_file = Box::new(iot_file_info::default());
    let mut of_path = Box::new(iot_file_info::default());
    ok(
        "stat",
        iot_file_stat(host.worker, file, &mut *of_file, STAT, 0),
    );
    let c_path = cstr(path.to_str().unwrap());
    ok(
        "path stat",
        iot_path_stat(host.worker, c_path.as_ptr(), &mut *of_path, STAT + 1, 0),
    );

    // Once all eight CQEs are in, a flush finds the queue half full and reaps them:
    // every op has ended while no completion was drained.
    let stats = flush_until(&host, "every op reaped by a flush", |s| {
        s.ops_in_flight == 0
    });
    assert_eq!(stats.completions_ready, 8, "{stats:?}");
    assert_eq!(stats.completion_overflows, 0, "{stats:?}");
    // The written buffers are the pool's again; the read ones still the reads'.
    assert_eq!(
        stats.buffers_outstanding, 4,
        "only the four read buffers stay lent until the host drains their reads: {stats:?}"
    );
    for &id in &reads {
        assert_eq!(
            iot_buffer_release(host.worker, id, 0),
            IOT_E_BAD_BUFFER,
            "buffer {id} was released while its read's completion waits"
        );
        assert_eq!(
            iot_file_write(host.worker, file, id, 0, 1, 0, 999, 0),
            IOT_E_BAD_BUFFER,
            "buffer {id} was lent again while its read's completion waits"
        );
    }
    // The pool hands out exactly the three written-from buffers again, each once:
    // scribbling over them now must not change what was written.
    assert_free_buffers(
        &host,
        &[0x55; BLOCK],
        &writes,
        "the buffers back in the pool",
    );

    let mut rng = Rng(0xf11e);
    let mut turns = Turns::new(TURNS);
    let mut seen = HashSet::new();
    while seen.len() < 8 {
        let what = || format!("completions seen: {seen:?}");
        for c in turns.next(host.worker, 1 + rng.below(3), what) {
            assert!(seen.insert(c.tag), "a second completion for {c:?}");
            match c.tag {
                READ..=101 => {
                    let k = (c.tag - READ) as usize;
                    assert_eq!(c.kind, IOT_KIND_FILE_READ);
                    assert_eq!(c.result, BLOCK as i32, "{}", message(c.result));
                    assert_ne!(c.flags & IOT_COMPLETION_BUFFER, 0, "{c:?}");
                    assert_eq!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                    assert_eq!(u32::from(c.buffer_id), reads[k]);
                    assert!(
                        host.payload(&c) == &old[k * BLOCK..(k + 1) * BLOCK],
                        "read {k} lost its bytes before the host drained it"
                    );
                    host.release(c.buffer_id);
                    assert_eq!(
                        iot_buffer_release(host.worker, u32::from(c.buffer_id), 0),
                        IOT_E_BAD_BUFFER
                    );
                }
                102 => {
                    assert_eq!(c.kind, IOT_KIND_FILE_READ);
                    assert_eq!(c.result, 2 * BLOCK as i32, "{}", message(c.result));
                    for k in 2..4 {
                        assert!(
                            host.buffer(reads[k], BLOCK) == &old[k * BLOCK..(k + 1) * BLOCK],
                            "the vectored read lost block {k} before the host drained it"
                        );
                        host.release(reads[k] as u16);
                    }
                }
                WRITE..=202 => {
                    assert_eq!(c.kind, IOT_KIND_FILE_WRITE);
                    assert_eq!(c.result, BLOCK as i32, "{}", message(c.result));
                    assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                    let id = writes[(c.tag - WRITE) as usize];
                    assert_eq!(
                        iot_buffer_release(host.worker, id, 0),
                        IOT_E_BAD_BUFFER,
                        "a written buffer released twice"
                    );
                }
                STAT | 301 => {
                    assert_eq!(c.kind, IOT_KIND_FILE_STAT);
                    assert_eq!(c.result, 0, "{}", message(c.result));
                    let info = if c.tag == STAT { &of_file } else { &of_path };
                    // Both ran after the reads and writes were submitted; the
                    // writes may or may not have extended the file by then.
                    assert!(
                        info.size >= old.len() as u64 && info.size <= 7 * BLOCK as u64,
                        "stat {}: {info:?}",
                        c.tag
                    );
                }
                _ => panic!("unexpected completion {c:?}"),
            }
        }
    }
    let now = std::fs::read(&path).unwrap();
    assert_eq!(now.len(), 7 * BLOCK);
    assert!(now[..4 * BLOCK] == old[..], "the reads changed the file");
    for (k, data) in news.iter().enumerate() {
        assert!(
            now[(4 + k) * BLOCK..(5 + k) * BLOCK] == data[..],
            "block {} is not what write {k} wrote",
            4 + k
        );
    }
    ok("close", iot_file_close(host.worker, file));
    assert_nothing_left(&host);
}

const RECV: u64 = 10;
const SEND: u64 = 1000;
const ECHO: u64 = 20;

#[test]
fn a_buffer_a_reaped_send_gave_back_cannot_be_released_again() {
    let _fds = fd_check();
    let mut host = sixteen_entry_queue(7);
    let (stream, mut peer) = host.connected_pair();
    let (udp, _) = udp_bound(&host);
    let target = UdpSocket::bind("127.0.0.1:0").unwrap();
    target.set_read_timeout(Some(DEADLINE)).unwrap();
    let target_port = target.local_addr().unwrap().port();
    ok(
        "recv",
        iot_recv(host.worker, stream, RECV, IOT_OP_MULTISHOT, 0),
    );
    host.flush();
    peer.write_all(b"zero-copy echo").unwrap();

    // Seven datagrams from the seven send buffers, plus the receive: eight CQEs.
    let ip = cstr("127.0.0.1");
    let sends = |host: &Host, round: u64| -> Vec<u32> {
        (0..7u64)
            .map(|k| {
                let id = host.filled_buffer(&pattern(64, (round * 7 + k) as u32));
                ok(
                    "send_to",
                    iot_udp_send_to(
                        host.worker,
                        udp,
                        id,
                        0,
                        64,
                        ip.as_ptr(),
                        target_port,
                        SEND + round * 7 + k,
                        0,
                    ),
                );
                id
            })
            .collect()
    };
    let lent = sends(&host, 0);
    let stats = flush_until(&host, "the sends and the receive reaped", |s| {
        s.ops_in_flight == 1 && s.completions_ready == 8
    });
    // The sent buffers are the pool's; only the received piece is the host's (in a
    // completion it has not drained yet).
    assert_eq!(stats.buffers_outstanding, 1, "{stats:?}");
    assert_eq!(stats.pieces_outstanding, 1, "{stats:?}");
    // A host that still counts them as lent to their sends releases them: refused,
    // and the pool is not corrupted by it.
    for &id in &lent {
        assert_eq!(
            iot_buffer_release(host.worker, id, 0),
            IOT_E_BAD_BUFFER,
            "buffer {id}, back in the pool, was released again"
        );
    }
    assert_free_buffers(
        &host,
        b"x",
        &lent,
        "the pool hands out each send buffer exactly once",
    );

    // Drained one at a time: the receive first (its CQE came first), then the sends
    // in the order they went out.
    let mut turns = Turns::new(TURNS);
    let mut order = turns.collect(host.worker, 8, 1);
    let received = order.remove(0);
    assert_eq!(received.tag, RECV, "{received:?}");
    assert_eq!(host.payload(&received), b"zero-copy echo");
    for (k, c) in order.iter().enumerate() {
        assert_eq!(
            c.tag,
            SEND + k as u64,
            "send completions out of order: {order:?}"
        );
        assert_eq!(c.result, 64, "{}", message(c.result));
        assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
    }
    let mut datagram = [0u8; 128];
    for k in 0..7 {
        let n = target.recv(&mut datagram).unwrap();
        assert_eq!(datagram[..n], pattern(64, k)[..], "datagram {k}");
    }

    // The received piece goes back out from where it arrived (no copy), behind seven
    // more datagrams: the echo is reaped before the host drains it, and the piece
    // goes back to the ring then.
    let len = received.result as u32;
    ok(
        "echo",
        iot_send(
            host.worker,
            stream,
            u32::from(received.buffer_id),
            received.offset,
            len,
            ECHO,
            0,
        ),
    );
    sends(&host, 1);
    let stats = flush_until(&host, "the echo and the sends reaped", |s| {
        s.ops_in_flight == 1 && s.completions_ready == 8
    });
    assert_eq!(stats.buffers_outstanding, 0, "{stats:?}");
    assert_eq!(stats.pieces_outstanding, 0, "{stats:?}");
    assert_eq!(
        iot_buffer_release(host.worker, u32::from(received.buffer_id), received.offset),
        IOT_E_BAD_BUFFER,
        "the echoed piece was released again"
    );
    let mut echo = [0u8; 14];
    peer.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"zero-copy echo");
    let seen = turns.collect(host.worker, 8, 3);
    assert_eq!(seen[0].tag, ECHO, "{seen:?}");
    assert_eq!(seen[0].result, len as i32);
    assert_ne!(seen[0].flags & IOT_COMPLETION_BUFFERS_RETURNED, 0);
    for (k, c) in seen[1..].iter().enumerate() {
        assert_eq!(c.tag, SEND + 7 + k as u64, "{seen:?}");
        assert_eq!(c.result, 64);
    }
    for k in 7..14 {
        let n = target.recv(&mut datagram).unwrap();
        assert_eq!(datagram[..n], pattern(64, k)[..], "datagram {k}");
    }
    host.close_all(&[stream, udp]);
    let end = host.next_where(|c| c.tag == RECV);
    assert_eq!(end.result, -libc::ECANCELED, "{end:?}");
    assert_nothing_left(&host);
}

#[test]
fn datagrams_reach_the_host_in_order_whether_reaped_early_or_read_from_the_queue() {
    // Some datagrams go back to their sender from the span they arrived in (no copy):
    // a flush that reaps the echo gives the span back to the datagram ring before the
    // host drains the echo's completion.
    let _fds = fd_check();
    const SENDERS: usize = 3;
    const PER_SENDER: u32 = 300;
    // Datagrams sent and not yet seen by the host: under the 64 spans of the
    // datagram ring, so the receive never runs dry.
    const WINDOW: usize = 40;
    const DGRAM: u64 = 7;
    const ECHOED: u64 = 8 << 32;
    let host = sixteen_entry_queue(0);
    let (socket, port) = udp_receiving(&host, DGRAM);
    host.flush();
    let senders: Vec<UdpSocket> = (0..SENDERS)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = senders
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let datagram = |k: usize, seq: u32, len: usize| {
        let mut bytes = vec![k as u8];
        bytes.extend_from_slice(&seq.to_le_bytes());
        bytes.extend(pattern(len, seq ^ (k as u32) << 16));
        bytes
    };

    for sender in &senders {
        sender.set_nonblocking(true).unwrap();
    }
    let mut back = vec![0u8; 512];
    let mut echoes_seen = [0usize; SENDERS];
    let check_echo = |k: usize,
                      bytes: &[u8],
                      seen: &mut [usize; SENDERS],
                      echoed: &[Vec<u32>],
                      lens: &[Vec<usize>]| {
        let seq = *echoed[k].get(seen[k]).expect("an echo the host never sent");
        assert!(
            bytes == &datagram(k, seq, lens[k][seq as usize])[..],
            "sender {k} got a wrong echo for {seq}"
        );
        seen[k] += 1;
    };
    let mut rng = Rng(0xd6a);
    let (mut sent, mut next) = ([0u32; SENDERS], [0u32; SENDERS]);
    let mut lens = vec![Vec::new(); SENDERS];
    // Per sender, the datagrams echoed, in order; and the echoes not yet completed.
    let mut echoed = vec![Vec::new(); SENDERS];
    let mut echoes: VecDeque<u64> = VecDeque::new();
    let mut outstanding = 0usize;
    let mut max_ready = 0;
    let total = SENDERS as u32 * PER_SENDER;
    let mut turns = Turns::new(100_000);
    while next.iter().sum::<u32>() < total || !echoes.is_empty() {
        turns.start(|| format!("{next:?}"));
        // At most five new datagrams a turn (and as many echoes): a queue flushed
        // below half (8) never fills up.
        for _ in 0..rng.below(6) {
            let k = rng.below(SENDERS);
            if sent[k] == PER_SENDER || outstanding >= WINDOW {
                continue;
            }
            let len = rng.below(200);
            lens[k].push(len);
            senders[k]
                .send_to(&datagram(k, sent[k], len), ("127.0.0.1", port))
                .unwrap();
            sent[k] += 1;
            outstanding += 1;
        }
        // The echoes that arrived so far (none is waited for here).
        for (k, sender) in senders.iter().enumerate() {
            while let Ok(n) = sender.recv(&mut back) {
                check_echo(k, &back[..n], &mut echoes_seen, &echoed, &lens);
            }
        }
        max_ready = max_ready.max(host.stats().completions_ready);
        let batch = drain_batch(host.worker, 1 + rng.below(3));
        if batch.is_empty() && outstanding > 0 {
            ok("wait", iot_worker_wait(host.worker, 100));
        }
        for c in batch {
            if c.tag & !0xffff_ffff == ECHOED {
                assert_eq!(Some(c.tag), echoes.pop_front(), "echoes out of order");
                assert!(c.result >= 5, "{}", message(c.result));
                assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                continue;
            }
            assert_eq!((c.tag, c.kind), (DGRAM, IOT_KIND_RECV_FROM), "{c:?}");
            assert!(c.result >= 5, "{c:?}: {}", message(c.result));
            assert_ne!(c.flags & IOT_COMPLETION_MORE, 0, "the receive ended: {c:?}");
            let payload = host.payload(&c);
            let k = payload[0] as usize;
            let seq = u32::from_le_bytes(payload[1..5].try_into().unwrap());
            assert_eq!(host.sender(c.buffer_id).1, ports[k]);
            assert_eq!(seq, next[k], "sender {k}'s datagrams out of order");
            assert!(
                payload == &datagram(k, seq, lens[k][seq as usize])[..],
                "datagram {k}/{seq} damaged"
            );
            next[k] += 1;
            outstanding -= 1;
            if rng.chance(50) {
                let tag = ECHOED | u64::from(seq) << 8 | k as u64;
                host.echo_datagram(socket, &c, tag);
                echoes.push_back(tag);
                echoed[k].push(seq);
            } else {
                host.release(c.buffer_id);
            }
        }
    }
    let stats = host.stats();
    assert_eq!(stats.completion_overflows, 0, "{stats:?}");
    assert!(
        max_ready > 16,
        "the backlog never outgrew the 16-entry queue ({max_ready}): the test did not \
         exercise the worker's own queue"
    );
    // Every echo reached its sender whole, in the order the host sent them.
    for (k, sender) in senders.iter().enumerate() {
        sender.set_nonblocking(false).unwrap();
        sender.set_read_timeout(Some(DEADLINE)).unwrap();
        while echoes_seen[k] < echoed[k].len() {
            let n = sender.recv(&mut back).unwrap();
            check_echo(k, &back[..n], &mut echoes_seen, &echoed, &lens);
        }
    }
    ok("cancel", iot_cancel(host.worker, DGRAM));
    let mut end = None;
    while end.is_none() {
        for c in turns.next(host.worker, 2, || "no end of the receive".into()) {
            assert_eq!(c.tag, DGRAM);
            assert_eq!(
                c.flags & IOT_COMPLETION_BUFFER,
                0,
                "a datagram nobody sent: {c:?}"
            );
            end = Some(c);
        }
    }
    assert_eq!(end.unwrap().result, -libc::ECANCELED);
    ok("close", iot_socket_close(host.worker, socket));
    assert_nothing_left(&host);
}

#[test]
fn messages_behind_a_backlog_arrive_in_order_and_stopped_comes_last() {
    let _fds = fd_check();
    require_messaging!();
    let sender = Host::new();
    let receiver = sixteen_entry_queue(0);
    const MESSAGES: u64 = 1000;
    let value = |seq: u64| (seq as u32).wrapping_mul(2_654_435_761);
    let mut rng = Rng(0x3e55);
    let (mut sent, mut reported, mut next) = (0, 0, 0);
    let mut max_ready = 0;
    let mut turns = Turns::new(100_000);
    while next < MESSAGES || reported < MESSAGES {
        turns.start(|| format!("{next} messages arrived, {reported} reported sent"));
        // At most six a turn, posted into the receiver's queue as the sender flushes.
        for _ in 0..rng.below(7) {
            if sent < MESSAGES {
                ok(
                    "message",
                    iot_message_send(sender.worker, receiver.worker, sent, value(sent)),
                );
                sent += 1;
            }
        }
        for c in drain_batch(sender.worker, 8) {
            assert_eq!((c.kind, c.tag), (IOT_KIND_MESSAGE_SENT, reported), "{c:?}");
            assert_eq!(c.result, 0, "{}", message(c.result));
            reported += 1;
        }
        max_ready = max_ready.max(receiver.stats().completions_ready);
        for c in drain_batch(receiver.worker, 1 + rng.below(4)) {
            assert_eq!(c.kind, IOT_KIND_MESSAGE, "{c:?}");
            assert_eq!(
                (c.tag, c.result as u32),
                (next, value(next)),
                "out of order"
            );
            next += 1;
        }
    }
    assert!(max_ready > 16, "the backlog stayed small ({max_ready})");
    let stats = receiver.stats();
    assert_eq!(stats.completion_overflows, 0, "{stats:?}");

    // A second round the receiver does not drain until it stopped: STOPPED comes after
    // every message, reaped early or not.
    // Flushed five at a time, the receiver's queue is reaped at ten: forty messages
    // wait in the worker's queue, the last eight in the kernel's.
    const SECOND: u64 = 48;
    for seq in 0..SECOND {
        ok(
            "message",
            iot_message_send(sender.worker, receiver.worker, seq, value(seq)),
        );
        if seq % 5 == 4 {
            sender.flush();
            receiver.flush();
        }
    }
    sender.flush();
    assert_eq!(receiver.stats().completions_ready as u64, SECOND);
    ok("stop", iot_worker_stop(receiver.worker));
    let mut stopped = false;
    let mut next = 0;
    while !stopped {
        let what = || format!("{next} messages, no STOPPED");
        for c in turns.next(receiver.worker, 1 + rng.below(4), what) {
            assert!(!stopped, "a completion after STOPPED: {c:?}");
            if c.kind == IOT_KIND_STOPPED {
                assert_eq!(next, SECOND, "STOPPED before every message arrived");
                stopped = true;
                continue;
            }
            assert_eq!((c.kind, c.tag), (IOT_KIND_MESSAGE, next), "{c:?}");
            next += 1;
        }
    }
    let rest = drain_batch(receiver.worker, 4);
    assert!(rest.is_empty(), "{rest:?}");
    let mut reported = 0;
    while reported < SECOND {
        let what = || format!("{reported} of {SECOND} messages reported sent");
        for c in turns.next(sender.worker, 8, what) {
            assert_eq!(
                (c.kind, c.tag, c.result),
                (IOT_KIND_MESSAGE_SENT, reported, 0)
            );
            reported += 1;
        }
    }
    assert_eq!(receiver.stats().completion_overflows, 0);
    assert_nothing_left(&sender);
    assert_nothing_left(&receiver);
}

/// One accepted connection of the flood, as the host sees it.
#[derive(Default)]
struct Conn {
    socket: u64,
    /// What arrived, in the order the completions came.
    received: Vec<u8>,
    eof: bool,
    /// Bytes of the download queued so far.
    queued: usize,
    /// Sends whose completion the host has not seen, oldest first: (tag, length,
    /// buffer).
    sends: VecDeque<(u64, usize, u32)>,
    next_send: u64,
    closed: bool,
}

const FLOOD_RECV: u64 = 1 << 32;
const FLOOD_SEND: u64 = 2 << 32;

#[test]
fn a_flood_drained_a_few_completions_at_a_time_delivers_every_byte_once_in_order() {
    let _fds = fd_check();
    const CONNS: usize = 32;
    const UPLOAD: usize = 64 << 10;
    const DOWNLOAD: usize = 32 << 10;
    const SIZE: usize = 64 << 10;
    // Two receive buffers of 64 KiB (packed receives share them), eight send buffers:
    // a 32-entry completion queue for 32 busy connections.
    let mut host = Host::with_ring(2, 2, 8, SIZE as u32);
    let (listener, port) = host.accepting(ACCEPT);
    let (clients, sockets) = host.accept_clients(port, CONNS, ACCEPT);
    assert_accepted_in_order(&host, &sockets, &clients);
    start_receives(&host, &sockets, FLOOD_RECV);
    let mut conns: Vec<Conn> = sockets
        .iter()
        .map(|&socket| Conn {
            socket,
            ..Conn::default()
        })
        .collect();
    // Each client writes its upload in uneven pieces, ends it, and reads the download
    // to the end (the host closes once it sent it all and saw the end).
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            std::thread::spawn(move || {
                client.set_read_timeout(Some(DEADLINE)).unwrap();
                client.set_write_timeout(Some(DEADLINE)).unwrap();
                client.set_nodelay(true).unwrap();
                let upload = pattern(UPLOAD, i as u32);
                let mut rng = Rng(i as u64 + 1);
                let mut at = 0;
                while at < UPLOAD {
                    let end = (at + 1 + rng.below(1500)).min(UPLOAD);
                    client.write_all(&upload[at..end]).unwrap();
                    at = end;
                }
                client.shutdown(Shutdown::Write).unwrap();
                let mut download = Vec::new();
                client.read_to_end(&mut download).unwrap();
                download
            })
        })
        .collect();

    let downloads: Vec<Vec<u8>> = (0..CONNS)
        .map(|i| pattern(DOWNLOAD, 1000 + i as u32))
        .collect();
    let mut rng = Rng(0xf100d);
    // Pieces the host holds a while before it gives them back, out of order.
    let mut held: Vec<iot_completion> = Vec::new();
    let mut max_ready = 0;
    let mut sends_done = 0;
    let mut stalled = 0;
    // Buffers lent to sends whose completion the host has not drained, and how many
    // times the pool handed out such a buffer again.
    let mut undrained: HashMap<u32, u32> = HashMap::new();
    let mut early_returns = 0;
    let mut turns = Turns::new(2_000_000);
    while conns.iter().any(|c| !c.closed) {
        turns.start(|| format!("{:?}", host.stats()));
        for _ in 0..CONNS {
            let i = rng.below(CONNS);
            let c = &mut conns[i];
            if c.closed || c.sends.len() >= 32 || c.queued == DOWNLOAD {
                continue;
            }
            let len = (1 + rng.below(4096)).min(DOWNLOAD - c.queued);
            let Some(id) = host.try_filled_buffer(&downloads[i][c.queued..c.queued + len]) else {
                break; // every send buffer is out: the sends' completions bring them back
            };
            // A buffer whose send the host has not seen complete is back in the pool:
            // the send was reaped by a flush.
            let sends_out = undrained.entry(id).or_insert(0);
            early_returns += usize::from(*sends_out > 0);
            *sends_out += 1;
            let tag = FLOOD_SEND | (i as u64) << 24 | c.next_send;
            ok(
                "send",
                iot_send(host.worker, c.socket, id, 0, len as u32, tag, 0),
            );
            c.queued += len;
            c.next_send += 1;
            c.sends.push_back((tag, len, id));
        }
        for c in conns.iter_mut() {
            if !c.closed && c.eof && c.queued == DOWNLOAD && c.sends.is_empty() {
                ok("close", iot_socket_close(host.worker, c.socket));
                c.closed = true;
            }
        }
        max_ready = max_ready.max(host.stats().completions_ready);
        let got = if stalled > 0 {
            // Busy elsewhere: the host only flushes (a syscall lets task work post).
            stalled -= 1;
            host.flush();
            std::thread::yield_now();
            Vec::new()
        } else {
            drain_or_wait(host.worker, 1 + rng.below(4), 50)
        };
        if stalled == 0 && rng.chance(10) {
            stalled = 1 + rng.below(60);
        }
        for c in got {
            let i = (c.tag & 0xff_ffff) as usize;
            match c.tag & !0xffff_ffff {
                FLOOD_RECV => {
                    let conn = &mut conns[c.tag as u32 as usize];
                    assert!(!conn.eof, "a receive completion after the end: {c:?}");
                    assert_eq!(c.kind, IOT_KIND_RECV);
                    if c.flags & IOT_COMPLETION_BUFFER != 0 {
                        assert!(c.result > 0, "{c:?}");
                        conn.received.extend_from_slice(host.payload(&c));
                        held.push(c);
                    }
                    if c.flags & IOT_COMPLETION_MORE == 0 {
                        assert_eq!(c.result, 0, "the receive ended: {}", message(c.result));
                        conn.eof = true;
                    }
                }
                FLOOD_SEND => {
                    let conn = &mut conns[(c.tag >> 24 & 0xff) as usize];
                    let (tag, len, id) = conn.sends.pop_front().expect("a send in flight");
                    assert_eq!(c.tag, tag, "sends completed out of order");
                    assert_eq!(c.kind, IOT_KIND_SEND);
                    assert_eq!(c.result, len as i32, "{}", message(c.result));
                    assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                    sends_done += 1;
                    *undrained.get_mut(&id).expect("lent") -= 1;
                }
                _ => panic!("unexpected completion {c:?} ({i})"),
            }
        }
        while held.len() > 12 || (!held.is_empty() && rng.chance(40)) {
            let c = held.swap_remove(rng.below(held.len()));
            host.give_back(&c);
        }
    }
    for c in held.drain(..) {
        host.give_back(&c);
    }
    for (i, (thread, conn)) in threads.into_iter().zip(&conns).enumerate() {
        let download = thread.join().expect("client");
        assert!(
            conn.received == pattern(UPLOAD, i as u32),
            "connection {i}: {} bytes arrived of {UPLOAD}, or out of order",
            conn.received.len()
        );
        assert!(
            download == downloads[i],
            "client {i}: {} bytes of {DOWNLOAD}, or out of order",
            download.len()
        );
    }
    assert!(sends_done >= CONNS * DOWNLOAD / 4096);
    assert!(
        early_returns > 0,
        "no send was reaped before the host drained it: the test missed the backlog"
    );
    eprintln!(
        "flood: {} turns, {sends_done} sends, {early_returns} buffers back before \
         their send's completion, most completions waiting {max_ready}, {:?}",
        turns.count,
        host.stats()
    );
    close_accepting(&mut host, listener);
    assert_nothing_left(&host);
}

const CLOSE_RECV: u64 = 3 << 32;
const CLOSE_SEND: u64 = 4 << 32;

#[test]
fn closes_with_queued_sends_behind_a_backlog_complete_each_send_once_in_order() {
    let _fds = fd_check();
    const PAIRS: usize = 8;
    const SENDS: usize = 3;
    const LEN: usize = 100;
    // One SQE, one receive buffer, 24 send buffers: max(1 * 4 + 1 + 24, 16) gives a
    // 32-entry queue (half: 16).
    let mut host = Host::with_ring(1, 1, 24, 4096);
    let mut pairs: Vec<(u64, TcpStream)> = (0..PAIRS).map(|_| host.connected_pair()).collect();
    let sockets: Vec<u64> = pairs.iter().map(|&(socket, _)| socket).collect();
    start_receives(&host, &sockets, CLOSE_RECV);
    let bytes = |i: usize, k: usize| pattern(LEN, (i * SENDS + k) as u32);
    let tag = |i: usize, k: usize| CLOSE_SEND | (i * SENDS + k) as u64;
    for (i, &socket) in sockets.iter().enumerate() {
        for k in 0..SENDS {
            let id = host.filled_buffer(&bytes(i, k));
            ok(
                "send",
                iot_send(host.worker, socket, id, 0, LEN as u32, tag(i, k), 0),
            );
        }
    }
    // Each socket's first send is in the kernel, the others queued behind it.
    flush_until(&host, "the first sends completed", |s| {
        s.completions_ready as usize >= PAIRS
    });
    // With a receive on each socket the queue is half full: the next flush reaps it,
    // which lets each socket's second send go; the host drained nothing yet. (Each
    // peer writes once: bytes left unread when the host closes would reset the
    // connection.)
    for (i, (_, peer)) in pairs.iter_mut().enumerate() {
        peer.write_all(&pattern(50, 500 + i as u32)).unwrap();
    }
    flush_until(&host, "the second sends completed", |s| {
        s.completions_ready as usize >= 3 * PAIRS
    });

    let mut rng = Rng(0xc105e);
    let mut received = vec![Vec::new(); PAIRS];
    let mut ended = vec![false; PAIRS];
    let mut next_send = vec![0; PAIRS];
    // Checks and counts what a drain brought (`next_send` is not captured: the
    // deadline's message shows it).
    let mut take = |got: Vec<iot_completion>, host: &Host, next_send: &mut Vec<usize>| {
        for c in got {
            if c.tag & !0xffff_ffff == CLOSE_RECV {
                let i = c.tag as u32 as usize;
                assert!(!ended[i], "a receive completion after the last: {c:?}");
                if c.flags & IOT_COMPLETION_BUFFER != 0 {
                    received[i].extend_from_slice(host.payload(&c));
                    host.give_back(&c);
                }
                if c.flags & IOT_COMPLETION_MORE == 0 {
                    assert_eq!(c.result, -libc::ECANCELED, "{c:?}");
                    ended[i] = true;
                }
            } else {
                let n = (c.tag & 0xffff_ffff) as usize;
                let (i, k) = (n / SENDS, n % SENDS);
                assert_eq!(c.tag & !0xffff_ffff, CLOSE_SEND, "{c:?}");
                assert_eq!(k, next_send[i], "socket {i}'s sends completed out of order");
                assert_eq!(c.result, LEN as i32, "{}", message(c.result));
                assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                next_send[i] += 1;
            }
        }
    };
    // Closed one at a time, a completion or two drained between.
    for &socket in &sockets {
        ok("close", iot_socket_close(host.worker, socket));
        take(
            drain_batch(host.worker, 1 + rng.below(2)),
            &host,
            &mut next_send,
        );
    }
    let mut turns = Turns::new(TURNS);
    loop {
        turns.start(|| format!("{next_send:?}"));
        let got = drain_batch(host.worker, 1 + rng.below(4));
        if got.is_empty() {
            break; // every socket is closed: nothing more is on its way
        }
        take(got, &host, &mut next_send);
    }
    assert_eq!(next_send, vec![SENDS; PAIRS], "sends that never completed");
    assert_eq!(ended, vec![true; PAIRS], "receives that never ended");
    for (i, (_, peer)) in pairs.iter_mut().enumerate() {
        let mut sent = Vec::new();
        peer.read_to_end(&mut sent).unwrap();
        let expected: Vec<u8> = (0..SENDS).flat_map(|k| bytes(i, k)).collect();
        assert!(
            sent == expected,
            "peer {i} got {} bytes, or out of order",
            sent.len()
        );
        assert!(
            received[i] == pattern(50, 500 + i as u32),
            "socket {i} delivered {} bytes, not the 50 its peer wrote",
            received[i].len()
        );
    }
    assert_nothing_left(&host);
}

const TIMED: u64 = 31;
const MULTI: u64 = 32;
const CANCELLED: u64 = 33;
const DONE: u64 = 34;
const FILLER: u64 = 35;

#[test]
fn timeouts_and_cancels_behind_a_backlog_complete_once() {
    let _fds = fd_check();
    let mut host = sixteen_entry_queue(0);
    let (a, _silent) = host.connected_pair();
    let (b, mut peer_b) = host.connected_pair();
    let (c, _never) = host.connected_pair();
    let (d, mut peer_d) = host.connected_pair();
    ok("recv", iot_recv(host.worker, a, TIMED, 0, 30));
    ok("recv", iot_recv(host.worker, b, MULTI, IOT_OP_MULTISHOT, 0));
    ok("recv", iot_recv(host.worker, c, CANCELLED, 0, 0));
    ok("recv", iot_recv(host.worker, d, DONE, 0, 0));
    let (udp, port) = udp_receiving(&host, FILLER);
    host.flush();
    peer_d.write_all(b"hello").unwrap();
    peer_b.write_all(b"0123456789").unwrap();
    send_datagrams(port, 8);
    // Ten CQEs: a flush reaps them, which ends d's receive before the host drains it.
    let stats = flush_until(&host, "d's receive reaped", |s| {
        s.completions_ready >= 10 && s.ops_in_flight == 4
    });
    assert_eq!(stats.completions_ready, 10, "{stats:?}");
    // Cancelling it now finds no op in flight (its completion waits to be drained);
    // whatever the call says, the completion comes once, with its bytes.
    let late = iot_cancel(host.worker, DONE);
    assert!(late == 0 || late == -libc::ENOENT, "{}", message(late));
    ok("cancel", iot_cancel(host.worker, CANCELLED));
    ok("cancel", iot_cancel(host.worker, MULTI));
    host.flush();

    let mut rng = Rng(0x71e);
    let mut finals: HashMap<u64, iot_completion> = HashMap::new();
    let mut multi_bytes = Vec::new();
    let mut datagrams = Vec::new();
    let mut turns = Turns::new(TURNS);
    while finals.len() < 4 || datagrams.len() < 8 {
        let what = || format!("{finals:?} {datagrams:?}");
        for c in turns.next(host.worker, 1 + rng.below(2), what) {
            if c.flags & IOT_COMPLETION_BUFFER != 0 {
                match c.tag {
                    MULTI => multi_bytes.extend_from_slice(host.payload(&c)),
                    DONE => assert_eq!(host.payload(&c), b"hello"),
                    FILLER => datagrams.push(host.payload(&c)[0]),
                    _ => panic!("bytes for {c:?}"),
                }
                host.give_back(&c);
            }
            if c.flags & IOT_COMPLETION_MORE == 0 {
                assert_ne!(c.tag, FILLER, "the datagram receive ended: {c:?}");
                let before = finals.insert(c.tag, c);
                assert!(before.is_none(), "a second last completion for {c:?}");
            }
        }
    }
    assert_eq!(
        finals[&TIMED].result,
        -libc::ETIMEDOUT,
        "{:?}",
        finals[&TIMED]
    );
    assert_eq!(finals[&CANCELLED].result, -libc::ECANCELED);
    assert_eq!(finals[&MULTI].result, -libc::ECANCELED);
    assert_eq!(finals[&DONE].result, 5, "{:?}", finals[&DONE]);
    assert_eq!(multi_bytes, b"0123456789");
    assert_eq!(
        datagrams,
        (0..8).collect::<Vec<u8>>(),
        "datagrams out of order"
    );
    eprintln!(
        "cancel of a receive reaped but not drained: {}",
        message(late)
    );
    host.cancel_to_end(FILLER);
    host.close_all(&[a, b, c, d, udp]);
    assert_nothing_left(&host);
}

const STREAM: u64 = 40;
const FORWARD: u64 = 5 << 32;

#[test]
fn a_file_streamed_on_zero_copy_behind_a_backlog_arrives_whole_and_in_order() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("stream");
    let content = pattern(192 << 10, 0x5157);
    std::fs::write(&path, &content).unwrap();
    // Two receive buffers (the stream's chunks land in them): a 32-entry queue.
    let mut host = Host::with_ring(2, 2, 0, 4096);
    let file = host.open_rw(&path);
    let (stream, mut peer) = host.connected_pair();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        got
    });
    let (udp, port) = udp_receiving(&host, FILLER);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Window 1: the stream reads on only once its last chunk came back, which is
    // when the send that forwards it (zero copy) completes.
    ok(
        "stream",
        iot_file_read_stream(host.worker, file, 0, 1, STREAM, 0),
    );
    host.flush();

    let mut rng = Rng(0x57e);
    let (mut forwarded, mut chunks, mut sends_done) = (0usize, 0u64, 0u64);
    let (mut datagrams_sent, mut datagrams_seen) = (0u32, 0u32);
    let mut stream_done = false;
    let mut turns = Turns::new(1_000_000);
    while !stream_done || sends_done < chunks || datagrams_seen < datagrams_sent {
        turns.start(|| format!("{forwarded} bytes"));
        for _ in 0..rng.below(6) {
            if datagrams_sent - datagrams_seen < 40 {
                sender
                    .send_to(&datagrams_sent.to_le_bytes(), ("127.0.0.1", port))
                    .unwrap();
                datagrams_sent += 1;
            }
        }
        for c in drain_or_wait(host.worker, 1 + rng.below(4), 50) {
            match c.tag {
                FILLER => {
                    let seq = u32::from_le_bytes(host.payload(&c).try_into().unwrap());
                    assert_eq!(seq, datagrams_seen, "datagrams out of order");
                    datagrams_seen += 1;
                    host.release(c.buffer_id);
                }
                STREAM if c.flags & IOT_COMPLETION_MORE != 0 => {
                    assert!(c.result > 0, "{c:?}");
                    let len = c.result as usize;
                    assert!(
                        host.payload(&c) == &content[forwarded..forwarded + len],
                        "chunk {chunks} is not the file's bytes at {forwarded}"
                    );
                    ok(
                        "forward",
                        iot_send(
                            host.worker,
                            stream,
                            u32::from(c.buffer_id),
                            c.offset,
                            len as u32,
                            FORWARD | chunks,
                            0,
                        ),
                    );
                    forwarded += len;
                    chunks += 1;
                }
                STREAM => {
                    assert_eq!(c.result, 0, "the stream failed: {}", message(c.result));
                    assert!(!stream_done);
                    stream_done = true;
                }
                _ => {
                    assert_eq!(c.tag, FORWARD | sends_done, "forwards out of order");
                    assert!(c.result > 0, "{}", message(c.result));
                    assert_ne!(c.flags & IOT_COMPLETION_BUFFERS_RETURNED, 0, "{c:?}");
                    sends_done += 1;
                }
            }
        }
    }
    assert_eq!(forwarded, content.len());
    ok("close", iot_socket_close(host.worker, stream));
    let got = reader.join().expect("reader");
    assert!(
        got == content,
        "the peer got {} bytes, or out of order",
        got.len()
    );
    host.cancel_to_end(FILLER);
    ok("close", iot_socket_close(host.worker, udp));
    ok("close", iot_file_close(host.worker, file));
    assert_nothing_left(&host);
}

#[test]
fn accepts_reaped_before_their_listener_closed_still_hand_over_live_sockets() {
    // Accepts a flush reaped were adopted then: when the host closes the listener
    // before draining them, their completions still come, each with an open socket
    // the host must close. Those still in the kernel's queue are closed unseen.
    let _fds = fd_check();
    let host = sixteen_entry_queue(0);
    const CLIENTS: usize = 11;
    let (listener, mut clients, stats) = clients_not_drained(&host, CLIENTS);
    // The eighth CQE made a flush reap eight accepts; three wait in the kernel's queue.
    assert_eq!(stats.sockets_open, 1 + 8, "{stats:?}");
    ok("close", iot_socket_close(host.worker, listener));
    let mut accepted = Vec::new();
    let mut ended = None;
    let mut turns = Turns::new(TURNS);
    while ended.is_none() {
        for c in turns.next(host.worker, 2, || format!("{accepted:?}")) {
            assert_eq!(c.tag, ACCEPT, "{c:?}");
            assert!(ended.is_none(), "an accept after the last: {c:?}");
            if c.flags & IOT_COMPLETION_MORE == 0 {
                ended = Some(c.result);
            } else {
                assert_eq!(c.result, 0, "{}", message(c.result));
                accepted.push(c.handle);
            }
        }
    }
    assert_eq!(ended, Some(-libc::ECANCELED));
    assert_eq!(accepted.len(), 8, "the accepts reaped before the close");
    assert_accepted_in_order(&host, &accepted, &clients);
    host.close_all(&accepted);
    // The three the host never saw were closed by the worker: their clients read
    // the end of the stream (or a reset), never a hang.
    for client in &mut clients[8..] {
        client.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut byte = [0u8; 1];
        match client.read(&mut byte) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("a connection nobody accepted: {other:?}"),
        }
    }
    assert_nothing_left(&host);
}

const PIECE_RECV: u64 = 50;
const PIECE_READ: u64 = 51;

#[test]
fn a_file_read_into_a_received_piece_keeps_the_piece_until_drained() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("piece");
    let content = pattern(300, 0x9ead);
    std::fs::write(&path, &content).unwrap();
    let mut host = sixteen_entry_queue(0);
    let file = host.open_rw(&path);
    let (stream, mut peer) = host.connected_pair();
    peer.write_all(&[0xaa; 200]).unwrap();
    ok("recv", iot_recv(host.worker, stream, PIECE_RECV, 0, 0));
    let piece = host.next_tagged(PIECE_RECV);
    assert!(piece.result > 0, "{}", message(piece.result));
    assert_ne!(piece.flags & IOT_COMPLETION_PIECE, 0, "{piece:?}");
    let len = piece.result as u32;
    let (id, at) = (u32::from(piece.buffer_id), piece.offset);
    // The file's bytes go over the received ones, in place.
    ok(
        "read",
        iot_file_read(host.worker, file, id, at, len, 0, PIECE_READ, 0),
    );
    let (udp, port) = udp_receiving(&host, FILLER);
    host.flush();
    send_datagrams(port, 7);
    let stats = flush_until(&host, "the read reaped", |s| {
        s.ops_in_flight == 1 && s.completions_ready == 8
    });
    assert_eq!(stats.pieces_outstanding, 1, "{stats:?}");
    assert_eq!(
        iot_buffer_release(host.worker, id, at),
        IOT_E_BAD_BUFFER,
        "the piece was released while its read's completion waits"
    );
    assert_eq!(
        iot_send(host.worker, stream, id, at, len, 999, 0),
        IOT_E_BAD_BUFFER,
        "the piece was lent again while its read's completion waits"
    );
    let mut seen = Vec::new();
    let mut read = None;
    for c in Turns::new(TURNS).collect(host.worker, 8, 1) {
        if c.tag == FILLER {
            seen.push(host.payload(&c)[0]);
            host.release(c.buffer_id);
            continue;
        }
        assert_eq!((c.tag, c.kind), (PIECE_READ, IOT_KIND_FILE_READ), "{c:?}");
        assert!(read.replace(c).is_none(), "a second read completion");
    }
    assert_eq!(seen, (0..7).collect::<Vec<u8>>());
    let read = read.expect("the read's completion");
    assert_eq!(read.result, len as i32, "{}", message(read.result));
    assert_ne!(read.flags & IOT_COMPLETION_BUFFER, 0, "{read:?}");
    assert_eq!((u32::from(read.buffer_id), read.offset), (id, at));
    assert!(
        host.buffer_range(id, at as usize, len as usize) == &content[..len as usize],
        "the piece lost the file's bytes before the host drained the read"
    );
    ok("release", iot_buffer_release(host.worker, id, at));
    assert_eq!(iot_buffer_release(host.worker, id, at), IOT_E_BAD_BUFFER);
    host.cancel_to_end(FILLER);
    host.close_all(&[stream, udp]);
    ok("close", iot_file_close(host.worker, file));
    assert_nothing_left(&host);
}

const TLS_RECV: u64 = 60;
const SEND_A: u64 = 61;
const SEND_B: u64 = 62;

// Send B waits behind send A on a TLS socket whose session fails (the peer sent a
// record that does not decrypt) before A's CQE is seen: B cannot be sealed and ends
// when A's CQE lets it start. Stream sends complete in the order queued (hosts such
// as the Dart StreamSender match each completion to the oldest send in flight), so
// A's completion must reach the host before B's, whether A's CQE was drained or
// reaped by a flush.

#[test]
fn a_send_that_cannot_start_behind_a_drained_one_completes_after_it() {
    let _fds = fd_check();
    assert_eq!(
        sends_behind_a_failed_session(false),
        [TLS_RECV, SEND_A, SEND_B]
    );
}

#[test]
fn a_send_that_cannot_start_behind_a_reaped_one_completes_after_it() {
    // Held while the order is checked: a failure's backtrace opens files.
    let _fds = fd_check();
    assert_eq!(
        sends_behind_a_failed_session(true),
        [TLS_RECV, SEND_A, SEND_B],
        "send B's completion came before send A's, queued first"
    );
}

/// The order in which the failed receive and sends A and B complete, their CQEs
/// drained (or, with `reap`, first reaped by a flush that finds the queue half full).
/// The caller holds `fd_check()`.
fn sends_behind_a_failed_session(reap: bool) -> Vec<u64> {
    use support::tls::*;
    let pki = Pki::new("backlog CA");
    let mut host = sixteen_entry_queue(7);
    let config = server_config(&pki, 0, &[]);
    let (listener, port) = host.listen("127.0.0.1", 0);
    let (socket, mut stream) = host.handshaken_on(listener, port, &pki, config);
    let (udp, udp_port) = udp_receiving(&host, FILLER);
    ok("recv", iot_recv(host.worker, socket, TLS_RECV, 0, 0));
    host.flush();
    assert_eq!(host.stats().completions_ready, 0);

    // An application-data record whose ciphertext is noise: the receive's CQE is
    // posted as the write returns, and waits in the queue.
    let mut record = vec![23, 3, 3, 0, 40];
    record.extend(pattern(40, 9));
    stream.sock.write_all(&record).unwrap();
    flush_until(&host, "the receive's CQE", |s| s.completions_ready == 1);
    // A is sealed and submitted now (the session has not seen the noise yet); B
    // waits behind it. A's CQE follows the receive's.
    let a = host.filled_buffer(b"first");
    ok("send", iot_send(host.worker, socket, a, 0, 5, SEND_A, 0));
    let b = host.filled_buffer(b"second");
    ok("send", iot_send(host.worker, socket, b, 0, 6, SEND_B, 0));
    flush_until(&host, "A's CQE", |s| s.completions_ready == 2);
    let mut expected = 3;
    if reap {
        // Six datagrams fill the queue to half: the next flush reaps the receive
        // (the session fails), then A (B cannot be sealed and ends at once).
        send_datagrams(udp_port, 6);
        expected += 6;
        flush_until(&host, "everything reaped", |s| {
            s.completions_ready == expected && s.ops_in_flight == 1
        });
    }
    let order = Turns::new(TURNS).collect(host.worker, expected as usize, 1);
    for c in order.iter().filter(|c| c.tag == FILLER) {
        host.release(c.buffer_id);
    }
    let of = |tag: u64| *order.iter().find(|c| c.tag == tag).unwrap();
    assert_eq!(of(TLS_RECV).result, IOT_E_TLS_DECRYPT, "{:?}", of(TLS_RECV));
    assert_eq!(of(SEND_A).result, 5, "{}", message(of(SEND_A).result));
    assert_eq!(
        of(SEND_B).result,
        IOT_E_TLS_STATE,
        "{}",
        message(of(SEND_B).result)
    );
    host.cancel_to_end(FILLER);
    host.close_all(&[socket, listener, udp]);
    ok("free", iot_tls_config_free(config));
    drop(stream);
    assert_nothing_left(&host);
    order
        .iter()
        .map(|c| c.tag)
        .filter(|&tag| tag != FILLER)
        .collect()
}
