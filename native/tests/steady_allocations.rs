//! A worker in a steady state allocates nothing per operation: once an echo's
//! connections are open and warmed up, receiving (multishot, or one receive at a time
//! with a timeout), sending (zero copy, or copied into an acquired send buffer; a
//! datagram to its sender's address), draining, flushing and waiting call the
//! allocator no more often than the worker's tables grow to a new high-water mark (a
//! ring that grows by a buffer, a buffer's list of pieces that doubles), far less than
//! once per round trip. Its own test binary: it counts with a global allocator, and
//! only what the serving thread allocates while the client measures.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_char;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use support::*;

struct Counting;

static MEASURING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the thread that drives the worker: only its allocations count.
    static SERVING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if MEASURING.load(Ordering::Relaxed) && SERVING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as the caller promised us.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: as the caller promised us.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: as the caller promised us.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised us.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The tests share the counters: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const ACCEPT: u64 = u64::MAX;

/// How many connections echo, and how many round trips each makes before the count
/// starts and while it runs.
#[derive(Clone, Copy)]
struct Load {
    connections: usize,
    warm_up_rounds: usize,
    measured_rounds: usize,
}

/// 32 connections of 4 KiB keep 128 KiB in flight, half the receive ring a worker
/// starts with: the ring need not grow while the test measures.
const SHARED: Load = Load {
    connections: 32,
    warm_up_rounds: 800,
    measured_rounds: 800,
};

/// One connection, one message at a time: the host drains everything before it waits,
/// so its wait always submits (nothing is pending to make the wait flush instead).
/// The warm-up cycles 64 B messages through all of the first ring's 256 KiB, so each
/// buffer's list of pieces was made before the count.
const ONE_AT_A_TIME_ON_ONE: Load = Load {
    connections: 1,
    warm_up_rounds: 5_000,
    measured_rounds: 3_000,
};

/// Round trips per allocation that a table's growth to a new high-water mark may cost
/// at most (25 in the shared load's measured round trips; 0-2 are usual). One
/// allocation per operation would be 2 to 4 per round trip; staged timespecs that are
/// never reused, one per 32 round trips with timeouts on one connection.
const ROUND_TRIPS_PER_ALLOCATION: usize = 1_000;

#[derive(Clone, Copy, PartialEq)]
enum Echo {
    /// The received piece itself is sent back.
    ZeroCopy,
    /// The bytes are copied into an acquired send buffer, and the piece released.
    Copied,
    /// As `ZeroCopy`, with one-shot receives and sends that each carry a timeout (a
    /// connection with a read timeout and a write timeout, as the Dart layer makes them).
    WithTimeouts,
}

/// A timeout no operation of the test reaches.
const TIMEOUT_MS: u32 = 20_000;

/// How the serving loop submits what it queued.
#[derive(Clone, Copy, PartialEq)]
enum Submit {
    /// `iot_worker_flush` every turn, then a wait when the turn found nothing.
    Flush,
    /// Only `iot_worker_wait`, every turn (it submits without the worker's lock).
    Wait,
}

#[test]
fn a_zero_copy_echo_allocates_nothing_per_round_trip() {
    assert_steady(Echo::ZeroCopy, Submit::Flush, SHARED);
}

#[test]
fn a_copying_echo_allocates_nothing_per_round_trip() {
    assert_steady(Echo::Copied, Submit::Flush, SHARED);
}

#[test]
fn an_echo_with_timeouts_allocates_nothing_per_round_trip() {
    assert_steady(Echo::WithTimeouts, Submit::Flush, SHARED);
}

#[test]
fn a_host_that_submits_only_by_waiting_allocates_nothing_per_round_trip() {
    assert_steady(Echo::WithTimeouts, Submit::Wait, ONE_AT_A_TIME_ON_ONE);
}

#[test]
fn a_datagram_echo_allocates_nothing_per_round_trip() {
    assert_steady_datagrams(Receive::Multishot);
}

#[test]
fn a_datagram_echo_receiving_with_timeouts_allocates_nothing_per_round_trip() {
    assert_steady_datagrams(Receive::OneAtATimeWithTimeout);
}

/// How the datagram echo receives.
#[derive(Clone, Copy, PartialEq)]
enum Receive {
    Multishot,
    /// A one-shot receive with a timeout, made again after each datagram (a datagram
    /// socket with a read timeout, as the Dart layer makes it).
    OneAtATimeWithTimeout,
}

fn assert_steady_datagrams(receive: Receive) {
    for size in [64, 1024] {
        let counted = steady_datagram_allocations(receive, size);
        assert_few(
            counted,
            SHARED,
            &format!("datagram round trips of {size} B"),
        );
    }
}

fn assert_steady(echo: Echo, submit: Submit, load: Load) {
    for size in [64, 4096] {
        let counted = steady_allocations(echo, submit, load, size);
        assert_few(counted, load, &format!("round trips of {size} B"));
    }
}

