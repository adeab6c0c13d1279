//! Unix stream echo server driven only through the C ABI, the way the Dart layer
//! drives a worker: drain → dispatch → flush → wait.
//!
//! ```text
//! cargo run --release --example unix_echo -- [--path /tmp/iot-echo.sock]
//! ```
//! `--path @name` listens in the abstract namespace. A socket file left by a crashed
//! run is replaced; the server removes its file when it stops. Prints `listening on
//! PATH` once it accepts; exits cleanly on SIGINT/SIGTERM. Try:
//! `socat - UNIX-CONNECT:/tmp/iot-echo.sock`.

mod common;

use std::ffi::CString;

use common::{check, echo_stream, new_worker, serve};
use iouring_transport::ffi::*;
use iouring_transport::*;

const ACCEPT_TAG: u64 = 0;

fn run() -> Result<(), String> {
    let flags = common::parse_flags(&[("--path", "/tmp/iot-echo.sock")])?;
    let path = CString::new(flags[0].clone()).map_err(|_| "bad path".to_string())?;
    common::stop_on_signals();
    let worker = new_worker()?;
    let mut listener = 0;
    check(
        "listen",
        iot_unix_listen(
            worker,
            path.as_ptr(),
            0,
            IOT_UNIX_REPLACE_STALE,
            &mut listener,
        ),
    )?;
    common::accept_all(worker, listener, ACCEPT_TAG)?;
    println!("listening on {}", flags[0]);
    let served = serve(worker, |c| {
        echo_stream(worker, c);
        Ok(())
    });
    // Freeing the worker closes the listener, which removes its socket file.
    check("free worker", iot_worker_free(worker))?;
    served
}

fn main() {
    common::main_with("unix_echo", run);
}
