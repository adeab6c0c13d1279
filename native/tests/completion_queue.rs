//! The completion queue is sized so that many connections do not push completions
//! into the kernel's overflow list, and the worker counts the times they did. Its own
//! test binary: 10,000 connections take nearly every descriptor the process may open,
//! which tests running beside them in one process would need.

mod support;

use std::net::TcpStream;
use std::sync::Mutex;

use support::echo::EchoServer;
use support::*;

const ACCEPT: u64 = 1;

/// The tests with thousands of connections run one at a time: each takes nearly every
/// descriptor the process may open.
static DESCRIPTORS: Mutex<()> = Mutex::new(());

#[test]
fn completions_parked_in_the_overflow_list_are_counted_and_none_is_lost() {
    // One SQE, one receive buffer, no send buffer: a 16-entry completion queue.
    let mut host = Host::with_ring(1, 1, 0, 1024);
    let (_, port) = host.accepting(ACCEPT);
    // Forty connections queue up before the test drains anything: the accept's
    // completions outgrow the queue.
    const CLIENTS: usize = 40;
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let accepted = (0..CLIENTS)
        .map(|_| host.next_where(|c| c.tag == ACCEPT && c.result == 0))
        .count();
    assert_eq!(accepted, CLIENTS);
    assert!(
        host.stats().completion_overflows > 0,
        "a 16-entry queue took 40 completions without overflowing"
    );
    drop(clients);
}

#[test]
fn ten_thousand_connections_echo_without_completion_overflow() {
    let _descriptors = DESCRIPTORS.lock().unwrap_or_else(|e| e.into_inner());
    let conns = connections_allowed(10000);
    let stats = EchoServer::start("127.0.0.1").echo_all_at_once(conns, 64);
    assert_eq!(
        stats.completion_overflows, 0,
        "{conns} connections overflowed the completion queue"
    );
}

#[test]
fn ten_thousand_connections_echoing_in_turn_without_completion_overflow() {
    // Each connection keeps a 4 KiB message in flight while its last echo's send
    // completes: up to two completions per connection wait for the host, who drains
    // them a batch at a time, more than the queue holds.
    let _descriptors = DESCRIPTORS.lock().unwrap_or_else(|e| e.into_inner());
    let conns = connections_allowed(10000);
    let stats = EchoServer::start("127.0.0.1").echo_in_rounds(conns, 4096, 16);
    assert_eq!(
        stats.completion_overflows, 0,
        "{conns} connections echoing in turn overflowed the completion queue"
    );
}

/// `wanted` connections, or as many as the open-file limit leaves room for (each
/// takes two descriptors in this process), after raising the soft limit to the hard.
fn connections_allowed(wanted: usize) -> usize {
    // SAFETY: get/setrlimit on a local struct.
    let limit = unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur as usize
    };
    let room = limit.saturating_sub(200) / 2 / 10 * 10;
    assert!(
        room >= 500,
        "open-file limit {limit} is too low for this test"
    );
    wanted.min(room)
}