/// `counted` allocations in `load`'s measured round trips are no more than its tables'
/// growth may cost.
fn assert_few(counted: usize, load: Load, what: &str) {
    let round_trips = load.connections * load.measured_rounds;
    eprintln!("{counted} allocations in {round_trips} {what}");
    assert!(
        counted <= round_trips / ROUND_TRIPS_PER_ALLOCATION,
        "{counted} allocations in {round_trips} {what}"
    );
}

/// The serving thread's heap allocations while `measure` runs.
fn allocations_during(measure: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    MEASURING.store(true, Ordering::SeqCst);
    measure();
    MEASURING.store(false, Ordering::SeqCst);
    ALLOCATIONS.load(Ordering::SeqCst)
}

/// Heap allocations of the serving thread over `load`'s measured round trips of
/// `size`-byte messages, after its warm-up.
fn steady_allocations(echo: Echo, submit: Submit, load: Load, size: usize) -> usize {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let host = Host::new();
    let (listener, port) = host.accepting(ACCEPT);
    let worker = host.worker;
    let server = thread::spawn(move || serve(host, echo, submit));

    let mut clients: Vec<TcpStream> = (0..load.connections)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.set_nodelay(true).unwrap();
            s
        })
        .collect();
    let mut back = vec![0u8; size];
    let mut round_trips = |rounds: usize| {
        for round in 0..rounds {
            let message = pattern(size, round as u32);
            for s in &mut clients {
                s.write_all(&message).unwrap();
            }
            for s in &mut clients {
                s.read_exact(&mut back).unwrap();
                assert!(back == message, "echo differs in round {round}");
            }
        }
    };
    round_trips(load.warm_up_rounds);
    let counted = allocations_during(|| round_trips(load.measured_rounds));

    drop(clients);
    ok("close listener", iot_socket_close(worker, listener));
    let stats = server.join().expect("server thread");
    assert_eq!(
        (stats.sockets_open, stats.buffers_outstanding),
        (0, 0),
        "the echo left sockets or buffers behind"
    );
    counted
}

/// Serves the echo, submitting as `submit` says, until the accept ended and every
/// connection closed; returns the worker's counters then.
fn serve(host: Host, echo: Echo, submit: Submit) -> iot_stats {
    let worker = host.worker;
    let (mut open, mut accepting) = (0usize, true);
    drive(host, submit, |host, completions| {
        for c in completions {
            match c.kind {
                IOT_KIND_ACCEPT if c.result == 0 => {
                    open += 1;
                    receive(worker, c.handle, echo);
                }
                IOT_KIND_ACCEPT => accepting &= c.flags & IOT_COMPLETION_MORE != 0,
                IOT_KIND_RECV if c.result > 0 => {
                    send_back(host, c, echo);
                    if echo == Echo::WithTimeouts {
                        receive(worker, c.tag, echo);
                    }
                }
                IOT_KIND_RECV if c.flags & IOT_COMPLETION_MORE == 0 => {
                    // End of stream (or an error): the connection is done.
                    ok("close", iot_socket_close(worker, c.tag));
                    open -= 1;
                }
                IOT_KIND_SEND => assert!(c.result > 0, "send: {}", message(c.result)),
                _ => {}
            }
        }
        accepting || open > 0
    })
}

/// Drives `host`'s worker from the serving thread as a host does, a turn at a time
/// with a fixed completion array: each turn's completions go to `turn`, then what it
/// queued is submitted as `submit` says, until `turn` says the echo ended (bounded in
/// time). Returns the worker's counters then, and frees it.
fn drive(
    host: Host,
    submit: Submit,
    mut turn: impl FnMut(&Host, &[iot_completion]) -> bool,
) -> iot_stats {
    SERVING.with(|s| s.set(true));
    let worker = host.worker;
    let mut completions = [iot_completion::default(); 256];
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < give_up, "the echo did not end in time");
        let n = iot_worker_drain(worker, completions.as_mut_ptr(), completions.len() as u32);
        let n = ok("drain", n) as usize;
        let serving = turn(&host, &completions[..n]);
        match submit {
            Submit::Flush => {
                ok("flush", iot_worker_flush(worker));
                if n == 0 {
                    ok("wait", iot_worker_wait(worker, 50));
                }
            }
            Submit::Wait => {
                ok("wait", iot_worker_wait(worker, 50));
            }
        }
        if !serving {
            break;
        }
    }
    let stats = host.stats();
    drop(host);
    stats
}

/// The next receive on `socket`, tagged with it: one multishot receive for good, or
/// one receive with a timeout.
fn receive(worker: u64, socket: u64, echo: Echo) {
    let code = match echo {
        Echo::WithTimeouts => iot_recv(worker, socket, socket, 0, TIMEOUT_MS),
        _ => iot_recv(worker, socket, socket, IOT_OP_MULTISHOT, 0),
    };
    ok("recv", code);
}

