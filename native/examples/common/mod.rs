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

/// A worker of the default configuration that the calling thread alone makes, drives
/// and frees (`IOT_CONFIG_SINGLE_THREAD`).
pub fn new_worker() -> Result<u64, String> {
    let mut config = iot_config::default();
    check("config", iot_config_default(&mut config))?;
    config.flags |= IOT_CONFIG_SINGLE_THREAD;
    let mut worker = 0;
    check("create worker", iot_worker_new(&config, &mut worker))?;
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

/// Tag of the multishot accept each TCP worker of `serve_tcp` queues.
pub const ACCEPT_TAG: u64 = 0;

/// Serves `count` workers (the `--workers` flag) listening on `host` and `addr`'s port
/// with `SO_REUSEPORT`, each made, listening and served (`serve` with `dispatch`) on
/// a thread of its own, as a single-thread worker must be; prints `listening on
/// HOST:PORT` (the port the first one got, when `addr` asks for 0) once all listen.
/// Runs until a stop signal or a failure, which stops them all.
pub fn serve_tcp(
    host: &CString,
    addr: SocketAddr,
    count: &str,
    dispatch: impl Fn(u64, &iot_completion) + Copy + Send + 'static,
) -> Result<(), String> {
    let count: usize = match count.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err("--workers must be at least 1".into()),
    };
    let mut port = addr.port();
    let mut threads = Vec::with_capacity(count);
    let mut result = Ok(());
    for _ in 0..count {
        let (listening, bound) = std::sync::mpsc::channel();
        let host = host.clone();
        let thread = std::thread::Builder::new().spawn(move || {
            let worker = new_worker()?;
            let served = listen_and_accept(worker, &host, port)
                .and_then(|bound| {
                    let _ = listening.send(Ok(bound));
                    serve(worker, |c| {
                        dispatch(worker, c);
                        Ok(())
                    })
                })
                .inspect_err(|err| {
                    let _ = listening.send(Err(err.clone()));
                });
            check("free worker", iot_worker_free(worker))?;
            served
        });
        let Ok(thread) = thread else {
            result = Err("cannot start a worker thread".to_string());
            break;
        };
        threads.push(thread);
        match bound.recv() {
            Ok(Ok(bound)) => port = bound,
            Ok(Err(err)) => {
                result = Err(err);
                break;
            }
            Err(_) => break, // the thread failed before listening: joined below
        }
    }
    if result.is_ok() && threads.len() == count {
        println!("listening on {}", SocketAddr::new(addr.ip(), port));
    } else {
        stop();
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
    result
}

/// Listens on `host` and `port` with `SO_REUSEPORT` and queues a multishot accept;
/// returns the port bound.
fn listen_and_accept(worker: u64, host: &CString, port: u16) -> Result<u16, String> {
    let mut listener = 0;
    let flags = IOT_LISTEN_REUSEPORT;
    let code = iot_tcp_listen(worker, host.as_ptr(), port, 0, flags, &mut listener);
    check("listen", code)?;
    accept_all(worker, listener, ACCEPT_TAG)?;
    local_port(worker, listener)
}
