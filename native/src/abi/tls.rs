//! TLS: the configuration flags, the handshake's completion kind and what a host can
//! read of an established session.

/// A TLS handshake on a connected stream socket (`iot_tls_accept`,
/// `iot_tls_connect`) finished: `result` 0, or a negative code (`IOT_E_TLS_*`, or an
/// errno when the connection itself failed); `handle` is the socket.
pub const IOT_KIND_TLS_HANDSHAKE: u16 = 30;

/// The configuration is a server's (else a client's).
pub const IOT_TLS_SERVER: u32 = 1;
/// Server: ask clients for a certificate and verify one when given against the
/// trusted certificates (a client without one is still accepted).
pub const IOT_TLS_CLIENT_AUTH_OPTIONAL: u32 = 2;
/// Server: refuse clients without a certificate the trusted certificates vouch for.
pub const IOT_TLS_CLIENT_AUTH_REQUIRED: u32 = 4;
/// Only TLS 1.2 (default: 1.2 and 1.3).
pub const IOT_TLS_ONLY_TLS12: u32 = 8;
/// Only TLS 1.3.
pub const IOT_TLS_ONLY_TLS13: u32 = 16;
/// Client: trust the system's CA certificates (`/etc/ssl/certs`) besides the given
/// ones.
pub const IOT_TLS_SYSTEM_ROOTS: u32 = 32;

/// `iot_tls_info.flags`: the session was resumed (no full handshake).
pub const IOT_TLS_INFO_RESUMED: u32 = 1;
/// `iot_tls_info.flags`: the peer presented a certificate (`iot_tls_peer_certificate`).
pub const IOT_TLS_INFO_PEER_CERTIFICATE: u32 = 2;

/// An established session, as `iot_tls_get_info` reports it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_tls_info {
    /// 0x0303 for TLS 1.2, 0x0304 for TLS 1.3.
    pub protocol_version: u16,
    /// The IANA number of the cipher suite.
    pub cipher_suite: u16,
    /// `IOT_TLS_INFO_*` bits.
    pub flags: u32,
}
