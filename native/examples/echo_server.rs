//! TCP echo server driven only through the C ABI, the way the Dart layer drives a
//! worker: drain → dispatch → flush → wait. One worker per thread, `SO_REUSEPORT`.
//!
//! ```text
//! cargo run --release --example echo_server -- [--host 127.0.0.1] [--port 7777] [--workers 1]
//! ```
//! Prints `listening on HOST:PORT` once it accepts; exits cleanly on SIGINT/SIGTERM.

mod common;

use std::ffi::CString;
use std::net::SocketAddr;

use common::{check, echo_stream, local_port, new_worker, serve};
use iouring_transport::ffi::*;
use iouring_transport::*;

const ACCEPT_TAG: u64 = 0;

/// Creates a worker listening on `host:port` with a multishot accept queued.
fn start_worker(host: &CString, port: u16) -> Result<(u64, u16), String> {
    let worker = new_worker()?;
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
    common::accept_all(worker, listener, ACCEPT_TAG)?;
    Ok((worker, local_port(worker, listener)?))
}

fn run() -> Result<(), String> {
    let flags = common::parse_flags(&[
        ("--host", "127.0.0.1"),
        ("--port", "7777"),
        ("--workers", "1"),
    ])?;
    let (host, addr) = common::host_and_port(&flags[0], &flags[1])?;
    let workers: usize = match flags[2].parse() {
        Ok(n) if n > 0 => n,
        _ => return Err("--workers must be at least 1".into()),
    };
    common::stop_on_signals();
    let (first, port) = start_worker(&host, addr.port())?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(start_worker(&host, port)?.0);
    }
    println!("listening on {}", SocketAddr::new(addr.ip(), port));
    let mut result = Ok(());
    let mut threads = Vec::new();
    for &worker in &all {
        let serving = std::thread::Builder::new().spawn(move || {
            serve(worker, |c| {
                echo_stream(worker, c);
                Ok(())
            })
        });
        match serving {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                // No thread for this worker (a thread or address-space limit): stop.
                common::stop();
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
            common::stop();
            result = result.and(outcome);
        }
    }
    for worker in all {
        check("free worker", iot_worker_free(worker))?;
    }
    result
}

fn main() {
    common::main_with("echo_server", run);
}