fn send_back(host: &Host, c: &iot_completion, echo: Echo) {
    let worker = host.worker;
    let len = c.result as u32;
    match echo {
        Echo::ZeroCopy | Echo::WithTimeouts => {
            let buffer = u32::from(c.buffer_id);
            let timeout = if echo == Echo::WithTimeouts {
                TIMEOUT_MS
            } else {
                0
            };
            let code = iot_send(worker, c.tag, buffer, c.offset, len, c.tag, timeout);
            ok("send", code);
        }
        Echo::Copied => {
            let copy = host.filled_buffer(host.payload(c));
            host.give_back(c);
            ok("send", iot_send(worker, c.tag, copy, 0, len, c.tag, 0));
        }
    }
}

/// As `steady_allocations`, for a UDP echo: one socket, a multishot receive, each
/// datagram sent back from its own buffer to its sender's address; `SHARED`'s load,
/// a client socket per connection.
fn steady_datagram_allocations(receive: Receive, size: usize) -> usize {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let host = Host::new();
    let ip = std::ffi::CString::new("127.0.0.1").unwrap();
    let mut socket = 0;
    ok(
        "udp bind",
        iot_udp_bind(host.worker, ip.as_ptr(), 0, 0, &mut socket),
    );
    let port = host.port(socket);
    let worker = host.worker;
    let server = thread::spawn(move || serve_datagrams(host, socket, receive));

    let clients: Vec<UdpSocket> = (0..SHARED.connections)
        .map(|_| {
            let s = UdpSocket::bind(("127.0.0.1", 0)).expect("bind");
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.connect(("127.0.0.1", port)).expect("connect");
            s
        })
        .collect();
    let mut back = vec![0u8; size + 1];
    let round_trips = |rounds: usize, back: &mut Vec<u8>| {
        for round in 0..rounds {
            let message = pattern(size, round as u32);
            for s in &clients {
                s.send(&message).unwrap();
            }
            for s in &clients {
                let n = recv_retrying(s, back);
                assert!(back[..n] == message[..], "echo differs in round {round}");
            }
        }
    };
    round_trips(SHARED.warm_up_rounds, &mut back);
    let counted = allocations_during(|| round_trips(SHARED.measured_rounds, &mut back));

    ok("close", iot_socket_close(worker, socket));
    let stats = server.join().expect("server thread");
    assert_eq!(
        (stats.sockets_open, stats.buffers_outstanding),
        (0, 0),
        "the echo left sockets or buffers behind"
    );
    counted
}

/// A datagram into `into`, as `UdpSocket::recv`, but again when a signal interrupted
/// the wait (a socket with a receive timeout reports that as `EINTR`; `read_exact`
/// retries it for the stream clients, `recv` does not).
fn recv_retrying(socket: &UdpSocket, into: &mut [u8]) -> usize {
    loop {
        match socket.recv(into) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            received => return received.expect("recv"),
        }
    }
}

/// Echoes the datagrams of `socket`, receiving as `receive` says, until its receive
/// ends (the socket was closed) and every echo was sent; returns the worker's counters
/// then.
fn serve_datagrams(host: Host, socket: u64, receive: Receive) -> iot_stats {
    let worker = host.worker;
    let tag = socket;
    let receive_next = || {
        let code = match receive {
            Receive::Multishot => iot_datagram_recv(worker, socket, tag, IOT_OP_MULTISHOT, 0),
            Receive::OneAtATimeWithTimeout => iot_datagram_recv(worker, socket, tag, 0, TIMEOUT_MS),
        };
        ok("recv", code);
    };
    receive_next();
    let (mut receiving, mut sending) = (true, 0usize);
    drive(host, Submit::Flush, |_, completions| {
        for c in completions {
            match c.kind {
                IOT_KIND_RECV_FROM if c.result >= 0 && c.flags & IOT_COMPLETION_BUFFER != 0 => {
                    let mut text = [0 as c_char; 64];
                    let mut port = 0;
                    let buffer = u32::from(c.buffer_id);
                    let code =
                        iot_datagram_sender(worker, buffer, text.as_mut_ptr(), 64, &mut port);
                    ok("sender", code);
                    let len = c.result as u32;
                    let code = iot_udp_send_to(
                        worker,
                        socket,
                        buffer,
                        c.offset,
                        len,
                        text.as_ptr(),
                        port,
                        tag,
                        0,
                    );
                    ok("send to", code);
                    sending += 1;
                    match receive {
                        Receive::Multishot => receiving &= c.flags & IOT_COMPLETION_MORE != 0,
                        Receive::OneAtATimeWithTimeout => receive_next(),
                    }
                }
                // The end: the socket was closed.
                IOT_KIND_RECV_FROM => receiving &= c.flags & IOT_COMPLETION_MORE != 0,
                IOT_KIND_SEND_TO => sending -= 1,
                _ => {}
            }
        }
        receiving || sending > 0
    })
}
