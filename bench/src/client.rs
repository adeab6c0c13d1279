//! The load client, identical for every server: one thread drives N nonblocking
//! connections with level-triggered epoll. Each connection does strict ping-pong:
//! send `size` bytes, read back exactly `size` bytes, compare them with what was sent,
//! repeat. Round trips completed after the warm-up and before the deadline are counted.
//! A caller-supplied probe (the server's CPU time) is sampled at the same two instants
//! that bound the counted window. Before the warm-up the connections are opened in two
//! halves, and each connection makes one round trip, so the server has accepted and
//! served them all; another probe (the server's memory) is sampled after each half,
//! while every connection open is idle: the difference is what the second half holds.

use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::interrupt;
use crate::sys::{self, Epoll, EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLRDHUP};

/// How often the loop wakes up (at least) to check deadlines, stalls and Ctrl-C.
const TICK: Duration = Duration::from_millis(100);

pub struct Config {
    pub port: u16,
    pub connections: usize,
    pub size: usize,
    pub warmup: Duration,
    pub measure: Duration,
    /// A connection that gets no byte back for this long fails the run.
    pub stall_timeout: Duration,
}

pub struct Outcome<S, M> {
    pub round_trips: u64,
    pub elapsed: Duration,
    /// The client thread's own CPU time over the window / the window: near 1.0 means the
    /// client, not the server, was the limit.
    pub client_busy: f64,
    /// What the idle probe found once the connections made their first round trips
    /// (`run`: after each half, see `Halves`).
    pub idle: M,
    /// The probe's values at the start and the end of the measured window.
    pub probe_start: S,
    pub probe_end: S,
}

/// An idle probe's values once the first `half` connections, and then all of them,
/// made one round trip with none busy: what the others hold is the difference, without
/// what the server pays once (a JIT compiling its receive path, heaps and pools growing
/// with the first burst).
pub struct Halves<M> {
    pub half: usize,
    pub at_half: M,
    pub at_all: M,
}

/// Opens `connections` in two halves with `grow` (up to a count in all, each new one
/// making its first round trip), probing after each half.
pub(crate) fn in_halves<M>(
    connections: usize,
    mut grow: impl FnMut(usize) -> Result<(), String>,
    mut idle_probe: impl FnMut() -> M,
) -> Result<Halves<M>, String> {
    let half = connections / 2;
    grow(half)?;
    let at_half = idle_probe();
    grow(connections)?;
    Ok(Halves {
        half,
        at_half,
        at_all: idle_probe(),
    })
}

/// Runs `turn` (an event-loop turn until a deadline; it returns the round trips done so
/// far, starting from `done`) until `count` round trips are done.
pub(crate) fn until_first_echoes(
    count: usize,
    done: u64,
    stall: Duration,
    mut turn: impl FnMut(Instant) -> Result<u64, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + stall.max(Duration::from_secs(30));
    let mut total = done;
    while total < count as u64 {
        if Instant::now() >= deadline {
            return Err(format!(
                "only {total} of {count} connections got their first echo"
            ));
        }
        total = turn(deadline)?;
    }
    Ok(())
}

impl<S, M> Outcome<S, M> {
    pub fn per_sec(&self) -> f64 {
        self.round_trips as f64 / self.elapsed.as_secs_f64()
    }
}

struct Conn {
    stream: TcpStream,
    /// The request being sent; its first bytes carry the sequence number.
    req: Vec<u8>,
    /// Where the echo is read into.
    resp: Vec<u8>,
    seq: u64,
    sent: usize,
    got: usize,
    /// Whether EPOLLOUT is currently registered (only after a partial send).
    want_out: bool,
    last_progress: Instant,
}

impl Conn {
    fn new(stream: TcpStream, index: usize, size: usize, now: Instant) -> Self {
        // A per-connection pseudo-random payload, so echoes crossed between
        // connections or shifted within one are caught.
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (index as u64).wrapping_mul(0xA24B_AED4_963E_E407);
        let req = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Conn {
            stream,
            req,
            resp: vec![0; size],
            seq: 0,
            sent: 0,
            got: 0,
            want_out: false,
            last_progress: now,
        }
    }

