//! UDP echo server driven only through the C ABI, the way the Dart layer drives a
//! worker: drain → dispatch → flush → wait. Each datagram goes back to its sender
//! straight from the buffer it arrived in.
//!
//! ```text
//! cargo run --release --example udp_echo -- [--host 127.0.0.1] [--port 7777]
//! ```
//! Prints `listening on HOST:PORT` once it receives; exits cleanly on SIGINT/SIGTERM.
//! Try: `socat - UDP:127.0.0.1:7777`.

mod common;

use std::ffi::c_char;
use std::net::SocketAddr;

use common::{check, local_port, new_worker, serve};
use iouring_transport::ffi::*;
use iouring_transport::*;

const RECV_TAG: u64 = 1;
const SEND_TAG: u64 = 2;

/// Sends the datagram in `c`'s buffer back to whoever sent it.
fn echo(worker: u64, socket: u64, c: &iot_completion) -> Result<(), String> {
    let buffer = u32::from(c.buffer_id);
    let mut sender = [0 as c_char; 128];
    let mut port = 0;
    let sent = check(
        "sender",
        iot_datagram_sender(worker, buffer, sender.as_mut_ptr(), sender.len(), &mut port),
    )
    .and_then(|_| {
        let len = c.result as u32;
        let to = sender.as_ptr();
        check(
            "send",
            iot_udp_send_to(worker, socket, buffer, c.offset, len, to, port, SEND_TAG, 0),
        )
    });
    if let Err(message) = sent {
        // Still ours when the send was refused: give it back and go on.
        eprintln!("{message}");
        check("release", iot_buffer_release(worker, buffer, 0))?;
    }
    Ok(())
}

fn dispatch(worker: u64, socket: u64, c: &iot_completion) -> Result<(), String> {
    match c.kind {
        IOT_KIND_RECV_FROM if c.flags & IOT_COMPLETION_BUFFER != 0 => echo(worker, socket, c)?,
        IOT_KIND_RECV_FROM => eprintln!("{}", check("receive", c.result).unwrap_err()),
        IOT_KIND_SEND_TO if c.result < 0 => eprintln!("{}", check("send", c.result).unwrap_err()),
        _ => {}
    }
    if c.kind == IOT_KIND_RECV_FROM && c.flags & IOT_COMPLETION_MORE == 0 {
        // The multishot receive ended (an error was reported above): re-arm it.
        check(
            "receive",
            iot_datagram_recv(worker, socket, RECV_TAG, IOT_OP_MULTISHOT, 0),
        )?;
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let flags = common::parse_flags(&[("--host", "127.0.0.1"), ("--port", "7777")])?;
    let (host, addr) = common::host_and_port(&flags[0], &flags[1])?;
    common::stop_on_signals();
    let worker = new_worker()?;
    let mut socket = 0;
    check(
        "bind",
        iot_udp_bind(worker, host.as_ptr(), addr.port(), 0, &mut socket),
    )?;
    check(
        "receive",
        iot_datagram_recv(worker, socket, RECV_TAG, IOT_OP_MULTISHOT, 0),
    )?;
    let port = local_port(worker, socket)?;
    println!("listening on {}", SocketAddr::new(addr.ip(), port));
    let served = serve(worker, |c| dispatch(worker, socket, c));
    check("free worker", iot_worker_free(worker))?;
    served
}

fn main() {
    common::main_with("udp_echo", run);
}
