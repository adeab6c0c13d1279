//! A seeded fuzzer of the C ABI: random call sequences on two workers with real,
//! stale, foreign and garbage handles, against a model of who owns every buffer (or
//! received piece of one) and payload. After every call the worker's own counters
//! must match the model exactly (each piece or buffer has one owner: the pool or
//! kernel, the host, or one operation), and no call may crash, hang or leak. One
//! worker packs receives into shared buffers, the other gives each a whole buffer.
//!
//! `IOT_FUZZ_SECS` (default 3) bounds the run, `IOT_FUZZ_SEED` picks the sequence (the
//! seed is printed, so a failure can be replayed). CI runs it for longer (tool/test.sh).

mod support;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::*;

/// A piece of a buffer (or a whole one, at offset 0): (id, offset).
type Piece = (u32, u32);

/// What the host of one worker owns, by the model.
struct Side {
    host: Host,
    /// Pieces and buffers the host owns, with as many bytes as it may use of each.
    owned: HashMap<Piece, u32>,
    /// Pieces and buffers lent to operations in flight, by the operation's tag.
    lent: HashMap<u64, Piece>,
    /// Payloads the host holds.
    payloads: HashSet<u64>,
    /// Connected streams (the peer end kept in `peers`) and an open file.
    streams: Vec<u64>,
    file: u64,
    /// Handles this worker closed: stale from now on.
    stale: Vec<u64>,
    /// Tags of operations not yet completed (final completion).
    pending: HashSet<u64>,
    peers: Vec<TcpStream>,
    /// Where replacement streams connect (after a live one was closed).
    listener: TcpListener,
}

const STREAMS: usize = 4;
const OPEN_TAG: u64 = u64::MAX - 1;
/// Marks the tags of replacement connects.
const CONNECT_BIT: u64 = 1 << 62;

impl Side {
    /// With buffers of `size` bytes: 1024 are too small for datagram spans, so each
    /// receive takes a whole buffer; 4096 pack receives (where the kernel can).
    fn new(dir: &std::path::Path, name: &str, size: u32) -> Side {
        let mut host = Host::with_config(&config(8, 8, size));
        let listener = TcpListener::bind("127.0.0.1:0").expect("peer listener");
        let port = listener.local_addr().expect("port").port();
        let mut streams = Vec::new();
        let mut peers = Vec::new();
        for i in 0..STREAMS as u64 {
            assert_eq!(host.connect("127.0.0.1", port, OPEN_TAG - 1 - i, 0), 0);
            let c = host.next_tagged(OPEN_TAG - 1 - i);
            assert_eq!(c.result, 0, "{}", message(c.result));
            streams.push(c.handle);
            let (peer, _) = listener.accept().expect("accept peer");
            peer.set_nonblocking(true).expect("non-blocking peer");
            peers.push(peer);
        }
        let path = cstr(dir.join(name).to_str().expect("UTF-8 temp path"));
        let flags = IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE;
        ok(
            "open",
            iot_file_open(host.worker, path.as_ptr(), flags, 0o600, OPEN_TAG, 0),
        );
        let file = host.next_tagged(OPEN_TAG).handle;
        Side {
            host,
            owned: HashMap::new(),
            lent: HashMap::new(),
            payloads: HashSet::new(),
            streams,
            file,
            stale: Vec::new(),
            pending: HashSet::new(),
            peers,
            listener,
        }
    }

    fn worker(&self) -> u64 {
        self.host.worker
    }
}

struct Fuzz {
    rng: Rng,
    sides: [Side; 2],
    next_tag: u64,
    /// Payloads in messages not yet drained by their target.
    in_transit: usize,
    calls: u64,
    /// Completions seen, by kind and whether they succeeded (printed at the end).
    seen: std::collections::BTreeMap<(u16, bool), u64>,
}

impl Fuzz {
    fn tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    /// A handle for a call on side `me`: one of its own (live or stale), one of the
    /// other worker's, or garbage.
    fn handle(&mut self, me: usize) -> u64 {
        let other = 1 - me;
        match self.rng.below(10) {
            0..=4 => {
                let s = &self.sides[me];
                let i = self.rng.below(s.streams.len() + 1);
                s.streams.get(i).copied().unwrap_or(s.file)
            }
            5 => {
                let s = &self.sides[me];
                let i = self.rng.below(s.stale.len());
                s.stale.get(i).copied().unwrap_or(0)
            }
            6 | 7 => {
                let s = &self.sides[other];
                let i = self.rng.below(s.streams.len());
                s.streams.get(i).copied().unwrap_or(s.file)
            }
            8 => 0,
            _ => self.rng.next(),
        }
    }

