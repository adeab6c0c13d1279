//! Adversarial tests of the notifier: every host loop here is woken only by its
//! notifier (drain until empty, arm, wait on a condvar the callback signals, with a
//! deadline), so a lost wake-up fails the test instead of being hidden by a blocking
//! `iot_worker_wait`. The callback also checks that it never fires more often than the
//! host armed, and never after its notifier was removed.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

/// A wait for a wake-up longer than this is a lost wake-up.
const WAKE_LIMIT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ wake bookkeeping

#[derive(Default)]
struct Wakes {
    calls: Mutex<u64>,
    cv: Condvar,
    /// Arms the host made (counted before the arm call).
    arms: AtomicU64,
    /// Callbacks beyond the arms made: a double callback.
    excess: AtomicU64,
    /// Set once the notifier was removed (after the removing call returned).
    removed: AtomicBool,
    after_removal: AtomicU64,
}

impl Wakes {
    fn calls(&self) -> u64 {
        *self.calls.lock().unwrap()
    }

    /// Waits until more than `seen` callbacks happened; false on the deadline.
    fn wait_past(&self, seen: u64, limit: Duration) -> bool {
        let guard = self.calls.lock().unwrap();
        let (guard, timeout) = self
            .cv
            .wait_timeout_while(guard, limit, |c| *c <= seen)
            .unwrap();
        !timeout.timed_out() || *guard > seen
    }

    fn check(&self, what: &str) {
        assert_eq!(
            self.excess.load(Ordering::SeqCst),
            0,
            "{what}: more callbacks than arms"
        );
        assert_eq!(
            self.after_removal.load(Ordering::SeqCst),
            0,
            "{what}: callback after the notifier was removed"
        );
    }
}

fn registry() -> &'static Mutex<HashMap<u64, Arc<Wakes>>> {
    static REG: OnceLock<Mutex<HashMap<u64, Arc<Wakes>>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

static UNKNOWN_CALLS: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" fn on_wake(worker: u64) {
    let wakes = registry().lock().unwrap().get(&worker).cloned();
    let Some(wakes) = wakes else {
        UNKNOWN_CALLS.fetch_add(1, Ordering::SeqCst);
        return;
    };
    if wakes.removed.load(Ordering::SeqCst) {
        wakes.after_removal.fetch_add(1, Ordering::SeqCst);
    }
    let mut calls = wakes.calls.lock().unwrap();
    *calls += 1;
    if *calls > wakes.arms.load(Ordering::SeqCst) {
        wakes.excess.fetch_add(1, Ordering::SeqCst);
    }
    wakes.cv.notify_all();
}

fn track(worker: u64) -> Arc<Wakes> {
    let wakes = Arc::new(Wakes::default());
    registry().lock().unwrap().insert(worker, wakes.clone());
    wakes
}

fn set_notified(worker: u64) -> Arc<Wakes> {
    let wakes = track(worker);
    ok("notifier", iot_worker_set_notifier(worker, Some(on_wake)));
    wakes
}

fn remove_notifier(worker: u64, wakes: &Wakes) {
    ok("remove notifier", iot_worker_set_notifier(worker, None));
    wakes.removed.store(true, Ordering::SeqCst);
}

// ------------------------------------------------------------------ host loop

/// Flushes and drains everything ready now, without waiting.
fn drain_now(worker: u64, out: &mut Vec<iot_completion>) -> usize {
    let mut batch = [iot_completion::default(); 64];
    let mut total = 0;
    loop {
        ok("flush", iot_worker_flush(worker));
        let n = ok(
            "drain",
            iot_worker_drain(worker, batch.as_mut_ptr(), batch.len() as u32),
        ) as usize;
        out.extend_from_slice(&batch[..n]);
        total += n;
        if n < batch.len() {
            ok("flush", iot_worker_flush(worker));
            return total;
        }
    }
}

#[derive(Default, Debug)]
struct LoopStats {
    arms: u64,
    refused_arms: u64,
    wakes: u64,
    empty_wakes: u64,
}

/// A host loop woken only by its notifier, with what its turns drained and counters.
struct NotifiedLoop<'a> {
    worker: u64,
    wakes: &'a Wakes,
    /// Names the loop in failures.
    what: &'static str,
    /// One arm in this many (at random) is `iot_worker_arm`, the others
    /// `iot_worker_arm_if_idle` (0: never).
    plain_arm_one_in: usize,
    rng: Rng,
    out: Vec<iot_completion>,
    stats: LoopStats,
}

