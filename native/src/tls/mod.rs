//! TLS on the worker, with rustls: configurations shared by every worker
//! (`config`), one session per TLS socket (`session`), and the reason a session
//! failed as an ABI code (`failure`). The worker runs the handshake as an op of its own
//! (`op/handshake.rs`) and, once established, decrypts what a socket receives and
//! encrypts what it sends (`worker/tls.rs`), so the host keeps using `iot_recv`,
//! `iot_send` and `iot_shutdown` on the socket and sees plaintext.

pub(crate) mod config;
mod failure;
mod records;
pub(crate) mod session;

pub(crate) use config::TlsConfig;
pub(crate) use session::TlsSession;