    /// A piece (or buffer) the host of `me` owns if it has one, with its usable length;
    /// else anything.
    fn buffer(&mut self, me: usize) -> (Piece, u32) {
        let mut owned: Vec<(Piece, u32)> =
            self.sides[me].owned.iter().map(|(&p, &l)| (p, l)).collect();
        owned.sort_unstable();
        if !owned.is_empty() && self.rng.chance(80) {
            return owned[self.rng.below(owned.len())];
        }
        (((self.rng.next() % 20) as u32, 0), 1024)
    }

    fn step(&mut self) {
        let me = self.rng.below(2);
        let worker = self.sides[me].worker();
        match self.rng.below(15) {
            0 | 1 => self.acquire(me),
            2 | 3 => self.release(me),
            4 | 5 => {
                let (socket, (piece, room), tag) = (self.handle(me), self.buffer(me), self.tag());
                let len = (1 + self.rng.below(1024) as u32).min(room);
                let rc = iot_send(worker, socket, piece.0, piece.1, len, tag, 0);
                self.lent_if_queued(me, rc, piece, tag);
            }
            6 => {
                let (file, (piece, room), tag) = (self.handle(me), self.buffer(me), self.tag());
                let at = if self.rng.chance(50) {
                    IOT_OFFSET_CURRENT
                } else {
                    0
                };
                let rc = iot_file_read(worker, file, piece.0, piece.1, room.min(512), at, tag, 0);
                self.lent_if_queued(me, rc, piece, tag);
            }
            7 => {
                let (file, (piece, room), tag) = (self.handle(me), self.buffer(me), self.tag());
                let len = room.min(256);
                let rc = iot_file_write(
                    worker,
                    file,
                    piece.0,
                    piece.1,
                    len,
                    IOT_OFFSET_CURRENT,
                    tag,
                    0,
                );
                self.lent_if_queued(me, rc, piece, tag);
            }
            8 => {
                let (socket, tag) = (self.handle(me), self.tag());
                let timeout = if self.rng.chance(50) { 5 } else { 0 };
                if iot_recv(worker, socket, tag, 0, timeout) == 0 {
                    self.sides[me].pending.insert(tag);
                }
            }
            9 => {
                let pending: Vec<u64> = self.sides[me].pending.iter().copied().collect();
                let tag = match pending.len() {
                    0 => self.rng.next(),
                    n => pending[self.rng.below(n)],
                };
                let _ = iot_cancel(worker, tag);
            }
            10 => self.close(me),
            11 => self.payload(me),
            12 | 13 => {
                // Peers write now and then, so receives complete with data, and read
                // what was sent to them, so sends complete.
                let side = &mut self.sides[me];
                let i = self.rng.below(side.peers.len());
                let _ = side.peers[i].write(b"fuzz");
                let mut sink = [0u8; 64 << 10];
                let _ = side.peers[i].read(&mut sink);
            }
            _ => {
                // Garbage workers: refused, never a crash.
                let garbage = self.rng.next() | 1 << 63;
                let mut id = 0;
                assert_eq!(iot_buffer_acquire(garbage, &mut id), IOT_E_BAD_HANDLE);
                assert_eq!(iot_socket_close(garbage, self.handle(me)), IOT_E_BAD_HANDLE);
            }
        }
        self.calls += 1;
        self.check(me);
        if self.rng.chance(30) {
            self.drain(me);
            self.check(me);
        }
    }

    fn acquire(&mut self, me: usize) {
        let mut id = 0;
        let rc = iot_buffer_acquire(self.sides[me].worker(), &mut id);
        if rc == 0 {
            let side = &mut self.sides[me];
            assert!(
                !side.owned.contains_key(&(id, 0)),
                "buffer {id} acquired twice"
            );
            assert!(
                !side.lent.values().any(|&(b, _)| b == id),
                "buffer {id} acquired while an operation owns it"
            );
            side.owned.insert((id, 0), side.host.buffer_size());
        } else {
            assert_eq!(rc, -libc::ENOBUFS);
        }
    }