impl<'a> NotifiedLoop<'a> {
    fn new(
        worker: u64,
        wakes: &'a Wakes,
        what: &'static str,
        plain_arm_one_in: usize,
        seed: u64,
    ) -> NotifiedLoop<'a> {
        NotifiedLoop {
            worker,
            wakes,
            what,
            plain_arm_one_in,
            rng: Rng(seed),
            out: Vec::new(),
            stats: LoopStats::default(),
        }
    }

    /// One turn: drains; if nothing was ready, arms and waits for the callback, then
    /// drains again. Returns what it drained (never nothing). Panics on a lost wake-up.
    fn turn(&mut self) -> std::vec::Drain<'_, iot_completion> {
        let (worker, wakes) = (self.worker, self.wakes);
        let plain_arm = self.plain_arm_one_in > 0 && self.rng.below(self.plain_arm_one_in) == 0;
        let mut woke = false;
        while drain_now(worker, &mut self.out) == 0 {
            if woke {
                self.stats.empty_wakes += 1;
            }
            let seen = wakes.calls();
            wakes.arms.fetch_add(1, Ordering::SeqCst);
            if plain_arm {
                ok("arm", iot_worker_arm(worker));
            } else if ok("arm_if_idle", iot_worker_arm_if_idle(worker)) == 0 {
                wakes.arms.fetch_sub(1, Ordering::SeqCst);
                self.stats.refused_arms += 1;
                continue;
            }
            self.stats.arms += 1;
            if !wakes.wait_past(seen, WAKE_LIMIT) {
                let mut st = iot_stats::default();
                iot_worker_stats(worker, &mut st);
                panic!(
                    "{}: lost wake-up on worker {worker}: armed and no callback within \
                     {WAKE_LIMIT:?}; completions ready now: {} (in flight {}); {:?}",
                    self.what, st.completions_ready, st.ops_in_flight, self.stats
                );
            }
            self.stats.wakes += 1;
            woke = true;
            wakes.check(self.what);
        }
        self.out.drain(..)
    }

    /// Removes the notifier, checks that no callback came unasked or late, and prints
    /// the loop's counters.
    fn finish(self) {
        remove_notifier(self.worker, self.wakes);
        self.wakes.check(self.what);
        eprintln!("{}: {:?}", self.what, self.stats);
    }
}

// ------------------------------------------------------------------ messaging

const PING_PONG: u64 = 10_000;

/// Two workers ping-pong 10,000 messages, one in flight at a time; each host thread is
/// woken only by its notifier.
#[test]
fn ping_pong_10k_woken_only_by_the_notifier() {
    let _fds = fd_check();
    require_messaging!();
    for window in [1u64, 3] {
        let (a, b) = (Host::new(), Host::new());
        let (wa, wb) = (a.worker, b.worker);
        let (ka, kb) = (set_notified(wa), set_notified(wb));
        let pong = thread::spawn(move || {
            let stats = ping_pong_side(wb, wa, &kb, false, window, 2);
            remove_notifier(wb, &kb);
            kb.check("pong");
            (b, stats)
        });
        let stats_a = ping_pong_side(wa, wb, &ka, true, window, 1);
        remove_notifier(wa, &ka);
        ka.check("ping");
        let (b, stats_b) = pong.join().expect("pong side");
        eprintln!("window {window}: ping {stats_a:?} pong {stats_b:?}");
        for host in [&a, &b] {
            assert_eq!(host.stats().ops_in_flight, 0);
        }
    }
}

