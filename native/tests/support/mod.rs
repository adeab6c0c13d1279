//! Test host: drives a worker through the C ABI exactly like the Dart layer does
//! (drain → dispatch → flush → wait), with a deadline on every wait.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod echo;
pub mod messaging;
pub mod notified;
pub mod tls;

use std::collections::VecDeque;
use std::ffi::{c_char, CStr, CString};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use iouring_transport::ffi::*;
pub use iouring_transport::*;

/// Skips a test cleanly on kernels without MSG_RING flag passing (Linux < 6.3).
#[allow(unused_macros)] // as `dead_code` above: not every test binary messages
macro_rules! require_messaging {
    () => {
        if iot_messaging_supported() != 1 {
            eprintln!("skipped: this kernel cannot pass flags through IORING_OP_MSG_RING");
            return;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use require_messaging;

/// Upper bound for any single wait in a test.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn ok(what: &str, code: i32) -> i32 {
    assert!(code >= 0, "{what} failed: {} ({code})", message(code));
    code
}

pub fn message(code: i32) -> String {
    let mut buf = [0 as std::ffi::c_char; 512];
    iot_error_message(code, buf.as_mut_ptr(), buf.len());
    // SAFETY: NUL-terminated by iot_error_message.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

pub fn config(recv: u32, send: u32, size: u32) -> iot_config {
    let mut config = iot_config::default();
    ok("config", iot_config_default(&mut config));
    config.recv_buffer_count = recv;
    config.send_buffer_count = send;
    config.buffer_size = size;
    config
}

/// A worker plus the completions drained but not yet consumed by the test.
pub struct Host {
    pub worker: u64,
    pending: VecDeque<iot_completion>,
    base: *mut u8,
    size: u32,
}

// SAFETY: a worker may be driven from any thread; `base` points into its pool, which
// lives as long as the worker this Host owns.
unsafe impl Send for Host {}

impl Host {
    pub fn new() -> Host {
        Host::with_config(&iot_config::default())
    }

    pub fn with_config(config: &iot_config) -> Host {
        let mut worker = 0;
        ok("worker_new", iot_worker_new(config, &mut worker));
        let (mut base, mut size, mut count) = (std::ptr::null_mut(), 0, 0);
        ok(
            "buffers",
            iot_worker_buffers(worker, &mut base, &mut size, &mut count),
        );
        Host {
            worker,
            pending: VecDeque::new(),
            base,
            size,
        }
    }

    /// A worker with `ring_entries` SQEs and `recv` receive and `send` send buffers of
    /// `size` bytes, which size its completion queue (small ones make a small queue).
    pub fn with_ring(ring_entries: u32, recv: u32, send: u32, size: u32) -> Host {
        let mut small = config(recv, send, size);
        small.ring_entries = ring_entries;
        Host::with_config(&small)
    }

    pub fn buffer_size(&self) -> u32 {
        self.size
    }

    /// Bytes `[0, len)` of buffer `id`.
    pub fn buffer(&self, id: u32, len: usize) -> &[u8] {
        self.buffer_range(id, 0, len)
    }

    /// Bytes `[offset, offset + len)` of buffer `id`.
    pub fn buffer_range(&self, id: u32, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.size as usize);
        let start = id as usize * self.size as usize + offset;
        // SAFETY: id came from the worker and the range fits one buffer.
        unsafe { std::slice::from_raw_parts(self.base.add(start), len) }
    }

    /// The bytes a completion delivered: `result` bytes from its `offset`.
    pub fn payload(&self, c: &iot_completion) -> &[u8] {
        assert_ne!(c.flags & IOT_COMPLETION_BUFFER, 0, "no buffer in {c:?}");
        self.buffer_range(
            u32::from(c.buffer_id),
            c.offset as usize,
            c.result.max(0) as usize,
        )
    }

    /// Gives back buffer `id`, held whole (a datagram's, an acquired one).
    pub fn release(&self, id: u16) {
        ok("release", iot_buffer_release(self.worker, u32::from(id), 0));
    }

    /// Gives back what completion `c` handed over: its piece (`IOT_COMPLETION_PIECE`,
    /// at its `offset`) or its buffer whole.
    pub fn give_back(&self, c: &iot_completion) {
        ok(
            "release",
            iot_buffer_release(self.worker, u32::from(c.buffer_id), held_at(c)),
        );
    }

    /// Acquires a send buffer and copies `data` into it.
    pub fn filled_buffer(&self, data: &[u8]) -> u32 {
        let mut id = 0;
        ok("acquire", iot_buffer_acquire(self.worker, &mut id));
        self.fill(id, data);
        id
    }

    /// As `filled_buffer`, or `None` when every send buffer is in use.
    pub fn try_filled_buffer(&self, data: &[u8]) -> Option<u32> {
        let mut id = 0;
        let code = iot_buffer_acquire(self.worker, &mut id);
        if code == -libc::ENOBUFS {
            return None;
        }
        ok("acquire", code);
        self.fill(id, data);
        Some(id)
    }

    /// Copies `data` into buffer `id`, which the host holds.
    fn fill(&self, id: u32, data: &[u8]) {
        assert!(data.len() <= self.size as usize);
        // SAFETY: the host owns buffer id and data fits in it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.add(id as usize * self.size as usize),
                data.len(),
            )
        };
    }

    /// `count` std clients of a new listener on 127.0.0.1, each accepted (multishot
    /// accept tagged `tag`); returns the clients and our sockets, in the same order.
    pub fn accepted_clients(
        &mut self,
        count: usize,
        tag: u64,
    ) -> (Vec<std::net::TcpStream>, Vec<u64>) {
        let (_, port) = self.accepting(tag);
        self.accept_clients(port, count, tag)
    }

    /// A new listener on 127.0.0.1 with a multishot accept tagged `tag`, flushed:
    /// (listener, port).
    pub fn accepting(&self, tag: u64) -> (u64, u16) {
        let (listener, port) = self.listen("127.0.0.1", 0);
        ok(
            "accept",
            iot_accept(self.worker, listener, tag, IOT_OP_MULTISHOT, 0),
        );
        self.flush();
        (listener, port)
    }

    /// `count` std clients of 127.0.0.1:`port`, each accepted by the accept tagged
    /// `tag` before the next connects; returns the clients and our sockets, in the
    /// same order.
    pub fn accept_clients(
        &mut self,
        port: u16,
        count: usize,
        tag: u64,
    ) -> (Vec<std::net::TcpStream>, Vec<u64>) {
        let mut clients = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..count {
            clients.push(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
            let c = self.next_tagged(tag);
            assert_eq!(c.result, 0, "accept: {}", message(c.result));
            sockets.push(c.handle);
        }
        (clients, sockets)
    }

    pub fn listen(&self, ip: &str, flags: u32) -> (u64, u16) {
        let ip = CString::new(ip).unwrap();
        let mut listener = 0;
        ok(
            "listen",
            iot_tcp_listen(self.worker, ip.as_ptr(), 0, 0, flags, &mut listener),
        );
        (listener, self.port(listener))
    }

    pub fn port(&self, socket: u64) -> u16 {
        self.address(socket, IOT_ADDRESS_LOCAL).1
    }

    /// A socket's local or peer address as (text, port).
    pub fn address(&self, socket: u64, which: u32) -> (String, u16) {
        address_of(self.worker, socket, which)
    }

    /// Who sent the datagram in host buffer `id`, as (text, port).
    pub fn sender(&self, id: u16) -> (String, u16) {
        let mut port = 0;
        let mut text = [0 as c_char; 128];
        ok(
            "sender",
            iot_datagram_sender(
                self.worker,
                u32::from(id),
                text.as_mut_ptr(),
                text.len(),
                &mut port,
            ),
        );
        (text_of(&text), port)
    }

    /// Sends datagram `c` back to its sender from the very buffer it arrived in (no
    /// copy); the send completes tagged `tag`.
    pub fn echo_datagram(&self, socket: u64, c: &iot_completion, tag: u64) {
        let (ip, port) = self.sender(c.buffer_id);
        let ip = cstr(&ip);
        ok(
            "echo",
            iot_udp_send_to(
                self.worker,
                socket,
                u32::from(c.buffer_id),
                c.offset,
                c.result as u32,
                ip.as_ptr(),
                port,
                tag,
                0,
            ),
        );
    }

    pub fn connect(&self, ip: &str, port: u16, tag: u64, timeout_ms: u32) -> i32 {
        let ip = CString::new(ip).unwrap();
        let code = iot_tcp_connect(self.worker, ip.as_ptr(), port, tag, timeout_ms);
        self.flush();
        code
    }

    /// A TCP connection from one of our sockets to a std peer: (our socket, the peer).
    /// Connects to a port nobody listens on (the listener that had it is closed):
    /// exactly one completion, `-ECONNREFUSED`, arrives for `tag`.
    pub fn connect_refused(&self, tag: u64) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        ok("connect", self.connect("127.0.0.1", port, tag, 0));
    }

    pub fn connected_pair(&mut self) -> (u64, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        ok("connect", self.connect("127.0.0.1", port, 42, 0));
        let (peer, _) = listener.accept().unwrap();
        let c = self.next_tagged(42);
        assert_eq!(c.result, 0, "connect: {}", message(c.result));
        peer.set_read_timeout(Some(DEADLINE)).unwrap();
        (c.handle, peer)
    }

    /// A connection whose buffers hold little at both ends: while its peer does not
    /// read, a large send stops part way and waits for room.
    pub fn small_buffered_pair(&mut self) -> (u64, std::net::TcpStream) {
        let (socket, peer) = self.connected_pair();
        let small = 4096i32.to_ne_bytes();
        let (level, option) = (libc::SOL_SOCKET, libc::SO_SNDBUF);
        ok(
            "SO_SNDBUF",
            iot_socket_set_raw_option(self.worker, socket, level, option, small.as_ptr(), 4),
        );
        socket2::SockRef::from(&peer)
            .set_recv_buffer_size(4096)
            .unwrap();
        (socket, peer)
    }

    /// A `small_buffered_pair` with `size` bytes sent on it, tagged `tag`: while the
    /// peer does not read, the send stops part way and waits for room.
    pub fn stuck_send(&mut self, size: usize, tag: u64) -> (u64, std::net::TcpStream) {
        let (socket, peer) = self.small_buffered_pair();
        let id = self.filled_buffer(&vec![7; size]);
        ok(
            "send",
            iot_send(self.worker, socket, id, 0, size as u32, tag, 0),
        );
        (socket, peer)
    }

    /// Opens (creating) `path` for reading and writing; returns the file handle.
    pub fn open_rw(&mut self, path: &std::path::Path) -> u64 {
        let flags = IOT_OPEN_READ | IOT_OPEN_WRITE | IOT_OPEN_CREATE;
        let path = cstr(path.to_str().expect("UTF-8 temp path"));
        ok(
            "open",
            iot_file_open(self.worker, path.as_ptr(), flags, 0o600, 9, 0),
        );
        let c = self.next_tagged(9);
        assert_eq!(c.result, 0, "{}", message(c.result));
        c.handle
    }

    /// A FIFO in `dir` opened read-write, so a read on it waits in the kernel until
    /// data comes.
    pub fn empty_fifo(&mut self, dir: &std::path::Path) -> u64 {
        let path = dir.join("fifo");
        let c_path = cstr(path.to_str().expect("UTF-8 temp path"));
        // SAFETY: a NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        self.open_rw(&path)
    }

    pub fn flush(&self) {
        ok("flush", iot_worker_flush(self.worker));
    }

    /// Drains what is ready now (after a flush), without waiting.
    pub fn poll(&mut self) -> usize {
        self.flush();
        let mut batch = [iot_completion::default(); 64];
        let n = ok(
            "drain",
            iot_worker_drain(self.worker, batch.as_mut_ptr(), batch.len() as u32),
        ) as usize;
        self.pending.extend(&batch[..n]);
        self.flush();
        n
    }

    /// Next completion matching `pred`, running the loop until it arrives.
    pub fn next_where(&mut self, pred: impl Fn(&iot_completion) -> bool) -> iot_completion {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(i) = self.pending.iter().position(&pred) {
                return self.pending.remove(i).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "no matching completion within {DEADLINE:?}"
            );
            if self.poll() == 0 {
                ok("wait", iot_worker_wait(self.worker, 100));
            }
        }
    }

    /// Drops the completions drained but not consumed, giving back the buffers they
    /// handed to the host.
    pub fn release_pending(&mut self) {
        for c in std::mem::take(&mut self.pending) {
            if c.flags & IOT_COMPLETION_BUFFER != 0 {
                self.give_back(&c);
            }
        }
    }

    pub fn next_tagged(&mut self, tag: u64) -> iot_completion {
        self.next_where(|c| c.tag == tag)
    }

    /// Receives one datagram with a one-shot receive (tag `tag`) and releases its buffer.
    pub fn recv_datagram(&mut self, socket: u64, tag: u64) -> Datagram {
        ok(
            "recv",
            iot_datagram_recv(self.worker, socket, tag, 0, 10_000),
        );
        let c = self.next_tagged(tag);
        assert_eq!(c.kind, IOT_KIND_RECV_FROM);
        assert!(c.result >= 0, "recv failed: {}", message(c.result));
        let (sender, port) = self.sender(c.buffer_id);
        let datagram = Datagram {
            payload: self.payload(&c).to_vec(),
            sender,
            port,
            flags: c.flags,
            offset: c.offset,
        };
        self.release(c.buffer_id);
        datagram
    }

    /// Cancels the ops tagged `tag` and checks that the last completion says so.
    pub fn cancel_to_end(&mut self, tag: u64) {
        ok("cancel", iot_cancel(self.worker, tag));
        let c = self.next_where(|c| c.tag == tag && c.flags & IOT_COMPLETION_MORE == 0);
        assert_eq!(c.result, -libc::ECANCELED, "{}", message(c.result));
    }

    pub fn stats(&self) -> iot_stats {
        let mut stats = iot_stats::default();
        ok("stats", iot_worker_stats(self.worker, &mut stats));
        stats
    }

    /// Sends `data` in buffer-size chunks with one tag, waiting for every chunk.
    pub fn send_all(&mut self, socket: u64, data: &[u8], tag: u64) {
        let mut chunks = 0;
        for chunk in data.chunks(self.size as usize) {
            let id = self.filled_buffer(chunk);
            ok(
                "send",
                iot_send(self.worker, socket, id, 0, chunk.len() as u32, tag, 0),
            );
            chunks += 1;
        }
        for _ in 0..chunks {
            let c = self.next_tagged(tag);
            assert!(c.result >= 0, "send failed: {}", message(c.result));
        }
    }

    /// Receives (one-shot receives, re-queued) until `len` bytes or end of stream.
    pub fn recv_exact(&mut self, socket: u64, len: usize, tag: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            ok("recv", iot_recv(self.worker, socket, tag, 0, 0));
            let c = self.next_tagged(tag);
            assert!(c.result >= 0, "recv failed: {}", message(c.result));
            if c.result == 0 {
                break;
            }
            out.extend_from_slice(self.payload(&c));
            self.give_back(&c);
        }
        out
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let code = iot_worker_free(self.worker);
        if !std::thread::panicking() {
            assert_eq!(code, 0, "worker_free: {}", message(code));
        }
    }
}