    fn release(&mut self, me: usize) {
        let ((id, mut offset), _) = self.buffer(me);
        if self.rng.chance(20) {
            offset += 1 + self.rng.below(64) as u32; // not where a piece starts, mostly
        }
        let piece = (id, offset);
        let rc = iot_buffer_release(self.sides[me].worker(), piece.0, piece.1);
        let side = &mut self.sides[me];
        if side.owned.remove(&piece).is_some() {
            assert_eq!(rc, 0, "release of owned piece {piece:?}: {}", message(rc));
        } else {
            assert_eq!(
                rc, IOT_E_BAD_BUFFER,
                "release of piece {piece:?} the host does not own"
            );
        }
    }

    /// A call that lends `piece` returned `rc`: on success the op owns it.
    fn lent_if_queued(&mut self, me: usize, rc: i32, piece: Piece, tag: u64) {
        let side = &mut self.sides[me];
        if rc == 0 {
            assert!(
                side.owned.remove(&piece).is_some(),
                "piece {piece:?} lent without being owned"
            );
            side.lent.insert(tag, piece);
            side.pending.insert(tag);
        }
    }

    fn close(&mut self, me: usize) {
        let handle = self.handle(me);
        let (own_stream, own_file) = {
            let side = &self.sides[me];
            (side.streams.contains(&handle), side.file == handle)
        };
        let worker = self.sides[me].worker();
        // Mostly stale and foreign handles: closing live ones ends the run's variety.
        if own_stream && self.rng.chance(90) {
            return;
        }
        let rc = if own_file {
            return;
        } else {
            iot_socket_close(worker, handle)
        };
        if own_stream {
            assert_eq!(rc, 0, "close of a live stream: {}", message(rc));
            let side = &mut self.sides[me];
            let position = side.streams.iter().position(|&s| s == handle);
            if let Some(i) = position {
                side.streams.remove(i);
                side.peers.remove(i);
            }
            side.stale.push(handle);
            // The close let the stream's queued sends into the kernel and reaped what
            // completed (other streams' receives too): those completions wait in the
            // worker's ready queue, their buffers out of the pool, until drained.
            for _ in 0..64 {
                if self.sides[me].host.stats().completions_ready == 0 {
                    break;
                }
                self.drain(me);
            }
            self.reconnect(me);
        } else {
            assert!(
                rc < 0,
                "close of a handle {handle:#x} this worker does not have"
            );
        }
    }

    /// Connects a replacement stream; it joins `streams` when its connect completes.
    fn reconnect(&mut self, me: usize) {
        let tag = self.tag() | CONNECT_BIT;
        let side = &mut self.sides[me];
        let port = side.listener.local_addr().expect("port").port();
        if side.host.connect("127.0.0.1", port, tag, 0) == 0 {
            side.pending.insert(tag);
        }
    }

    fn payload(&mut self, me: usize) {
        let worker = self.sides[me].worker();
        let other = 1 - me;
        match self.rng.below(4) {
            0 => {
                let mut payload = 0;
                if iot_payload_acquire(worker, &mut payload) == 0 {
                    assert!(self.sides[me].payloads.insert(payload), "payload twice");
                }
            }
            1 => {
                let held: Vec<u64> = self.sides[me].payloads.iter().copied().collect();
                if let Some(&p) = held.get(self.rng.below(held.len())) {
                    ok("payload release", iot_payload_release(worker, p));
                    self.sides[me].payloads.remove(&p);
                    assert_eq!(iot_payload_release(worker, p), IOT_E_BAD_BUFFER);
                }
            }
            2 => {
                let theirs: Vec<u64> = self.sides[other].payloads.iter().copied().collect();
                if let Some(&p) = theirs.get(self.rng.below(theirs.len())) {
                    assert_eq!(iot_payload_release(worker, p), IOT_E_BAD_HANDLE);
                }
            }
            _ => {
                let held: Vec<u64> = self.sides[me].payloads.iter().copied().collect();
                let Some(&p) = held.get(self.rng.below(held.len())) else {
                    return;
                };
                if iot_messaging_supported() != 1 {
                    return;
                }
                let target = self.sides[other].worker();
                let tag = self.tag();
                let rc = iot_message_send_payload(worker, target, tag, p, 1);
                if rc == 0 {
                    self.sides[me].payloads.remove(&p);
                    self.in_transit += 1;
                }
            }
        }
    }

    fn drain(&mut self, me: usize) {
        self.sides[me].host.flush();
        let mut batch = [iot_completion::default(); 64];
        let worker = self.sides[me].worker();
        let n = ok(
            "drain",
            iot_worker_drain(worker, batch.as_mut_ptr(), batch.len() as u32),
        );
        for c in &batch[..n as usize] {
            self.on_completion(me, c);
        }
    }

