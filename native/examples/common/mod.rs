//! What the native examples share: flag parsing, errors as text, stopping on
//! SIGINT/SIGTERM, the host loop (drain → dispatch → flush → wait) and the stream
//! echo that TCP and Unix servers both run. Each example uses a part of it.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use iouring_transport::ffi::*;
use iouring_transport::*;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// How long a worker sleeps in the kernel before re-checking for a stop signal.
const WAIT_MS: u32 = 200;

/// Makes SIGINT and SIGTERM end every `serve` loop, so workers are freed cleanly.
pub fn stop_on_signals() {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// Asks every `serve` loop to end (after an error in one of them).
pub fn stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// `--flag value` pairs; each flag must be in `defaults`, which gives its default.
pub fn parse_flags(defaults: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let mut values: Vec<String> = defaults.iter().map(|(_, v)| v.to_string()).collect();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let slot = defaults
            .iter()
            .position(|(name, _)| *name == flag)
            .ok_or_else(|| format!("unknown flag {flag}"))?;
        values[slot] = value;
    }
    Ok(values)
}

/// `--host` and `--port` values: the host as text for the ABI, and the address.
pub fn host_and_port(host: &str, port: &str) -> Result<(CString, SocketAddr), String> {
    let ip: IpAddr = host.parse().map_err(|_| format!("bad host {host}"))?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port}"))?;
    let text = CString::new(host).map_err(|_| format!("bad host {host}"))?;
    Ok((text, SocketAddr::new(ip, port)))
}

/// A result code as `Ok`, or an error naming `what` with the library's message.
pub fn check(what: &str, code: i32) -> Result<i32, String> {
    if code >= 0 {
        return Ok(code);
    }
    let mut buf = [0 as c_char; 256];
    iot_error_message(code, buf.as_mut_ptr(), buf.len());
    // SAFETY: iot_error_message NUL-terminates within the buffer.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    Err(format!("{what}: {text} ({code})"))
}

pub fn new_worker() -> Result<u64, String> {
    let mut worker = 0;
    check(
        "create worker",
        iot_worker_new(std::ptr::null(), &mut worker),
    )?;
    Ok(worker)
}

/// Queues a multishot accept on `listener` (completions tagged `tag`) and submits it.
pub fn accept_all(worker: u64, listener: u64, tag: u64) -> Result<(), String> {
    check(
        "accept",
        iot_accept(worker, listener, tag, IOT_OP_MULTISHOT, 0),
    )?;
    check("flush", iot_worker_flush(worker)).map(drop)
}

/// The port `socket` is bound to.
pub fn local_port(worker: u64, socket: u64) -> Result<u16, String> {
    let mut port = 0;
    let none = std::ptr::null_mut();
    check(
        "local address",
        iot_socket_address(worker, socket, IOT_ADDRESS_LOCAL, none, 0, &mut port),
    )?;
    Ok(port)
}

/// Runs the host loop on `worker` until a stop signal: drain a batch, hand each
/// completion to `dispatch`, flush what it queued, and wait only when idle.
pub fn serve(
    worker: u64,
    mut dispatch: impl FnMut(&iot_completion) -> Result<(), String>,
) -> Result<(), String> {
    let mut completions = [iot_completion::default(); 256];
    while !STOP.load(Ordering::SeqCst) {
        let n = check(
            "drain",
            iot_worker_drain(worker, completions.as_mut_ptr(), completions.len() as u32),
        )?;
        for c in &completions[..n as usize] {
            dispatch(c)?;
        }
        check("flush", iot_worker_flush(worker))?;
        if n == 0 {
            check("wait", iot_worker_wait(worker, WAIT_MS))?;
        }
    }
    Ok(())
}

