//! The receive ring under load: it starts with at most 256 buffers and grows while
//! receives find it empty, up to `recv_buffer_count`; receives that find no buffer at
//! all wait and lose nothing.

mod support;

use std::io::Write;
use std::net::TcpStream;

use support::*;

const ACCEPT: u64 = 1;

/// `count` clients of our listener, each accepted and receiving (with `flags`:
/// multishot or one-shot) with its own socket handle as tag; returns the clients and
/// the accepted sockets.
fn accepted_receivers(host: &mut Host, count: usize, flags: u32) -> (Vec<TcpStream>, Vec<u64>) {
    let (clients, sockets) = host.accepted_clients(count, ACCEPT);
    for &socket in &sockets {
        ok("recv", iot_recv(host.worker, socket, socket, flags, 0));
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
    let (mut clients, _sockets) = accepted_receivers(&mut host, LIMIT + 1, IOT_OP_MULTISHOT);

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
    let (mut clients, sockets) = accepted_receivers(&mut host, CLIENTS, IOT_OP_MULTISHOT);
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

/// How a host that holds every buffer it receives sleeps between its turns.
#[derive(Clone, Copy, Debug)]
enum Sleep {
    /// In `iot_worker_wait`.
    InWorker,
    /// Armed (`iot_worker_arm_if_idle`) until its notifier fires, as the Dart layer.
    Notified,
}

/// How `hold_receives` ended.
#[derive(Debug, PartialEq, Eq)]
enum Held {
    All,
    /// A sleep ran out first.
    SleptOut,
    /// Woken this many times with nothing to drain, more than a host sleeping for good
    /// would be.
    Spun,
}

/// Takes receive completions into `held` (keeping every buffer) until there are
/// `want`, turning like the Dart layer: up to four drains of 64, a flush, then a sleep
/// of at most `patience` when idle.
fn hold_receives(
    host: &mut Host,
    held: &mut Vec<iot_completion>,
    want: usize,
    sleep: Sleep,
    patience: std::time::Duration,
) -> Held {
    const IDLE_WAKES: u32 = 1_000;
    let mut idle_wakes = 0;
    let worker = host.worker;
    let mut woken = support::notified::count(worker);
    let mut batch = [iot_completion::default(); 64];
    while held.len() < want {
        let mut drained = 0;
        for _ in 0..4 {
            let n = ok("drain", iot_worker_drain(worker, batch.as_mut_ptr(), 64)) as usize;
            held.extend(batch[..n].iter().filter(|c| c.kind == IOT_KIND_RECV));
            drained += n;
            if n < 64 {
                break;
            }
        }
        host.flush();
        if held.len() >= want || drained > 0 {
            continue;
        }
        idle_wakes += 1;
        if idle_wakes > IDLE_WAKES {
            return Held::Spun;
        }
        let slept = match sleep {
            Sleep::InWorker => {
                ok("wait", iot_worker_wait(worker, patience.as_millis() as u32)) == 1
            }
            Sleep::Notified => {
                iot_worker_arm_if_idle(worker) != 1
                    || support::notified::wait_past(worker, &mut woken, patience)
            }
        };
        if !slept {
            return Held::SleptOut;
        }
    }
    Held::All
}

/// A host of `config` with whole receive buffers (the default before Linux 6.12) and
/// a notifier, and `count` clients, each accepted with a one-shot receive.
fn notified_whole_buffer_receivers(mut config: iot_config, count: usize) -> (Host, Vec<TcpStream>) {
    config.flags |= IOT_CONFIG_WHOLE_BUFFERS;
    let mut host = Host::with_config(&config);
    let notifier = support::notified::on_ready;
    ok(
        "notifier",
        iot_worker_set_notifier(host.worker, Some(notifier)),
    );
    let (clients, _sockets) = accepted_receivers(&mut host, count, 0);
    (host, clients)
}

/// Whole buffers, default counts: 866 connections
/// receive; 266 send, and the ring (256 buffers) grows for them; then the other 600
/// send, and their receives, tried before it grew, wait. The host holds every buffer.
/// Growing by what waiting receives need, at most doubling, left those the growth
/// did not feed forgotten: nothing brought the drain that grows the ring again.
fn a_second_burst_of_receives_tried_before_the_ring_grew_all_complete(sleep: Sleep) {
    let mut config = iot_config::default();
    ok("config", iot_config_default(&mut config));
    let (mut host, mut clients) = notified_whole_buffer_receivers(config, 866);
    let mut held = Vec::new();
    for (first, last) in [(0, 266), (266, 866)] {
        for client in &mut clients[first..last] {
            client.write_all(&[7; 100]).unwrap();
        }
        let ended = hold_receives(&mut host, &mut held, last, sleep, DEADLINE);
        assert_eq!(
            ended,
            Held::All,
            "{sleep:?}: {} of {last} receives came, the ring has {} buffers",
            held.len(),
            host.stats().recv_ring_buffers
        );
    }
    for c in &held {
        host.release(c.buffer_id);
    }
    assert_eq!(host.stats().buffers_outstanding, 0);
}

#[test]
fn a_second_burst_completes_for_a_host_that_waits_in_the_worker() {
    a_second_burst_of_receives_tried_before_the_ring_grew_all_complete(Sleep::InWorker);
}

#[test]
fn a_second_burst_completes_for_a_host_its_notifier_wakes() {
    a_second_burst_of_receives_tried_before_the_ring_grew_all_complete(Sleep::Notified);
}

#[test]
fn an_exhausted_pool_lets_an_armed_host_sleep() {
    // The host holds all 512 receive buffers and 688 receives wait: the ring cannot
    // grow, so nothing may wake the host for them (a wake-up per drain would spin).
    let (mut host, mut clients) = notified_whole_buffer_receivers(config(512, 16, 4096), 1200);
    for client in &mut clients {
        client.write_all(&[7; 100]).unwrap();
    }
    let mut held = Vec::new();
    let patience = std::time::Duration::from_millis(300);
    let ended = hold_receives(&mut host, &mut held, 1200, Sleep::Notified, patience);
    assert_eq!(ended, Held::SleptOut);
    assert_eq!(held.len(), 512, "every buffer is held");
    for c in &held {
        host.release(c.buffer_id);
    }
}