fn ping_pong_side(
    me: u64,
    peer: u64,
    wakes: &Wakes,
    pinger: bool,
    window: u64,
    seed: u64,
) -> LoopStats {
    let mut notified = NotifiedLoop::new(me, wakes, "ping-pong", 4, 0x9E37_79B9_7F4A_7C15 ^ seed);
    let (mut sent, mut next, mut reported) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    while next < PING_PONG || reported < PING_PONG {
        assert!(start.elapsed() < Duration::from_secs(120), "too slow");
        while pinger && sent < PING_PONG && sent - next < window {
            ok("ping", iot_message_send(me, peer, sent, sent as u32));
            sent += 1;
        }
        // Both arm flavours, and a bit of timing noise around the arm.
        notified.rng.jitter(200);
        for c in notified.turn() {
            match c.kind {
                IOT_KIND_MESSAGE => {
                    assert_eq!((c.tag, c.result as u32), (next, next as u32), "order");
                    if !pinger {
                        ok("pong", iot_message_send(me, peer, c.tag, c.result as u32));
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
    }
    notified.stats
}

/// Another thread's worker messages this one at random moments (single messages and
/// bursts, with random spins in between) while this host drains, arms and waits.
#[test]
fn messages_from_another_thread_race_the_arm() {
    let _fds = fd_check();
    require_messaging!();
    const MESSAGES: u64 = 20_000;
    let receiver = Host::new();
    let sender = Host::new();
    let (wr, ws) = (receiver.worker, sender.worker);
    let wakes = set_notified(wr);
    let send_thread = thread::spawn(move || {
        let mut rng = Rng(77);
        let mut sent = 0u64;
        let mut reported = 0u64;
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while sent < MESSAGES {
            let burst = 1 + rng.below(3) as u64;
            for _ in 0..burst.min(MESSAGES - sent) {
                ok("send", iot_message_send(ws, wr, sent, sent as u32));
                sent += 1;
            }
            ok("flush", iot_worker_flush(ws));
            rng.jitter(3000);
            drain_now(ws, &mut out);
            reported += out
                .drain(..)
                .filter(|c| c.kind == IOT_KIND_MESSAGE_SENT)
                .count() as u64;
        }
        while reported < MESSAGES {
            assert!(Instant::now() < deadline, "sender reports missing");
            iot_worker_wait(ws, 100);
            drain_now(ws, &mut out);
            reported += out
                .drain(..)
                .filter(|c| c.kind == IOT_KIND_MESSAGE_SENT)
                .count() as u64;
        }
        sender
    });
    let mut notified = NotifiedLoop::new(wr, &wakes, "racing messages", 3, 5);
    let mut next = 0u64;
    while next < MESSAGES {
        for c in notified.turn() {
            assert_eq!(c.kind, IOT_KIND_MESSAGE);
            assert_eq!(c.tag, next, "order");
            next += 1;
        }
    }
    let _sender = send_thread.join().expect("sender");
    notified.finish();
    drop(receiver);
}

/// Many senders (threads with their own workers) message one notified worker at once.
#[test]
fn many_senders_one_notified_receiver() {
    let _fds = fd_check();
    require_messaging!();
    const SENDERS: u64 = 3;
    const EACH: u64 = 5_000;
    let receiver = Host::new();
    let wr = receiver.worker;
    let wakes = set_notified(wr);
    let threads: Vec<_> = (0..SENDERS)
        .map(|s| {
            let host = Host::new();
            thread::spawn(move || {
                let w = host.worker;
                let mut rng = Rng(100 + s);
                let mut out = Vec::new();
                let mut reported = 0;
                for i in 0..EACH {
                    ok("send", iot_message_send(w, wr, s << 32 | i, i as u32));
                    if rng.below(4) == 0 {
                        ok("flush", iot_worker_flush(w));
                        rng.jitter(2000);
                    }
                    drain_now(w, &mut out);
                    reported += out.drain(..).count() as u64;
                }
                let deadline = Instant::now() + DEADLINE;
                while reported < EACH {
                    assert!(Instant::now() < deadline);
                    iot_worker_wait(w, 100);
                    drain_now(w, &mut out);
                    reported += out.drain(..).count() as u64;
                }
                host
            })
        })
        .collect();
    let mut next = vec![0u64; SENDERS as usize];
    let mut notified = NotifiedLoop::new(wr, &wakes, "many senders", 0, 0);
    let mut got = 0;
    while got < SENDERS * EACH {
        for c in notified.turn() {
            assert_eq!(c.kind, IOT_KIND_MESSAGE);
            let (s, i) = ((c.tag >> 32) as usize, c.tag & 0xffff_ffff);
            assert_eq!(i, next[s], "order from sender {s}");
            next[s] += 1;
            got += 1;
        }
    }
    for t in threads {
        t.join().expect("sender");
    }
    notified.finish();
}

// ------------------------------------------------------------------ sockets, timers

/// A std echo server on 127.0.0.1 for one connection; returns its port.
fn echo_server() -> (u16, thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => n,
            };
            s.write_all(&buf[..n]).unwrap();
            total += n as u64;
        }
    });
    (port, server)
}

