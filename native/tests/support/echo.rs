//! Echo serving for tests that use std::net and std::os::unix::net clients as peers:
//! `EchoSessions` echoes on the connections it is given (accepted here or handed over
//! by another worker), and `EchoServer` runs a TCP or Unix listener plus sessions on
//! its own thread. Dropping the server closes the listener; the serving loop ends on
//! the accept's final completion, and the worker is freed and checked for leaks.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::thread::JoinHandle;

use super::*;

pub struct EchoServer {
    pub worker: u64,
    pub listener: u64,
    pub port: u16,
    thread: Option<JoinHandle<iot_stats>>,
}

const ACCEPT: u64 = u64::MAX;

impl EchoServer {
    /// `connections` clients on 10 threads send `size` pattern bytes each, all at
    /// once, and check the echo; returns the worker's counters after every connection
    /// closed, asserting that nothing stayed behind.
    pub fn echo_all_at_once(self, connections: usize, size: usize) -> iot_stats {
        self.echo_in_rounds(connections, size, 1)
    }

    /// As `echo_all_at_once`, for `rounds` messages per connection: each client
    /// sends its next message as soon as it has read the echo of the last, so every
    /// connection keeps one message in flight, as a load client does.
    pub fn echo_in_rounds(self, connections: usize, size: usize, rounds: u32) -> iot_stats {
        let port = self.port;
        let per_thread = connections / 10;
        let threads: Vec<_> = (0..10)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut streams: Vec<std::net::TcpStream> = (0..per_thread)
                        .map(|_| {
                            std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect")
                        })
                        .collect();
                    let message = |i: usize, round: u32| {
                        pattern(size, (t * per_thread + i) as u32 ^ (round << 24))
                    };
                    for (i, s) in streams.iter_mut().enumerate() {
                        s.set_read_timeout(Some(DEADLINE)).unwrap();
                        s.write_all(&message(i, 0)).unwrap();
                    }
                    let mut back = vec![0u8; size];
                    for round in 0..rounds {
                        for (i, s) in streams.iter_mut().enumerate() {
                            s.read_exact(&mut back).unwrap();
                            assert_eq!(back, message(i, round));
                            if round + 1 < rounds {
                                s.write_all(&message(i, round + 1)).unwrap();
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("client thread");
        }
        let stats = self.stop();
        assert_eq!(
            (
                stats.sockets_open,
                stats.buffers_outstanding,
                stats.ops_in_flight
            ),
            (0, 0, 0)
        );
        stats
    }

    pub fn start(ip: &str) -> EchoServer {
        EchoServer::start_with(ip, &iot_config::default())
    }

    pub fn start_with(ip: &str, config: &iot_config) -> EchoServer {
        let host = Host::with_config(config);
        let (listener, port) = host.listen(ip, 0);
        EchoServer::serve_on(host, listener, port)
    }

    /// An echo server on the Unix stream socket at `path` (`@name`: abstract).
    pub fn unix(path: &str) -> EchoServer {
        let host = Host::new();
        let mut listener = 0;
        let path = cstr(path);
        ok(
            "unix listen",
            iot_unix_listen(host.worker, path.as_ptr(), 0, 0, &mut listener),
        );
        EchoServer::serve_on(host, listener, 0)
    }

    fn serve_on(host: Host, listener: u64, port: u16) -> EchoServer {
        ok(
            "accept",
            iot_accept(host.worker, listener, ACCEPT, IOT_OP_MULTISHOT, 0),
        );
        host.flush();
        let worker = host.worker;
        let thread = std::thread::spawn(move || serve(host));
        EchoServer {
            worker,
            listener,
            port,
            thread: Some(thread),
        }
    }

    /// Stops the server and returns the worker's counters after every connection
    /// closed (before the worker is freed).
    pub fn stop(mut self) -> iot_stats {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> iot_stats {
        let _ = iot_socket_close(self.worker, self.listener);
        self.thread
            .take()
            .map(|t| t.join().expect("echo thread"))
            .unwrap_or_default()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

fn serve(mut host: Host) -> iot_stats {
    let worker = host.worker;
    let mut sessions = EchoSessions::default();
    loop {
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_ACCEPT if c.result == 0 => sessions.start(worker, c.handle),
            IOT_KIND_ACCEPT if c.flags & IOT_COMPLETION_MORE == 0 => break,
            _ => {
                sessions.on_completion(worker, &c);
            }
        }
    }
    sessions.finish(&mut host)
}

/// Echo on connections tagged with their own socket handle: every byte received is
/// sent back from the receive buffer; at end of stream our FIN follows the echoes,
/// then the socket is closed.
#[derive(Default)]
pub struct EchoSessions {
    open: HashSet<u64>,
    /// Connections that ran to their end and were closed.
    pub closed: usize,
}

impl EchoSessions {
    /// Starts echoing on connected socket `socket`.
    pub fn start(&mut self, worker: u64, socket: u64) {
        self.open.insert(socket);
        ok(
            "recv",
            iot_recv(worker, socket, socket, IOT_OP_MULTISHOT, 0),
        );
    }

    pub fn open(&self) -> usize {
        self.open.len()
    }

    /// Handles `c` if it belongs to one of our connections; returns whether it did.
    pub fn on_completion(&mut self, worker: u64, c: &iot_completion) -> bool {
        if !self.open.contains(&c.tag) {
            return false;
        }
        let last = c.flags & IOT_COMPLETION_MORE == 0;
        match c.kind {
            IOT_KIND_RECV if c.result > 0 => echo_back(worker, c),
            IOT_KIND_RECV if c.result == 0 => {
                let how = IOT_SHUTDOWN_WRITE;
                ok("shutdown", iot_socket_shutdown(worker, c.tag, how, c.tag));
            }
            IOT_KIND_RECV | IOT_KIND_SHUTDOWN if last => {
                self.open.remove(&c.tag);
                self.closed += 1;
                ok("close", iot_socket_close(worker, c.tag));
            }
            _ => {}
        }
        true
    }

    /// Closes every connection still open, reaps what was cancelled, and returns the
    /// worker's counters so callers can check that nothing stayed behind. A close
    /// lets queued sends into the kernel and reaps what completed meanwhile (other
    /// connections' receives too): those completions' buffers are given back here,
    /// as any host does with completions it no longer wants.
    pub fn finish(self, host: &mut Host) -> iot_stats {
        for socket in self.open {
            ok("close", iot_socket_close(host.worker, socket));
        }
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let drained = host.poll();
            host.release_pending();
            let stats = host.stats();
            let quiet = stats.ops_in_flight == 0 && stats.completions_ready == 0;
            if quiet || std::time::Instant::now() >= deadline {
                return stats;
            }
            if drained == 0 {
                ok("wait", iot_worker_wait(host.worker, 100));
            }
        }
    }
}

/// Sends the received piece straight back; it returns to the pool after the send.
fn echo_back(worker: u64, c: &iot_completion) {
    let buffer = u32::from(c.buffer_id);
    if iot_send(worker, c.tag, buffer, c.offset, c.result as u32, c.tag, 0) < 0 {
        ok("release", iot_buffer_release(worker, buffer, c.offset));
    }
}