    /// Stamps the next sequence number into the request and resets the counters.
    fn next_request(&mut self) {
        self.seq += 1;
        let stamp = self.seq.to_le_bytes();
        let n = stamp.len().min(self.req.len());
        self.req[..n].copy_from_slice(&stamp[..n]);
        self.sent = 0;
        self.got = 0;
    }

    /// Sends as much of the request as the socket takes; (de)registers EPOLLOUT as needed.
    fn flush(&mut self, ep: &Epoll, token: u64) -> Result<(), String> {
        let fd = self.stream.as_raw_fd();
        while self.sent < self.req.len() {
            match sys::send(fd, &self.req[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("connection {token}: send failed: {e}")),
            }
        }
        let want_out = self.sent < self.req.len();
        if want_out != self.want_out {
            let interest = if want_out {
                EPOLLIN | EPOLLOUT
            } else {
                EPOLLIN
            } | EPOLLRDHUP;
            ep.modify(fd, interest, token)
                .map_err(|e| format!("epoll_ctl: {e}"))?;
            self.want_out = want_out;
        }
        Ok(())
    }

    /// One `recv`. Returns true when the whole echo has arrived and matched.
    fn read(&mut self, token: u64) -> Result<bool, String> {
        let size = self.resp.len();
        match sys::recv(self.stream.as_raw_fd(), &mut self.resp[self.got..]) {
            Ok(0) => Err(format!(
                "connection {token}: server closed the connection (request {}, received {}/{size} bytes)",
                self.seq, self.got
            )),
            Ok(n) => {
                self.got += n;
                if self.got < size {
                    return Ok(false);
                }
                if self.sent < size {
                    return Err(format!(
                        "connection {token}: server sent {size} bytes back before it was sent {size} (request {})",
                        self.seq
                    ));
                }
                if self.resp != self.req {
                    let at = self.resp.iter().zip(&self.req).position(|(a, b)| a != b).unwrap_or(0);
                    return Err(format!(
                        "connection {token}: echo mismatch on request {} at byte {at} of {size}",
                        self.seq
                    ));
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("connection {token}: recv failed: {e}")),
        }
    }
}

/// Runs one measurement against 127.0.0.1:`cfg.port`. Always returns by
/// connect + first round trips + warm-up + measure, or earlier with an error. `probe` is
/// called exactly twice: when the measured window opens (after the warm-up) and when it
/// closes; `idle_probe` twice, after the first round trips of each half of the
/// connections (the first half is empty for one connection).
pub fn run<S, M>(
    cfg: &Config,
    mut probe: impl FnMut() -> S,
    mut idle_probe: impl FnMut() -> M,
) -> Result<Outcome<S, Halves<M>>, String> {
    assert!(cfg.connections > 0 && cfg.size > 0);
    let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    let mut pump = Pump {
        ep: Epoll::new().map_err(|e| format!("epoll_create: {e}"))?,
        events: sys::events(cfg.connections.min(1024)),
        conns: Vec::with_capacity(cfg.connections),
        total: 0,
        next_check: Instant::now() + TICK,
    };
    let idle = in_halves(
        cfg.connections,
        |count| pump.grow(addr, count, cfg),
        &mut idle_probe,
    )?;

    pump.start_all()?;
    let start = Instant::now();
    let warm_end = start + cfg.warmup;
    let end = warm_end + cfg.measure;
    let mut measured_from: Option<(u64, Instant, Duration, S)> = None;
    let mut now = start;
    loop {
        if measured_from.is_none() && now >= warm_end {
            let at_start = probe();
            measured_from = Some((pump.total, now, thread_cpu(), at_start));
        }
        if now >= end {
            break;
        }
        let wake = if measured_from.is_none() {
            warm_end
        } else {
            end
        };
        now = pump.turn(wake, true, cfg)?;
    }

    let probe_end = probe();
    let client_end = thread_cpu();
    let (at_warm_end, from, client_start, probe_start) = measured_from.expect("set before the end");
    let round_trips = pump.total - at_warm_end;
    check_stalls(&pump.conns, now, cfg)?;
    if round_trips == 0 {
        return Err(format!(
            "server stalled: no round trip completed in the {:.1} s measured",
            cfg.measure.as_secs_f64()
        ));
    }
    let elapsed = now - from;
    Ok(Outcome {
        round_trips,
        elapsed,
        client_busy: (client_end - client_start).as_secs_f64() / elapsed.as_secs_f64(),
        idle,
        probe_start,
        probe_end,
    })
}

/// The event loop over all connections.
struct Pump {
    ep: Epoll,
    events: Vec<sys::Event>,
    conns: Vec<Conn>,
    /// Round trips completed so far.
    total: u64,
    next_check: Instant,
}

impl Pump {
    /// Opens connections until there are `count`, and has each new one make one round
    /// trip, none followed by the next: then all are idle.
    fn grow(&mut self, addr: SocketAddr, count: usize, cfg: &Config) -> Result<(), String> {
        let first = self.conns.len();
        for i in first..count {
            if i % 1000 == 999 && interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            let stream = TcpStream::connect_timeout(&addr, cfg.stall_timeout)
                .map_err(|e| format!("connect {addr} (connection {i}): {e}"))?;
            stream
                .set_nodelay(true)
                .and_then(|()| stream.set_nonblocking(true))
                .map_err(|e| format!("socket options: {e}"))?;
            self.ep
                .add(stream.as_raw_fd(), EPOLLIN | EPOLLRDHUP, i as u64)
                .map_err(|e| format!("epoll_ctl: {e}"))?;
            self.conns
                .push(Conn::new(stream, i, cfg.size, Instant::now()));
        }
        self.start(first)?;
        until_first_echoes(count, self.total, cfg.stall_timeout, |deadline| {
            self.turn(deadline, false, cfg).map(|_| self.total)
        })
    }