/// arm_if_idle loop over loopback TCP echo: send, receive the echo, woken only by the
/// notifier. Sizes vary so receives complete in one or several pieces.
#[test]
fn tcp_echo_driven_by_arm_if_idle() {
    let _fds = fd_check();
    let mut host = Host::new();
    let w = host.worker;
    let (port, server) = echo_server();
    ok("connect", host.connect("127.0.0.1", port, 1, 0));
    let socket = host.next_tagged(1);
    assert_eq!(socket.result, 0, "{}", message(socket.result));
    let socket = socket.handle;
    let wakes = set_notified(w);
    let mut notified = NotifiedLoop::new(w, &wakes, "tcp echo", 4, 9);
    let size = host.buffer_size() as usize;
    const ROUNDS: u32 = 3_000;
    for round in 0..ROUNDS {
        let len = 1 + notified.rng.below(size.min(8192));
        let data = pattern(len, round);
        let id = host.filled_buffer(&data);
        ok("send", iot_send(w, socket, id, 0, len as u32, 2, 0));
        ok("recv", iot_recv(w, socket, 3, 0, 0));
        let (mut got, mut sent, mut receiving) = (Vec::new(), false, true);
        while !sent || got.len() < len {
            for c in notified.turn() {
                match c.tag {
                    2 => {
                        assert_eq!(c.result, len as i32, "send: {}", message(c.result));
                        sent = true;
                    }
                    3 => {
                        assert!(c.result > 0, "recv: {}", message(c.result));
                        got.extend_from_slice(host.payload(&c));
                        host.give_back(&c);
                        receiving = false;
                    }
                    other => panic!("unexpected tag {other}"),
                }
            }
            if !receiving && got.len() < len {
                ok("recv", iot_recv(w, socket, 3, 0, 0));
                receiving = true;
            }
        }
        assert!(got == data, "echo differs in round {round}");
    }
    notified.finish();
    ok("close", iot_socket_close(w, socket));
    host.poll();
    host.release_pending();
    assert!(server.join().unwrap() > 0);
}

/// Receive timeouts (1-3 ms) expire while the host is armed and asleep.
#[test]
fn timeouts_expire_while_armed() {
    let _fds = fd_check();
    let mut host = Host::new();
    let w = host.worker;
    let (socket, _peer) = host.connected_pair();
    let wakes = set_notified(w);
    let mut notified = NotifiedLoop::new(w, &wakes, "timeouts", 2, 11);
    for i in 0..1_500u64 {
        let timeout_ms = 1 + notified.rng.below(3) as u32;
        ok("recv", iot_recv(w, socket, 100 + i, 0, timeout_ms));
        ok("flush", iot_worker_flush(w));
        let mut done = false;
        while !done {
            for c in notified.turn() {
                assert_eq!(c.tag, 100 + i);
                assert_eq!(c.result, -libc::ETIMEDOUT, "{}", message(c.result));
                done = true;
            }
        }
    }
    notified.finish();
}

/// Another thread cancels (and flushes) a receive while the host is armed and asleep.
#[test]
fn cancels_from_another_thread_while_armed() {
    let _fds = fd_check();
    let mut host = Host::new();
    let w = host.worker;
    let (socket, _peer) = host.connected_pair();
    let wakes = set_notified(w);
    let mut notified = NotifiedLoop::new(w, &wakes, "cancels", 2, 12);
    const ROUNDS: u64 = 1_500;
    let go = Arc::new(Barrier::new(2));
    let go2 = go.clone();
    let canceller = thread::spawn(move || {
        let mut rng = Rng(13);
        for i in 0..ROUNDS {
            go2.wait();
            rng.jitter(5000);
            // The op may not be there yet if the host has not queued it: retry.
            let deadline = Instant::now() + DEADLINE;
            loop {
                let code = iot_cancel(w, 1000 + i);
                if code == 0 {
                    break;
                }
                assert_eq!(code, -libc::ENOENT, "cancel: {}", message(code));
                assert!(Instant::now() < deadline, "op {i} never appeared");
                thread::yield_now();
            }
            // Always flushed: a cancel left queued would wait for the host's next
            // turn, which (armed and asleep) it never gets.
            ok("flush", iot_worker_flush(w));
        }
    });
    for i in 0..ROUNDS {
        ok("recv", iot_recv(w, socket, 1000 + i, 0, 0));
        ok("flush", iot_worker_flush(w));
        go.wait();
        let mut done = false;
        while !done {
            for c in notified.turn() {
                assert_eq!(c.tag, 1000 + i);
                assert_eq!(c.result, -libc::ECANCELED, "{}", message(c.result));
                done = true;
            }
        }
    }
    canceller.join().unwrap();
    notified.finish();
}

