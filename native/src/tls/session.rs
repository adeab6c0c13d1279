//! One socket's TLS session: ciphertext in from received buffers, plaintext out into
//! the host's buffers; plaintext in from the host's send buffers, ciphertext out into a
//! record buffer that a send op owns until the kernel took it.

use std::io::{Read, Write};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, HandshakeKind, ServerConnection};

use super::records::RecordBoundary;
use super::{failure, TlsConfig};
use crate::abi::*;
use crate::error::{Result, IOT_E_TLS_CONFIG, IOT_E_TLS_PROTOCOL, IOT_E_TLS_STATE};

pub(crate) struct TlsSession {
    connection: Connection,
    /// Why the session failed, in words (`iot_tls_error_text`).
    error: Option<String>,
    /// The peer ended its side: close_notify, or the connection closed.
    peer_closed: bool,
    /// Where the received ciphertext is between records.
    boundary: RecordBoundary,
    /// Plaintext received and not read yet (as rustls last counted it, less what
    /// was read since).
    plaintext: usize,
    /// Plaintext moved out of rustls to let it take more ciphertext, read before
    /// what rustls holds (see `receive`); `spilled_read` of it were read already.
    spilled: Vec<u8>,
    spilled_read: usize,
}

impl TlsSession {
    /// A session for `config`: a server's, or a client's talking to `server_name`.
    pub(crate) fn new(config: &TlsConfig, server_name: Option<&str>) -> Result<TlsSession> {
        let connection: Connection = match (config, server_name) {
            (TlsConfig::Server(config), None) => ServerConnection::new(config.clone())
                .map_err(|_| IOT_E_TLS_CONFIG)?
                .into(),
            (TlsConfig::Client(config), Some(name)) => {
                let name = ServerName::try_from(name.to_owned()).map_err(|_| -libc::EINVAL)?;
                ClientConnection::new(config.clone(), name)
                    .map_err(|_| IOT_E_TLS_CONFIG)?
                    .into()
            }
            // A server's configuration for a client, or a client without a name.
            _ => return Err(-libc::EINVAL),
        };
        Ok(TlsSession {
            connection,
            error: None,
            peer_closed: false,
            boundary: RecordBoundary::default(),
            plaintext: 0,
            spilled: Vec::new(),
            spilled_read: 0,
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.connection.is_handshaking()
    }

    /// Established, and not failed: records may be sent and received.
    pub(crate) fn check_established(&self) -> Result<()> {
        match self.is_handshaking() || self.error.is_some() {
            true => Err(IOT_E_TLS_STATE),
            false => Ok(()),
        }
    }

    /// Takes in `ciphertext` the socket received (all of it), processing every record
    /// it completes. On a failure the session keeps the reason and an alert to send.
    pub(crate) fn receive(&mut self, mut ciphertext: &[u8]) -> Result<()> {
        self.boundary.advance(ciphertext);
        while !ciphertext.is_empty() {
            match self.connection.read_tls(&mut ciphertext) {
                // After close_notify rustls takes nothing more: the rest is dropped.
                Ok(0) => break,
                Ok(_) => self.process()?,
                // rustls refuses ciphertext while it holds over 16 KiB of plaintext,
                // which one receive can complete (the end of a full-size record, then
                // small ones): move its plaintext out and go on.
                Err(_) if self.plaintext > 0 => self.spill_plaintext(),
                Err(e) => return Err(self.fail(IOT_E_TLS_PROTOCOL, e.to_string())),
            }
        }
        Ok(())
    }

    fn spill_plaintext(&mut self) {
        let _ = self.connection.reader().read_to_end(&mut self.spilled);
        self.plaintext = 0;
    }

    /// The peer closed the connection (a receive returned 0): a clean end between
    /// records (with or without close_notify), an error inside one.
    pub(crate) fn receive_end(&mut self) -> Result<()> {
        let mut nothing: &[u8] = &[];
        let _ = self.connection.read_tls(&mut nothing);
        self.peer_closed = true;
        self.process()?;
        if !self.boundary.between_records() {
            let reason = "the connection ended inside a TLS record (data was cut off)";
            return Err(self.fail(IOT_E_TLS_PROTOCOL, reason.into()));
        }
        Ok(())
    }

    fn process(&mut self) -> Result<()> {
        match self.connection.process_new_packets() {
            Ok(state) => {
                self.peer_closed |= state.peer_has_closed();
                self.plaintext = state.plaintext_bytes_to_read();
                Ok(())
            }
            Err(e) => Err(self.fail(failure::code(&e), e.to_string())),
        }
    }

    fn fail(&mut self, code: i32, reason: String) -> i32 {
        self.error.get_or_insert(reason);
        code
    }

    /// Notes why the session ended when it was not a TLS error (the connection failed).
    pub(crate) fn note_failure(&mut self, reason: &str) {
        self.error.get_or_insert_with(|| reason.to_owned());
    }

    /// Plaintext received and not read yet.
    pub(crate) fn has_plaintext(&self) -> bool {
        self.plaintext > 0 || self.spilled_read < self.spilled.len()
    }

    /// The stream ended here: the peer closed, and every byte before that was read.
    pub(crate) fn at_end(&self) -> bool {
        self.peer_closed && !self.has_plaintext()
    }

    /// Reads received plaintext into `buffer`; returns how many bytes.
    pub(crate) fn read_plaintext(&mut self, buffer: &mut [u8]) -> usize {
        if self.spilled_read < self.spilled.len() {
            let spilled = &self.spilled[self.spilled_read..];
            let n = spilled.len().min(buffer.len());
            buffer[..n].copy_from_slice(&spilled[..n]);
            self.spilled_read += n;
            if self.spilled_read == self.spilled.len() {
                self.spilled = Vec::new();
                self.spilled_read = 0;
            }
            return n;
        }
        match self.connection.reader().read(buffer) {
            Ok(n) => {
                self.plaintext = self.plaintext.saturating_sub(n);
                n
            }
            // WouldBlock: nothing buffered; UnexpectedEof: closed without close_notify
            // (between records), which ends the stream like a clean close, as Python's
            // `suppress_ragged_eofs` and most HTTP clients take it.
            Err(_) => {
                self.plaintext = 0;
                0
            }
        }
    }

    /// Appends every record waiting to be sent to `out`.
    pub(crate) fn take_records(&mut self, out: &mut Vec<u8>) {
        while self.connection.wants_write() {
            if self.connection.write_tls(out).is_err() {
                return; // writing to a Vec only fails when out of memory
            }
        }
    }

    /// Encrypts `plaintext` into records appended to `out` (after any record already
    /// waiting, so the peer sees them in order).
    pub(crate) fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.check_established()?;
        let mut rest = plaintext;
        while !rest.is_empty() {
            // rustls takes at most its buffer limit at a time; drain and go on.
            let n = self
                .connection
                .writer()
                .write(rest)
                .map_err(|_| IOT_E_TLS_STATE)?;
            self.take_records(out);
            rest = &rest[n..];
        }
        self.take_records(out);
        Ok(())
    }

    /// A close_notify alert (and any record before it) appended to `out`.
    pub(crate) fn close_notify(&mut self, out: &mut Vec<u8>) {
        self.connection.send_close_notify();
        self.take_records(out);
    }

    pub(crate) fn info(&self) -> Result<iot_tls_info> {
        self.check_established()?;
        let mut flags = 0;
        if self.connection.handshake_kind() == Some(HandshakeKind::Resumed) {
            flags |= IOT_TLS_INFO_RESUMED;
        }
        if self.peer_certificate().is_some() {
            flags |= IOT_TLS_INFO_PEER_CERTIFICATE;
        }
        Ok(iot_tls_info {
            protocol_version: self.connection.protocol_version().map_or(0, u16::from),
            cipher_suite: self
                .connection
                .negotiated_cipher_suite()
                .map_or(0, |suite| u16::from(suite.suite())),
            flags,
        })
    }

    /// The application protocol both sides chose (ALPN), if any.
    pub(crate) fn alpn(&self) -> &[u8] {
        self.connection.alpn_protocol().unwrap_or_default()
    }

    /// The name a client asked for (SNI): the server's view; a client's own target.
    pub(crate) fn server_name(&self) -> &str {
        match &self.connection {
            Connection::Server(server) => server.server_name().unwrap_or_default(),
            Connection::Client(_) => "",
        }
    }

    /// The peer's own certificate (DER), if it sent one.
    pub(crate) fn peer_certificate(&self) -> Option<&[u8]> {
        let chain = self.connection.peer_certificates()?;
        chain.first().map(|der| der.as_ref())
    }

    pub(crate) fn error_text(&self) -> &str {
        self.error.as_deref().unwrap_or_default()
    }
}
