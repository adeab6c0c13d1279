//! The load client, identical for every server: one thread drives N nonblocking
//! connections with level-triggered epoll. Each connection does strict ping-pong:
//! send `size` bytes, read back exactly `size` bytes, compare them with what was sent,
//! repeat. Round trips completed after the warm-up and before the deadline are counted.
//! A caller-supplied probe (the server's CPU time) is sampled at the same two instants
//! that bound the counted window.

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

pub struct Outcome<S> {
    pub round_trips: u64,
    pub elapsed: Duration,
    /// The probe's values at the start and the end of the measured window.
    pub probe_start: S,
    pub probe_end: S,
}

impl<S> Outcome<S> {
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
/// warm-up + measure (+ connect time), or earlier with an error. `probe` is called
/// exactly twice: when the measured window opens (after the warm-up) and when it closes.
pub fn run<S>(cfg: &Config, mut probe: impl FnMut() -> S) -> Result<Outcome<S>, String> {
    assert!(cfg.connections > 0 && cfg.size > 0);
    let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    let ep = Epoll::new().map_err(|e| format!("epoll_create: {e}"))?;

    let mut conns = Vec::with_capacity(cfg.connections);
    for i in 0..cfg.connections {
        let stream = TcpStream::connect_timeout(&addr, cfg.stall_timeout)
            .map_err(|e| format!("connect {addr} (connection {i}): {e}"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_nonblocking(true))
            .map_err(|e| format!("socket options: {e}"))?;
        ep.add(stream.as_raw_fd(), EPOLLIN | EPOLLRDHUP, i as u64)
            .map_err(|e| format!("epoll_ctl: {e}"))?;
        conns.push(Conn::new(stream, i, cfg.size, Instant::now()));
    }

    let start = Instant::now();
    let warm_end = start + cfg.warmup;
    let end = warm_end + cfg.measure;
    for (i, c) in conns.iter_mut().enumerate() {
        c.last_progress = start;
        c.next_request();
        c.flush(&ep, i as u64)?;
    }

    let mut events = sys::events(cfg.connections.min(1024));
    let mut total: u64 = 0;
    let mut measured_from: Option<(u64, Instant, S)> = None;
    let mut next_check = start + TICK;
    let mut now = start;
    loop {
        if now >= next_check {
            if interrupt::interrupted() {
                return Err("interrupted".to_string());
            }
            check_stalls(&conns, now, cfg)?;
            next_check = now + TICK;
        }
        if measured_from.is_none() && now >= warm_end {
            let at_start = probe();
            measured_from = Some((total, now, at_start));
        }
        if now >= end {
            break;
        }
        let mut wake = end.min(next_check);
        if measured_from.is_none() {
            wake = wake.min(warm_end);
        }
        let timeout_ms = wake
            .saturating_duration_since(now)
            .as_micros()
            .div_ceil(1000) as i32;

        let n = ep
            .wait(&mut events, timeout_ms)
            .map_err(|e| format!("epoll_wait: {e}"))?;
        now = Instant::now();
        for ev in &events[..n] {
            let token = sys::token(ev);
            let flags = sys::flags(ev) as libc::c_int;
            let c = &mut conns[token as usize];
            if flags & EPOLLOUT != 0 {
                c.flush(&ep, token)?;
            }
            if flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0 && c.read(token)? {
                total += 1;
                c.last_progress = now;
                c.next_request();
                c.flush(&ep, token)?;
            }
        }
    }

    let probe_end = probe();
    let (at_warm_end, from, probe_start) = measured_from.expect("set before the end");
    let round_trips = total - at_warm_end;
    check_stalls(&conns, now, cfg)?;
    if round_trips == 0 {
        return Err(format!(
            "server stalled: no round trip completed in the {:.1} s measured",
            cfg.measure.as_secs_f64()
        ));
    }
    Ok(Outcome {
        round_trips,
        elapsed: now - from,
        probe_start,
        probe_end,
    })
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