// ------------------------------------------------------------------ files

/// File reads and fsyncs (the latter always run in io-wq) complete while armed; and
/// reads of a FIFO another thread writes at random moments.
#[test]
fn file_ops_complete_while_armed() {
    let _fds = fd_check();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let data = pattern(1 << 20, 3);
    std::fs::write(&path, &data).unwrap();
    let mut host = Host::with_config(&config(16, 16, 4096));
    let w = host.worker;
    let file = host.open_rw(&path);
    let fifo = host.empty_fifo(dir.path());
    let wakes = set_notified(w);
    let mut notified = NotifiedLoop::new(w, &wakes, "file ops", 2, 21);
    for i in 0..1_000u64 {
        let mut id = 0;
        ok("acquire", iot_buffer_acquire(w, &mut id));
        let at = notified.rng.below(data.len() - 4096) as u64;
        ok("read", iot_file_read(w, file, id, 0, 4096, at, 10, 0));
        if i % 4 == 0 {
            ok("sync", iot_file_sync(w, file, 0, 11, 0));
        }
        let mut left = if i % 4 == 0 { 2 } else { 1 };
        while left > 0 {
            for c in notified.turn() {
                match c.tag {
                    10 => {
                        assert_eq!(c.result, 4096, "{}", message(c.result));
                        assert!(host.payload(&c) == &data[at as usize..at as usize + 4096]);
                        host.release(c.buffer_id);
                    }
                    11 => assert_eq!(c.result, 0, "{}", message(c.result)),
                    other => panic!("unexpected tag {other}"),
                }
                left -= 1;
            }
        }
    }
    // FIFO: the read waits in the kernel; a writer thread fills it at a random moment.
    notified.what = "file ops, fifo";
    let fifo_path = dir.path().join("fifo");
    let (to_writer, writer_rx) = std::sync::mpsc::channel::<u64>();
    let writer = thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&fifo_path)
            .unwrap();
        let mut rng = Rng(22);
        while let Ok(i) = writer_rx.recv() {
            rng.jitter(20_000);
            f.write_all(&i.to_le_bytes()).unwrap();
        }
    });
    for i in 0..1_000u64 {
        let mut id = 0;
        ok("acquire", iot_buffer_acquire(w, &mut id));
        ok(
            "read",
            iot_file_read(w, fifo, id, 0, 8, IOT_OFFSET_CURRENT, 12, 0),
        );
        ok("flush", iot_worker_flush(w));
        to_writer.send(i).unwrap();
        let mut got = Vec::new();
        while got.len() < 8 {
            for c in notified.turn() {
                assert_eq!(c.tag, 12);
                assert!(c.result > 0, "{}", message(c.result));
                got.extend_from_slice(host.payload(&c));
                host.release(c.buffer_id);
            }
            if got.len() < 8 && !got.is_empty() {
                let mut id = 0;
                ok("acquire", iot_buffer_acquire(w, &mut id));
                let rest = 8 - got.len() as u32;
                ok(
                    "read",
                    iot_file_read(w, fifo, id, 0, rest, IOT_OFFSET_CURRENT, 12, 0),
                );
            }
        }
        assert_eq!(got, i.to_le_bytes());
    }
    drop(to_writer);
    writer.join().unwrap();
    notified.finish();
}

// ------------------------------------------------------------------ notifier lifecycle

/// Threads named for `worker`'s notifier. A joined thread may still be listed for a
/// moment (the kernel wakes the joiner before it removes the task): waits that out,
/// bounded.
fn notifier_threads(worker: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let n = notifier_threads_now(worker);
        if n == 0 || Instant::now() > deadline {
            return n;
        }
        thread::yield_now();
    }
}