    fn on_completion(&mut self, me: usize, c: &iot_completion) {
        *self.seen.entry((c.kind, c.result >= 0)).or_default() += 1;
        let side = &mut self.sides[me];
        let last = c.flags & IOT_COMPLETION_MORE == 0;
        match c.kind {
            IOT_KIND_PAYLOAD => {
                self.in_transit -= 1;
                if c.handle != 0 {
                    side.payloads.insert(c.handle);
                }
                return;
            }
            IOT_KIND_CONNECT if c.result == 0 && c.tag & CONNECT_BIT != 0 => {
                side.pending.remove(&c.tag);
                let (peer, _) = side.listener.accept().expect("accept the replacement");
                peer.set_nonblocking(true).expect("non-blocking peer");
                side.streams.push(c.handle);
                side.peers.push(peer);
                return;
            }
            IOT_KIND_MESSAGE_SENT => {
                if c.handle != 0 {
                    self.in_transit -= 1;
                    side.payloads.insert(c.handle);
                }
                return;
            }
            _ => {}
        }
        let lent = if last { side.lent.remove(&c.tag) } else { None };
        if c.flags & IOT_COMPLETION_BUFFER != 0 {
            // A read hands back what it borrowed; a receive hands over a new piece.
            let piece = lent.unwrap_or((u32::from(c.buffer_id), held_at(c)));
            assert_eq!(
                piece.0,
                u32::from(c.buffer_id),
                "a read hands back its buffer"
            );
            let room = match lent {
                Some(_) => 1,
                None => c.result.max(1) as u32,
            };
            assert!(
                side.owned.insert(piece, room).is_none(),
                "completion {c:?} hands over piece {piece:?}, which the host owns already"
            );
        }
        if last {
            side.pending.remove(&c.tag);
        }
    }

    /// The worker's counters agree with the model after every call.
    fn check(&self, me: usize) {
        let side = &self.sides[me];
        let stats = side.host.stats();
        let ids: HashSet<u32> = side
            .owned
            .keys()
            .chain(side.lent.values())
            .map(|p| p.0)
            .collect();
        assert_eq!(
            stats.buffers_outstanding as usize,
            ids.len(),
            "after call {}: the worker counts {} buffers out of the pool, the model {} \
             (owned {:?}, lent {:?})",
            self.calls,
            stats.buffers_outstanding,
            ids.len(),
            side.owned,
            side.lent
        );
        let held = self.sides[0].payloads.len() + self.sides[1].payloads.len();
        assert_eq!(
            iot_payloads_in_use() as usize,
            held + self.in_transit,
            "after call {}: payloads in use",
            self.calls
        );
    }
}

#[test]
fn random_abi_calls_keep_one_owner_per_buffer_and_payload() {
    let seconds: u64 = std::env::var("IOT_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("IOT_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_0001);
    println!("fuzzing for {seconds} s with IOT_FUZZ_SEED={seed}");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut fuzz = Fuzz {
        rng: Rng(seed.max(1)),
        sides: [
            Side::new(dir.path(), "a", 1024),
            Side::new(dir.path(), "b", 4096),
        ],
        next_tag: 0,
        in_transit: 0,
        calls: 0,
        seen: Default::default(),
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        for _ in 0..256 {
            fuzz.step();
        }
    }
    // Wind down: cancel what is pending and drain until the model has it all back.
    for me in 0..2 {
        let tags: Vec<u64> = fuzz.sides[me].pending.iter().copied().collect();
        for tag in tags {
            let _ = iot_cancel(fuzz.sides[me].worker(), tag);
        }
    }
    let until = Instant::now() + DEADLINE;
    while fuzz.sides.iter().any(|s| !s.pending.is_empty()) || fuzz.in_transit > 0 {
        assert!(Instant::now() < until, "operations never completed");
        for me in 0..2 {
            fuzz.drain(me);
            fuzz.check(me);
            ok("wait", iot_worker_wait(fuzz.sides[me].worker(), 10));
        }
    }
    println!(
        "{} calls; completions by (kind, succeeded): {:?}",
        fuzz.calls, fuzz.seen
    );
    for side in &mut fuzz.sides {
        for ((id, offset), _) in side.owned.drain() {
            ok("release", iot_buffer_release(side.host.worker, id, offset));
        }
        for p in side.payloads.drain() {
            ok("payload release", iot_payload_release(side.host.worker, p));
        }
        assert_eq!(side.host.stats().buffers_outstanding, 0);
    }
    assert_eq!(iot_payloads_in_use(), 0);
}
