use std::ffi::c_char;

use super::{boundary, c_str, copy_bytes, in_slice, on_worker, out_ptr};
use crate::abi::iot_tls_info;
use crate::error::Result;
use crate::tls::config::{self, TlsConfigSpec};
use crate::tls::{TlsConfig, TlsSession};

/// Builds a TLS configuration and writes its handle to `out_config`; it can serve any
/// number of sockets on any worker until `iot_tls_config_free`. `flags` are `IOT_TLS_*`
/// (`IOT_TLS_SERVER` for a server's). PEM inputs, each `len` bytes (NULL when 0):
/// `certificate_pem` the chain, leaf first (a server's, or a client's own for client
/// authentication), with `private_key_pem` (PKCS#8, PKCS#1 or SEC1); `trusted_pem`
/// the certificates to verify the peer with (a client's roots; a server's for client
/// certificates). `alpn` lists application protocols in ALPN wire format (each name
/// after its length byte), most preferred first. On failure (`IOT_E_TLS_CONFIG`) the
/// reason is written to `error_text` (NUL-terminated, cut to `error_len`).
#[no_mangle]
#[allow(clippy::too_many_arguments)] // the parts of one configuration, as C passes them
pub extern "C" fn iot_tls_config_new(
    flags: u32,
    certificate_pem: *const u8,
    certificate_len: u32,
    private_key_pem: *const u8,
    private_key_len: u32,
    trusted_pem: *const u8,
    trusted_len: u32,
    alpn: *const u8,
    alpn_len: u32,
    out_config: *mut u64,
    error_text: *mut c_char,
    error_len: usize,
) -> i32 {
    boundary(|| {
        let out = out_ptr(out_config)?;
        let spec = TlsConfigSpec {
            flags,
            certificate_pem: in_slice(certificate_pem, certificate_len)?,
            private_key_pem: in_slice(private_key_pem, private_key_len)?,
            trusted_pem: in_slice(trusted_pem, trusted_len)?,
            alpn: in_slice(alpn, alpn_len)?,
        };
        match TlsConfig::build(&spec) {
            Ok(built) => {
                *out = config::register(built);
                Ok(0)
            }
            Err((code, reason)) => {
                copy_bytes(reason.as_bytes(), error_text, error_len);
                Err(code)
            }
        }
    })
}

/// Frees a configuration handle; sessions already made with it are unaffected.
#[no_mangle]
pub extern "C" fn iot_tls_config_free(config: u64) -> i32 {
    boundary(|| config::free(config).map(|()| 0))
}

/// Queues the server side of a TLS handshake on accepted stream `socket`, with server
/// configuration `config`. Completes as `IOT_KIND_TLS_HANDSHAKE`: 0 and the socket in
/// `handle` once established, from when `iot_recv`, `iot_send` and
/// `iot_socket_shutdown` on it carry plaintext; else an `IOT_E_TLS_*` code (the reason:
/// `iot_tls_error_text`) or an errno. `timeout_ms` bounds each wait for the peer.
#[no_mangle]
pub extern "C" fn iot_tls_accept(
    worker: u64,
    socket: u64,
    config: u64,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let config = config::get(config)?;
        w.start_handshake(socket, &config, None, tag, timeout_ms)
    })
}

/// Queues the client side of a TLS handshake on connected stream `socket`, with client
/// configuration `config`, for `server_name` (a DNS name or an IP address: sent as SNI
/// and checked against the server's certificate). Completes as `iot_tls_accept` does.
#[no_mangle]
pub extern "C" fn iot_tls_connect(
    worker: u64,
    socket: u64,
    config: u64,
    server_name: *const c_char,
    tag: u64,
    timeout_ms: u32,
) -> i32 {
    on_worker(worker, |w| {
        let name = c_str(server_name)?;
        let config = config::get(config)?;
        w.start_handshake(socket, &config, Some(name), tag, timeout_ms)
    })
}

/// The protocol version, cipher suite and flags of `socket`'s established session.
#[no_mangle]
pub extern "C" fn iot_tls_get_info(worker: u64, socket: u64, out_info: *mut iot_tls_info) -> i32 {
    on_worker(worker, |w| {
        let out = out_ptr(out_info)?;
        *out = session(w, socket)?.info()?;
        Ok(())
    })
}

/// Copies the application protocol both sides chose (ALPN; empty: none) into `buf`
/// (NUL-terminated, cut to `len`); returns its full length.
#[no_mangle]
pub extern "C" fn iot_tls_alpn(worker: u64, socket: u64, buf: *mut c_char, len: usize) -> i32 {
    session_bytes(worker, socket, buf, len, |s| s.alpn())
}

/// A server's session: copies the name the client asked for (SNI; empty: none) into
/// `buf` as `iot_tls_alpn` does.
#[no_mangle]
pub extern "C" fn iot_tls_server_name(
    worker: u64,
    socket: u64,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    session_bytes(worker, socket, buf, len, |s| s.server_name().as_bytes())
}

/// Copies the peer's certificate (DER; empty: it sent none) into `buf` (cut to `len`,
/// after which one NUL); returns its full length.
#[no_mangle]
pub extern "C" fn iot_tls_peer_certificate(
    worker: u64,
    socket: u64,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    session_bytes(worker, socket, buf, len, |s| {
        s.peer_certificate().unwrap_or_default()
    })
}

/// Why `socket`'s TLS session failed, in words (empty while it has not), copied into
/// `buf` as `iot_tls_alpn` does.
#[no_mangle]
pub extern "C" fn iot_tls_error_text(
    worker: u64,
    socket: u64,
    buf: *mut c_char,
    len: usize,
) -> i32 {
    session_bytes(worker, socket, buf, len, |s| s.error_text().as_bytes())
}

fn session(w: &mut crate::worker::Worker, socket: u64) -> Result<&mut TlsSession> {
    let socket = w.sockets.get_mut(socket)?;
    socket
        .tls
        .as_deref_mut()
        .ok_or(crate::error::IOT_E_TLS_STATE)
}

fn session_bytes(
    worker: u64,
    socket: u64,
    buf: *mut c_char,
    len: usize,
    field: impl FnOnce(&TlsSession) -> &[u8],
) -> i32 {
    boundary(|| {
        crate::registry::with(worker, |w| {
            let bytes = field(session(w, socket)?);
            Ok(copy_bytes(bytes, buf, len).min(i32::MAX as usize) as i32)
        })
    })
}
