//! TCP echo server driven only through the C ABI, the way the Dart layer drives a
//! worker: drain → dispatch → flush → wait. One worker per thread, `SO_REUSEPORT`.
//!
//! ```text
//! cargo run --release --example echo_server -- [--host 127.0.0.1] [--port 7777] [--workers 1]
//! ```
//! Prints `listening on HOST:PORT` once it accepts; exits cleanly on SIGINT/SIGTERM.

mod common;

use common::echo_stream;

fn run() -> Result<(), String> {
    let flags = common::parse_flags(&[
        ("--host", "127.0.0.1"),
        ("--port", "7777"),
        ("--workers", "1"),
    ])?;
    let (host, addr) = common::host_and_port(&flags[0], &flags[1])?;
    common::stop_on_signals();
    common::serve_tcp(&host, addr, &flags[2], echo_stream)
}

fn main() {
    common::main_with("echo_server", run);
}