fn notifier_threads_now(worker: u64) -> usize {
    let name = format!("iot-notify-{worker}");
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim() == name)
                .unwrap_or(false)
        })
        .count()
}

/// set_notifier(None) and set again, in a loop, with arms and completions in
/// between: threads are joined, fds stay stable, no callback after removal.
#[test]
fn set_and_remove_notifier_in_a_loop_leaks_nothing() {
    let _fds = fd_check();
    require_messaging!();
    let host = Host::new();
    let peer = Host::new();
    let (w, p) = (host.worker, peer.worker);
    let fds_before = open_fds();
    let mut out = Vec::new();
    for i in 0..500u64 {
        // (The thread names itself once running: not counted here.)
        let wakes = set_notified(w);
        // Arm, then a message from the peer: must wake.
        let seen = wakes.calls();
        wakes.arms.fetch_add(1, Ordering::SeqCst);
        assert_eq!(iot_worker_arm_if_idle(w), 1);
        ok("send", iot_message_send(p, w, i, 0));
        ok("flush", iot_worker_flush(p));
        assert!(
            wakes.wait_past(seen, WAKE_LIMIT),
            "lost wake-up in round {i}"
        );
        drain_now(w, &mut out);
        assert!(out.drain(..).any(|c| c.tag == i));
        drain_now(p, &mut out);
        out.clear();
        // Armed again, and removed while armed (a completion may race the removal).
        wakes.arms.fetch_add(1, Ordering::SeqCst);
        ok("arm", iot_worker_arm(w));
        if i % 2 == 0 {
            ok("send", iot_message_send(p, w, 1 << 40 | i, 0));
            ok("flush", iot_worker_flush(p));
        }
        remove_notifier(w, &wakes);
        assert_eq!(notifier_threads(w), 0, "round {i}: thread not joined");
        drain_now(w, &mut out);
        drain_now(p, &mut out);
        out.clear();
        wakes.check("set/remove loop");
        // Completions with no notifier: nobody is called.
        ok("send", iot_message_send(p, w, 2 << 40 | i, 0));
        ok("flush", iot_worker_flush(p));
        drain_now(w, &mut out);
        drain_now(p, &mut out);
        out.clear();
        wakes.check("set/remove loop");
    }
    // Messages still settling may hold nothing; the worker's fds are what they were.
    assert_eq!(open_fds(), fds_before, "fd count changed across set/remove");
    drop(host);
    drop(peer);
}

/// The host armed, then replaced the notifier (callback -> another callback, as a
/// host switching from a callback to a port would): the next completion must still
/// wake it, once. (The arm is documented as asking for one callback when the next
/// completion is ready; replacing the notifier does not un-arm.)
#[test]
fn replacing_the_notifier_while_armed_keeps_the_arm() {
    let _fds = fd_check();
    let mut host = Host::new();
    let w = host.worker;
    let mut failures = Vec::new();
    for round in 0..10u64 {
        let wakes = set_notified(w);
        wakes.arms.fetch_add(1, Ordering::SeqCst);
        assert_eq!(iot_worker_arm_if_idle(w), 1);
        // Replace (joins the old thread); the arm stands.
        ok("replace", iot_worker_set_notifier(w, Some(on_wake)));
        let seen = wakes.calls();
        host.connect_refused(500 + round);
        if !wakes.wait_past(seen, Duration::from_secs(2)) {
            failures.push(round);
        }
        remove_notifier(w, &wakes);
        assert_eq!(host.next_tagged(500 + round).result, -libc::ECONNREFUSED);
        wakes.check("replace while armed");
    }
    assert!(
        failures.is_empty(),
        "lost wake-up after replacing the notifier while armed, in {} of 10 rounds",
        failures.len()
    );
}

/// The host armed before it set a notifier (nothing pending): the first completion
/// after the notifier is set must wake it.
#[test]
fn arm_before_setting_the_notifier_is_kept() {
    let _fds = fd_check();
    let mut host = Host::new();
    let w = host.worker;
    let wakes = track(w);
    wakes.arms.fetch_add(1, Ordering::SeqCst);
    assert_eq!(iot_worker_arm_if_idle(w), 1);
    ok("notifier", iot_worker_set_notifier(w, Some(on_wake)));
    host.connect_refused(7);
    let woke = wakes.wait_past(0, Duration::from_secs(2));
    remove_notifier(w, &wakes);
    assert_eq!(host.next_tagged(7).result, -libc::ECONNREFUSED);
    assert!(woke, "lost wake-up: armed before the notifier was set");
}