/// Where what completion `c` handed over starts, for `iot_buffer_release`: its piece's
/// offset, or 0 for a buffer held whole.
pub fn held_at(c: &iot_completion) -> u32 {
    match c.flags & IOT_COMPLETION_PIECE {
        0 => 0,
        _ => c.offset,
    }
}

/// A socket's local or peer address as (text, port), on any worker.
pub fn address_of(worker: u64, socket: u64, which: u32) -> (String, u16) {
    let mut port = 0;
    let mut text = [0 as c_char; 128];
    ok(
        "address",
        iot_socket_address(
            worker,
            socket,
            which,
            text.as_mut_ptr(),
            text.len(),
            &mut port,
        ),
    );
    (text_of(&text), port)
}

/// A received datagram: its bytes, who sent it, and how it was delivered.
pub struct Datagram {
    pub payload: Vec<u8>,
    pub sender: String,
    pub port: u16,
    pub flags: u32,
    pub offset: u32,
}

fn text_of(text: &[c_char]) -> String {
    // SAFETY: the library NUL-terminates what it writes within the buffer.
    unsafe { CStr::from_ptr(text.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

pub fn cstr(text: &str) -> CString {
    CString::new(text).expect("no NUL inside")
}

/// Held for a whole test that checks it leaks no fd: tests in one binary run on
/// parallel threads, and counting /proc/self/fd needs no other test opening or closing
/// fds meanwhile. Declare it first, so it is dropped (and checks) last.
pub struct FdCheck {
    before: Vec<(String, String)>,
    _serial: MutexGuard<'static, ()>,
}

pub fn fd_check() -> FdCheck {
    static SERIAL: Mutex<()> = Mutex::new(());
    // A test that failed while holding the lock poisons it; the others still run.
    let serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    FdCheck {
        before: fd_table(),
        _serial: serial,
    }
}

impl Drop for FdCheck {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let after = fd_table();
            assert_eq!(
                after.len(),
                self.before.len(),
                "the test leaked (or closed foreign) file descriptors: {:?} before, {:?} after",
                self.before,
                after
            );
        }
    }
}

/// This process's fds and what they name (the listing's own directory fd included).
/// An fd closed while it is listed (its link no longer reads: a thread of the test
/// before is still letting go of it) is left out.
fn fd_table() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut table: Vec<(String, String)> = dir
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            Some((name, target.display().to_string()))
        })
        .collect();
    table.sort();
    table
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Where cargo put `example`: test executables run from `<profile dir>/deps/` and
/// examples sit in `<profile dir>/examples/`, whatever the target dir and `--target`
/// (`target/debug`, `target/i686-unknown-linux-gnu/debug`, ...). Cargo sets no
/// `CARGO_BIN_EXE_*` for examples; `deps/` is in the build dir, which is the target
/// dir unless `build.build-dir` moves it.
pub fn example_path(example: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    assert!(
        deps.ends_with("deps"),
        "cargo runs tests from deps/: {exe:?}"
    );
    let path = deps.with_file_name("examples").join(example);
    assert!(
        path.exists(),
        "{} is missing: cargo builds the examples when it runs every test target, not \
         for `--test NAME`; build them first (`cargo build --examples`, same profile and \
         target)",
        path.display()
    );
    path
}

/// Deterministic, non-repeating-looking test bytes.
/// xorshift64*: a small deterministic PRNG, reproducible from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    /// Spins a random short while (0 to `max` iterations): shifts a race window.
    pub fn jitter(&mut self, max: usize) {
        for i in 0..self.below(max + 1) {
            std::hint::black_box(i);
        }
    }
}

pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