    /// Every connection sends its next request.
    fn start_all(&mut self) -> Result<(), String> {
        self.start(0)
    }

    /// Every connection from index `first` on sends its next request.
    fn start(&mut self, first: usize) -> Result<(), String> {
        let now = Instant::now();
        for (i, c) in self.conns.iter_mut().enumerate().skip(first) {
            c.last_progress = now;
            c.next_request();
            c.flush(&self.ep, i as u64)?;
        }
        Ok(())
    }

    /// One epoll wait (until `wake` at the latest) and its events; a finished round trip
    /// starts the next one when `repeat`. Returns the time after the wait.
    fn turn(&mut self, wake: Instant, repeat: bool, cfg: &Config) -> Result<Instant, String> {
        let now = Instant::now();
        if now >= self.next_check {
            if interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            check_stalls(&self.conns, now, cfg)?;
            self.next_check = now + TICK;
        }
        let timeout_ms = wake
            .min(self.next_check)
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000) as i32;
        let n = self
            .ep
            .wait(&mut self.events, timeout_ms)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        let now = Instant::now();
        for ev in &self.events[..n] {
            let token = sys::token(ev);
            let flags = sys::flags(ev) as libc::c_int;
            let c = &mut self.conns[token as usize];
            if flags & EPOLLOUT != 0 {
                c.flush(&self.ep, token)?;
            }
            if flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0 && c.read(token)? {
                self.total += 1;
                c.last_progress = now;
                if repeat {
                    c.next_request();
                    c.flush(&self.ep, token)?;
                } else {
                    // Finished: not a stall while the others catch up.
                    c.last_progress = now + cfg.stall_timeout * 100;
                }
            }
        }
        Ok(now)
    }
}

/// CPU time of the calling thread.
pub(crate) fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec into a local.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn check_stalls(conns: &[Conn], now: Instant, cfg: &Config) -> Result<(), String> {
    for (i, c) in conns.iter().enumerate() {
        let idle = now.saturating_duration_since(c.last_progress);
        if idle >= cfg.stall_timeout {
            return Err(format!(
                "server stalled: connection {i} of {} has had no complete echo for {:.1} s \
                 (request {}: sent {}/{} bytes, received {}/{} bytes)",
                conns.len(),
                idle.as_secs_f64(),
                c.seq,
                c.sent,
                c.req.len(),
                c.got,
                c.req.len()
            ));
        }
    }
    Ok(())
}