/// A worker freed while armed, with messages from another thread's worker in flight:
/// no callback after the free returns, no crash, fds back where they were.
#[test]
fn worker_freed_while_armed_with_messages_in_flight() {
    let _fds = fd_check();
    require_messaging!();
    let fds_before = open_fds();
    for round in 0..200u64 {
        let target = Host::new();
        let wt = target.worker;
        let wakes = set_notified(wt);
        wakes.arms.fetch_add(1, Ordering::SeqCst);
        ok("arm", iot_worker_arm(wt));
        let start = Arc::new(Barrier::new(2));
        let start2 = start.clone();
        let sender = thread::spawn(move || {
            let host = Host::new();
            let w = host.worker;
            let mut out = Vec::new();
            start2.wait();
            let mut accepted = 0u64;
            for i in 0..200u64 {
                let code = iot_message_send(w, wt, i, 0);
                if code == IOT_E_WORKER_GONE {
                    break;
                }
                ok("send", code);
                accepted += 1;
                if i % 8 == 0 {
                    ok("flush", iot_worker_flush(w));
                }
            }
            let mut reported = 0;
            let deadline = Instant::now() + DEADLINE;
            while reported < accepted {
                assert!(Instant::now() < deadline, "sent reports missing");
                drain_now(w, &mut out);
                for c in out.drain(..) {
                    assert_eq!(c.kind, IOT_KIND_MESSAGE_SENT);
                    assert!(
                        c.result == 0 || c.result == IOT_E_WORKER_GONE,
                        "{}",
                        message(c.result)
                    );
                    reported += 1;
                }
                if reported < accepted {
                    iot_worker_wait(w, 50);
                }
            }
            drop(host);
        });
        start.wait();
        let mut rng = Rng(round + 1);
        rng.jitter(20_000);
        // Re-arm a few times, as a host that was woken would.
        for _ in 0..rng.below(3) {
            let mut out = Vec::new();
            drain_now(wt, &mut out);
            wakes.arms.fetch_add(1, Ordering::SeqCst);
            ok("arm", iot_worker_arm(wt));
        }
        drop(target); // iot_worker_free, asserts 0
        wakes.removed.store(true, Ordering::SeqCst);
        let calls = wakes.calls();
        sender.join().expect("sender");
        assert_eq!(wakes.calls(), calls, "callback after the worker was freed");
        wakes.check("freed while armed");
        assert_eq!(notifier_threads(wt), 0);
    }
    assert_eq!(open_fds(), fds_before, "fd count changed");
    assert_eq!(UNKNOWN_CALLS.load(Ordering::SeqCst), 0);
}

/// The notifier is removed from another thread while the host thread keeps arming
/// and a sender keeps messaging: after removal returns, no callback.
#[test]
fn removal_racing_arms_and_completions() {
    let _fds = fd_check();
    require_messaging!();
    let host = Host::new();
    let peer = Host::new();
    let (w, p) = (host.worker, peer.worker);
    let mut out = Vec::new();
    for round in 0..300u64 {
        let wakes = set_notified(w);
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, wakes2) = (stop.clone(), wakes.clone());
        let armer = thread::spawn(move || {
            let mut out = Vec::new();
            let mut n = 0u64;
            while !stop2.load(Ordering::SeqCst) && n < 5_000 {
                drain_now(w, &mut out);
                drain_now(p, &mut out);
                out.clear();
                wakes2.arms.fetch_add(1, Ordering::SeqCst);
                ok("arm", iot_worker_arm(w));
                ok("send", iot_message_send(p, w, n, 0));
                ok("flush", iot_worker_flush(p));
                n += 1;
            }
        });
        let mut rng = Rng(round + 3);
        rng.jitter(50_000);
        remove_notifier(w, &wakes);
        let calls = wakes.calls();
        stop.store(true, Ordering::SeqCst);
        armer.join().unwrap();
        assert_eq!(wakes.calls(), calls, "callback after removal");
        wakes.check("removal race");
        drain_now(w, &mut out);
        drain_now(p, &mut out);
        out.clear();
    }
    drop(host);
    drop(peer);
}