/// Stream echo for one completion (TCP or Unix). Sockets are tagged with their own
/// handle, so a completion names its connection; a finished one is closed.
pub fn echo_stream(worker: u64, c: &iot_completion) {
    let done = match c.kind {
        IOT_KIND_ACCEPT if c.result == 0 => {
            (iot_recv(worker, c.handle, c.handle, IOT_OP_MULTISHOT, 0) < 0).then_some(c.handle)
        }
        IOT_KIND_ACCEPT => {
            // EMFILE and friends: report and go on serving the connections we have.
            eprintln!("{}", check("accept", c.result).unwrap_err());
            None
        }
        IOT_KIND_RECV if c.flags & IOT_COMPLETION_BUFFER != 0 && c.result > 0 => {
            echo_back(worker, c)
        }
        // End of stream: finish the queued echoes, send our FIN, then close.
        IOT_KIND_RECV if c.result == 0 => {
            (iot_socket_shutdown(worker, c.tag, IOT_SHUTDOWN_WRITE, c.tag) < 0).then_some(c.tag)
        }
        IOT_KIND_RECV if c.flags & IOT_COMPLETION_MORE == 0 => Some(c.tag),
        IOT_KIND_SEND if c.result < 0 => Some(c.tag),
        IOT_KIND_SHUTDOWN => Some(c.tag),
        _ => None,
    };
    if let Some(socket) = done {
        // A socket already closed (stale handle) is fine.
        let _ = iot_socket_close(worker, socket);
    }
}

/// Sends the received piece straight back (zero copy); it returns to the pool after
/// the send.
fn echo_back(worker: u64, c: &iot_completion) -> Option<u64> {
    let buffer = u32::from(c.buffer_id);
    if iot_send(worker, c.tag, buffer, c.offset, c.result as u32, c.tag, 0) < 0 {
        let _ = iot_buffer_release(worker, buffer, c.offset);
        return Some(c.tag);
    }
    None
}

/// Runs an example's `run`, printing its error and exiting 1 on failure.
pub fn main_with(name: &str, run: impl FnOnce() -> Result<(), String>) {
    if let Err(message) = run() {
        eprintln!("{name}: {message}");
        std::process::exit(1);
    }
}

/// Tag of the multishot accept each TCP worker of `tcp_workers` queues.
pub const ACCEPT_TAG: u64 = 0;

/// `count` workers (the `--workers` flag) listening on `host` and `addr`'s port with
/// `SO_REUSEPORT`, each with a multishot accept queued; prints `listening on
/// HOST:PORT` (the port the first one got, when `addr` asks for 0).
pub fn tcp_workers(host: &CString, addr: SocketAddr, count: &str) -> Result<Vec<u64>, String> {
    let count: usize = match count.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err("--workers must be at least 1".into()),
    };
    let mut port = addr.port();
    let mut workers = Vec::with_capacity(count);
    for _ in 0..count {
        let worker = new_worker()?;
        workers.push(worker);
        let mut listener = 0;
        let flags = IOT_LISTEN_REUSEPORT;
        let code = iot_tcp_listen(worker, host.as_ptr(), port, 0, flags, &mut listener);
        let started = check("listen", code)
            .and_then(|_| accept_all(worker, listener, ACCEPT_TAG))
            .and_then(|()| local_port(worker, listener));
        match started {
            Ok(bound) => port = bound,
            Err(err) => {
                for worker in workers {
                    let _ = iot_worker_free(worker);
                }
                return Err(err);
            }
        }
    }
    println!("listening on {}", SocketAddr::new(addr.ip(), port));
    Ok(workers)
}

/// Serves every worker of `workers` on a thread of its own (`serve` with
/// `dispatch`) until a stop signal or a failure (which stops them all), then frees
/// them.
pub fn serve_all(
    workers: Vec<u64>,
    dispatch: impl Fn(u64, &iot_completion) + Copy + Send + 'static,
) -> Result<(), String> {
    let mut result = Ok(());
    let mut threads = Vec::new();
    for &worker in &workers {
        let serving = std::thread::Builder::new().spawn(move || {
            serve(worker, |c| {
                dispatch(worker, c);
                Ok(())
            })
        });
        match serving {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                // No thread for this worker (a thread or address-space limit): stop.
                stop();
                result = Err(format!("cannot start a worker thread: {err}"));
                break;
            }
        }
    }
    for thread in threads {
        let outcome = thread
            .join()
            .map_err(|_| "worker thread panicked".to_string())
            .and_then(|r| r);
        if outcome.is_err() {
            stop();
            result = result.and(outcome);
        }
    }
    for worker in workers {
        check("free worker", iot_worker_free(worker))?;
    }
    result
}
