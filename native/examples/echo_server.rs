//! TCP echo server driven only through the C ABI, the way the Dart layer drives a
//! worker: drain → dispatch → flush → wait. One worker per thread, `SO_REUSEPORT`.
//!
//! ```text
//! cargo run --release --example echo_server -- [--host 127.0.0.1] [--port 7777] [--workers 1]
//! ```
//! Prints `listening on HOST:PORT` once it accepts; exits cleanly on SIGINT/SIGTERM.

use std::ffi::CString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use iouring_transport::ffi::*;
use iouring_transport::*;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

const ACCEPT_TAG: u64 = 0;
/// How long a worker sleeps in the kernel before re-checking for a stop signal.
const WAIT_MS: u32 = 200;

struct Args {
    host: String,
    port: u16,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 7777,
        workers: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--host" => args.host = value,
            "--port" => args.port = value.parse().map_err(|_| format!("bad port {value}"))?,
            "--workers" => {
                args.workers = value
                    .parse()
                    .map_err(|_| format!("bad worker count {value}"))?
            }
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    Ok(args)
}

fn check(what: &str, code: i32) -> Result<i32, String> {
    if code >= 0 {
        return Ok(code);
    }
    let mut buf = [0 as std::ffi::c_char; 256];
    iot_error_message(code, buf.as_mut_ptr(), buf.len());
    // SAFETY: iot_error_message NUL-terminates within the buffer.
    let text = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Err(format!("{what}: {text} ({code})"))
}

/// Creates a worker listening on `host:port` with a multishot accept queued.
fn start_worker(host: &CString, port: u16) -> Result<(u64, u16), String> {
    let mut worker = 0;
    check(
        "create worker",
        iot_worker_new(std::ptr::null(), &mut worker),
    )?;
    let mut listener = 0;
    check(
        "listen",
        iot_tcp_listen(
            worker,
            host.as_ptr(),
            port,
            0,
            IOT_LISTEN_REUSEPORT,
            &mut listener,
        ),
    )?;
    check(
        "accept",
        iot_tcp_accept(worker, listener, ACCEPT_TAG, IOT_OP_MULTISHOT, 0),
    )?;
    check("flush", iot_worker_flush(worker))?;
    let mut port_out = 0;
    check(
        "local address",
        iot_socket_address(
            worker,
            listener,
            IOT_ADDRESS_LOCAL,
            std::ptr::null_mut(),
            0,
            &mut port_out,
        ),
    )?;
    Ok((worker, port_out))
}

/// Closes `socket`; a socket already closed (stale handle) is fine.
fn close(worker: u64, socket: u64) {
    let _ = iot_socket_close(worker, socket);
}

fn serve(worker: u64) -> Result<(), String> {
    let mut completions = [iot_completion::default(); 256];
    while !STOP.load(Ordering::SeqCst) {
        let n = check(
            "drain",
            iot_worker_drain(worker, completions.as_mut_ptr(), completions.len() as u32),
        )?;
        for c in &completions[..n as usize] {
            if let Some(socket) = dispatch(worker, c) {
                close(worker, socket);
            }
        }
        check("flush", iot_worker_flush(worker))?;
        if n == 0 {
            check("wait", iot_worker_wait(worker, WAIT_MS))?;
        }
    }
    Ok(())
}

/// Handles one completion; returns the socket to close when its connection is done.
/// Sockets are tagged with their own handle, so a completion names its connection.
fn dispatch(worker: u64, c: &iot_completion) -> Option<u64> {
    match c.kind {
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
    }
}

/// Sends the received buffer straight back (zero copy); it returns to the pool after
/// the send.
fn echo_back(worker: u64, c: &iot_completion) -> Option<u64> {
    let buffer = u32::from(c.buffer_id);
    if iot_send(worker, c.tag, buffer, c.offset, c.result as u32, c.tag, 0) < 0 {
        let _ = iot_buffer_release(worker, buffer);
        return Some(c.tag);
    }
    None
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let host = CString::new(args.host.clone()).map_err(|_| "bad host".to_string())?;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let (first, port) = start_worker(&host, args.port)?;
    let mut workers = vec![first];
    for _ in 1..args.workers {
        workers.push(start_worker(&host, port)?.0);
    }
    let ip: std::net::IpAddr = args
        .host
        .parse()
        .map_err(|_| format!("bad host {}", args.host))?;
    println!("listening on {}", SocketAddr::new(ip, port));
    let threads: Vec<_> = workers
        .iter()
        .map(|&worker| std::thread::spawn(move || serve(worker)))
        .collect();
    let mut result = Ok(());
    for thread in threads {
        let outcome = thread
            .join()
            .map_err(|_| "worker thread panicked".to_string())
            .and_then(|r| r);
        if outcome.is_err() {
            STOP.store(true, Ordering::SeqCst);
            result = result.and(outcome);
        }
    }
    for worker in workers {
        check("free worker", iot_worker_free(worker))?;
    }
    result
}

fn main() {
    if let Err(message) = run() {
        eprintln!("echo_server: {message}");
        std::process::exit(1);
    }
}
