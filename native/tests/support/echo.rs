//! An echo server on its own thread, driven through the C ABI, for tests that use
//! std::net clients as peers. Dropping it closes the listener; the serving loop ends
//! on the accept's final completion, and the worker is freed and checked for leaks.

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
    pub fn start(ip: &str) -> EchoServer {
        EchoServer::start_with(ip, &iot_config::default())
    }

    pub fn start_with(ip: &str, config: &iot_config) -> EchoServer {
        let host = Host::with_config(config);
        let (listener, port) = host.listen(ip, 0);
        ok(
            "accept",
            iot_tcp_accept(host.worker, listener, ACCEPT, IOT_OP_MULTISHOT, 0),
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
    let mut open = std::collections::HashSet::new();
    loop {
        let c = host.next_where(|_| true);
        match c.kind {
            IOT_KIND_ACCEPT if c.result == 0 => {
                open.insert(c.handle);
                ok(
                    "recv",
                    iot_recv(worker, c.handle, c.handle, IOT_OP_MULTISHOT, 0),
                );
            }
            IOT_KIND_ACCEPT if c.flags & IOT_COMPLETION_MORE == 0 => break,
            IOT_KIND_RECV if c.result > 0 => echo_back(worker, &c),
            // End of stream: echo what is queued, then close after our own FIN.
            IOT_KIND_RECV if c.result == 0 && open.contains(&c.tag) => {
                ok(
                    "shutdown",
                    iot_socket_shutdown(worker, c.tag, IOT_SHUTDOWN_WRITE, c.tag),
                );
            }
            IOT_KIND_RECV | IOT_KIND_SHUTDOWN
                if c.flags & IOT_COMPLETION_MORE == 0 && open.remove(&c.tag) =>
            {
                ok("close", iot_socket_close(worker, c.tag));
            }
            _ => {}
        }
    }
    for socket in open {
        ok("close", iot_socket_close(worker, socket));
    }
    // Reap the cancelled receives so the counters show what really stayed behind.
    let deadline = std::time::Instant::now() + DEADLINE;
    while host.stats().ops_in_flight > 0 && std::time::Instant::now() < deadline {
        if host.poll() == 0 {
            ok("wait", iot_worker_wait(worker, 100));
        }
    }
    host.stats()
}

/// Sends the received buffer straight back; it returns to the pool after the send.
fn echo_back(worker: u64, c: &iot_completion) {
    let buffer = u32::from(c.buffer_id);
    if iot_send(worker, c.tag, buffer, c.offset, c.result as u32, c.tag, 0) < 0 {
        ok("release", iot_buffer_release(worker, buffer));
    }
}
