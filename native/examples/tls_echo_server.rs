//! TLS echo server driven only through the C ABI, the way the Dart layer drives a
//! worker: drain → dispatch → flush → wait. One worker per thread, `SO_REUSEPORT`, one
//! TLS configuration shared by all of them. Each accepted connection gets a server
//! handshake (`iot_tls_accept`); once it is established, plaintext is echoed with the
//! same receive/send/shutdown calls as the plain echo server (the worker seals and
//! opens the records), and the client's end is answered with close_notify.
//!
//! ```text
//! cargo run --release --example tls_echo_server -- [--host 127.0.0.1] [--port 7777]
//!     [--workers 1] [--cert CHAIN.pem --key KEY.pem] [--write-ca CA.pem]
//! ```
//! Without `--cert`/`--key` it makes a CA and a certificate for localhost, 127.0.0.1
//! and ::1 at start, and writes the CA (PEM) to the `--write-ca` path, for clients to
//! trust. Prints `listening on HOST:PORT` once it accepts (after the CA is written);
//! exits cleanly on SIGINT/SIGTERM.

mod common;

use std::ffi::{c_char, CStr};

use common::{check, echo_stream};
use iouring_transport::ffi::*;
use iouring_transport::*;

/// How long a handshake may wait for the client at each step.
const HANDSHAKE_TIMEOUT_MS: u32 = 10_000;

/// The certificate chain and key (PEM): from the files given, or made now, in which
/// case the CA that issued them is written to `write_ca` (when given).
fn identity(cert: &str, key: &str, write_ca: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("{path}: {e}"));
    match (cert.is_empty(), key.is_empty()) {
        (false, false) => Ok((read(cert)?, read(key)?)),
        (true, true) => {
            let (chain, key, ca) = generated().map_err(|e| format!("certificate: {e}"))?;
            if !write_ca.is_empty() {
                std::fs::write(write_ca, ca).map_err(|e| format!("{write_ca}: {e}"))?;
            }
            Ok((chain.into_bytes(), key.into_bytes()))
        }
        _ => Err("--cert and --key go together".into()),
    }
}

/// A fresh CA and a certificate it issued for localhost, 127.0.0.1 and ::1: (chain,
/// key, CA), all PEM.
fn generated() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "tls_echo_server example CA");
    let ca = params.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let leaf = CertificateParams::new(names)?.signed_by(&key, &ca, &ca_key)?;
    Ok((leaf.pem() + &ca.pem(), key.serialize_pem(), ca.pem()))
}

/// A server TLS configuration handle for `chain` and `key`.
fn tls_config(chain: &[u8], key: &[u8]) -> Result<u64, String> {
    let mut config = 0;
    let mut reason = [0 as c_char; 512];
    let code = iot_tls_config_new(
        IOT_TLS_SERVER,
        chain.as_ptr(),
        chain.len() as u32,
        key.as_ptr(),
        key.len() as u32,
        std::ptr::null(),
        0,
        std::ptr::null(),
        0,
        &mut config,
        reason.as_mut_ptr(),
        reason.len(),
    );
    if code < 0 {
        // SAFETY: iot_tls_config_new NUL-terminates the reason within the buffer.
        let reason = unsafe { CStr::from_ptr(reason.as_ptr()) }.to_string_lossy();
        return Err(format!(
            "{} ({reason})",
            check("TLS config", code).unwrap_err()
        ));
    }
    Ok(config)
}

/// One completion: accepted sockets start a handshake (tagged with the socket, like
/// everything of a connection); an established one starts receiving; the rest is the
/// plain stream echo.
fn dispatch(worker: u64, config: u64, c: &iot_completion) {
    match c.kind {
        IOT_KIND_ACCEPT if c.result == 0 => {
            let code = iot_tls_accept(worker, c.handle, config, c.handle, HANDSHAKE_TIMEOUT_MS);
            if code < 0 {
                let _ = iot_socket_close(worker, c.handle);
            }
        }
        IOT_KIND_TLS_HANDSHAKE => {
            // A failed handshake (a client that left, or does not speak TLS) only
            // ends that connection.
            if c.result < 0 || iot_recv(worker, c.tag, c.tag, IOT_OP_MULTISHOT, 0) < 0 {
                let _ = iot_socket_close(worker, c.tag);
            }
        }
        _ => echo_stream(worker, c),
    }
}

fn run() -> Result<(), String> {
    let flags = common::parse_flags(&[
        ("--host", "127.0.0.1"),
        ("--port", "7777"),
        ("--workers", "1"),
        ("--cert", ""),
        ("--key", ""),
        ("--write-ca", ""),
    ])?;
    let (host, addr) = common::host_and_port(&flags[0], &flags[1])?;
    let (chain, key) = identity(&flags[3], &flags[4], &flags[5])?;
    let config = tls_config(&chain, &key)?;
    common::stop_on_signals();
    let served = common::serve_tcp(&host, addr, &flags[2], move |w, c| dispatch(w, config, c));
    check("free TLS config", iot_tls_config_free(config))?;
    served
}

fn main() {
    common::main_with("tls_echo_server", run);
}
