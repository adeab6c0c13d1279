//! TLS sockets on the worker: the handshake op, and the records under a session's
//! receives and sends. A receive takes the ciphertext of its kernel attempt into the
//! session and hands the host plaintext instead, in the same buffer when it fits and in
//! spare buffers when a burst of records yields more; a send seals its buffer's bytes
//! into records when it starts (in order, behind the sends before it); a shutdown of
//! the sending side sends close_notify first.

use super::Worker;
use crate::abi::*;
use crate::error::{Result, IOT_E_TLS_STATE};
use crate::op::{Handshake, Op, Work};
use crate::pieces::BufferRef;
use crate::recv_credit::RecvCredit;
use crate::sockets::SocketKind;
use crate::tls::{TlsConfig, TlsSession};

/// Where a handshake is after a CQE.
enum Step {
    /// Waiting for the kernel again (or for a buffer).
    Waiting,
    /// Ended with this result.
    Done(i32),
}

impl Worker {
    /// Starts a TLS handshake on connected stream `socket`: a server's when
    /// `server_name` is `None`, else a client's asking for that name.
    pub(crate) fn start_handshake(
        &mut self,
        socket: u64,
        config: &TlsConfig,
        server_name: Option<&str>,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        if self
            .sockets
            .get_kind(socket, SocketKind::Stream)?
            .tls
            .is_some()
        {
            return Err(IOT_E_TLS_STATE);
        }
        let session = TlsSession::new(config, server_name)?;
        self.sockets.get_mut(socket)?.tls = Some(Box::new(session));
        let work = Work::Handshake(Box::new(Handshake::new()));
        let op = Op::new(tag, IOT_KIND_TLS_HANDSHAKE, socket, work, timeout_ms);
        let key = self.driver.insert(op);
        if let Err(code) = self.next_flight(key).and_then(|_| self.submit_attempt(key)) {
            self.driver.remove(key);
            self.sockets.get_mut(socket)?.tls = None;
            return Err(code);
        }
        Ok(())
    }

    /// Puts the records the session has to send into the handshake's flight; false
    /// when the handshake is over (nothing to send, nothing to wait for).
    fn next_flight(&mut self, key: usize) -> Result<bool> {
        let op = &mut self.driver[key];
        let Work::Handshake(handshake) = &mut op.work else {
            return Err(IOT_E_TLS_STATE);
        };
        let socket = self.sockets.get_mut(op.socket)?;
        let session = socket.tls.as_deref_mut().ok_or(IOT_E_TLS_STATE)?;
        session.take_records(handshake.next_flight());
        Ok(handshake.sending() || session.is_handshaking())
    }

    /// A handshake attempt ended: send the next flight, receive the next, or finish.
    pub(super) fn finish_handshake(
        &mut self,
        key: usize,
        res: i32,
        retry: bool,
    ) -> Option<iot_completion> {
        let Work::Handshake(handshake) = &mut self.driver[key].work else {
            return None;
        };
        let step = match handshake.sending() {
            true => self.handshake_sent(key, res, retry),
            false => self.handshake_received(key, res, retry),
        };
        let Step::Done(result) = step else {
            return None;
        };
        let socket = self.driver[key].socket;
        let mut completion = self.driver[key].completion(result);
        if result == 0 {
            completion.handle = socket;
        } else if let Some(session) = self.session_mut(socket) {
            session.note_failure(&crate::error::message(result));
        }
        self.end_op(key, completion)
    }

    fn handshake_sent(&mut self, key: usize, res: i32, retry: bool) -> Step {
        let Work::Handshake(handshake) = &mut self.driver[key].work else {
            return Step::Done(IOT_E_TLS_STATE);
        };
        let more = handshake.advance(res);
        let failure = handshake.failure;
        if more && retry && self.submit_attempt(key).is_ok() {
            return Step::Waiting;
        }
        match (failure, res) {
            (Some(code), _) => Step::Done(code),
            (None, res) if res < 0 => Step::Done(res),
            _ if !retry => Step::Done(-libc::ECANCELED),
            _ => self.handshake_goes_on(key),
        }
    }

    fn handshake_received(&mut self, key: usize, res: i32, retry: bool) -> Step {
        if res == -libc::ENOBUFS && retry {
            self.starve(key);
            return Step::Waiting;
        }
        let buffer = self.take_piece(key, false);
        let socket = self.driver[key].socket;
        let taken = match (buffer, res) {
            (Some(piece), n) if n > 0 && retry => self.take_in(socket, piece, n),
            (_, 0) if retry => {
                if let Some(session) = self.session_mut(socket) {
                    session.note_failure("the peer closed the connection during the handshake");
                }
                Err(-libc::ECONNRESET)
            }
            (_, res) if res < 0 && res != -libc::ENOBUFS => Err(res),
            _ => Err(-libc::ECANCELED),
        };
        if let Some(piece) = buffer {
            let _ = self.release_buffer(piece.id, piece.offset);
        }
        let Err(code) = taken else {
            return self.handshake_goes_on(key);
        };
        // A TLS failure leaves an alert for the peer: send it, then end.
        let Work::Handshake(handshake) = &mut self.driver[key].work else {
            return Step::Done(code);
        };
        handshake.failure = Some(code);
        if crate::error::is_tls(code)
            && self.next_flight(key).is_ok()
            && matches!(&self.driver[key].work, Work::Handshake(h) if h.sending())
            && self.submit_attempt(key).is_ok()
        {
            return Step::Waiting;
        }
        Step::Done(code)
    }

    fn handshake_goes_on(&mut self, key: usize) -> Step {
        match self.next_flight(key) {
            Ok(false) => Step::Done(0),
            Ok(true) => match self.submit_attempt(key) {
                Ok(()) => Step::Waiting,
                Err(code) => Step::Done(code),
            },
            Err(code) => Step::Done(code),
        }
    }

    fn session_mut(&mut self, socket: u64) -> Option<&mut TlsSession> {
        self.sockets.get_mut(socket).ok()?.tls.as_deref_mut()
    }

    /// `len` received bytes of the piece at `at` into `socket`'s session.
    fn take_in(&mut self, socket: u64, at: BufferRef, len: i32) -> Result<()> {
        let bytes = self.buffers.host_bytes(at.id, at.offset, len as u32)?;
        let session = self.sockets.get_mut(socket)?.tls.as_deref_mut();
        session.ok_or(IOT_E_TLS_STATE)?.receive(bytes)
    }

    /// Whether op `key` receives on a TLS socket.
    pub(super) fn receives_tls(&self, key: usize) -> bool {
        let op = &self.driver[key];
        matches!(op.work, Work::Recv(_))
            && self
                .sockets
                .get(op.socket)
                .is_ok_and(|socket| socket.tls.is_some())
    }

    /// A receive on a TLS socket ended an attempt: its ciphertext goes into the
    /// session, and the host gets the plaintext (in `ready`, in order).
    pub(super) fn finish_tls_receive(
        &mut self,
        key: usize,
        res: i32,
        retry: bool,
    ) -> Option<iot_completion> {
        if res == -libc::ENOBUFS && retry {
            self.starve(key);
            return None;
        }
        let socket = self.driver[key].socket;
        let buffer = self.take_piece(key, false);
        // Bytes a cancelled receive got are kept in the session for the next one.
        let taken = match (buffer, res) {
            (Some(piece), n) if n > 0 => self.take_in(socket, piece, n),
            (None, 0) => self
                .session_mut(socket)
                .map_or(Err(IOT_E_TLS_STATE), TlsSession::receive_end),
            _ => Ok(()),
        };
        let result = match taken {
            Err(code) => code,
            Ok(()) if res == -libc::ENOBUFS || (!retry && res >= 0) => -libc::ECANCELED,
            Ok(()) if res < 0 => res,
            Ok(()) => {
                self.deliver_plaintext(key, buffer);
                return None;
            }
        };
        if let Some(piece) = buffer {
            let _ = self.release_buffer(piece.id, piece.offset);
        }
        let completion = self.driver[key].completion(result);
        self.end_op(key, completion)
    }

    /// Hands the plaintext `key`'s socket holds to the host, one piece or buffer per
    /// completion (`reuse` first: the piece the ciphertext came in, whose plaintext
    /// fits it), then goes on: a one-shot receive ends with its one buffer, a multishot
    /// one receives again, parks when its socket holds its share of pieces, or ends at
    /// the end of the stream.
    pub(super) fn deliver_plaintext(&mut self, key: usize, mut reuse: Option<BufferRef>) {
        loop {
            let op = &self.driver[key];
            let (socket, multishot) = (op.socket, matches!(&op.work, Work::Recv(r) if r.multishot));
            let Some(session) = self.session_mut(socket) else {
                if let Some(piece) = reuse {
                    let _ = self.release_buffer(piece.id, piece.offset);
                }
                return self.end_op_later(key, self.driver[key].completion(-libc::ECANCELED));
            };
            if !session.has_plaintext() {
                let at_end = session.at_end();
                if let Some(piece) = reuse {
                    let _ = self.release_buffer(piece.id, piece.offset);
                }
                if at_end {
                    return self.end_op_later(key, self.driver[key].completion(0));
                }
                if !self.may_receive(socket) {
                    return self.throttle(key);
                }
                // A plain receive parked when the handshake started: its ciphertext
                // must come one attempt at a time from now on.
                if let Work::Recv(recv) = &mut self.driver[key].work {
                    recv.kernel_multishot = false;
                }
                if let Err(code) = self.submit_attempt(key) {
                    self.end_op_later(key, self.driver[key].completion(code));
                }
                return;
            }
            let Some(piece) = reuse.take().or_else(|| self.plaintext_room(socket)) else {
                return self.wait_for_room(key, socket);
            };
            let len = self.read_plaintext(socket, piece);
            RecvCredit::note_received(&mut self.sockets, socket, piece, &mut self.buffers);
            let mut completion = self.driver[key].completion(len as i32);
            completion.flags = IOT_COMPLETION_BUFFER | IOT_COMPLETION_PIECE;
            completion.buffer_id = piece.id as u16;
            completion.offset = piece.offset;
            if !multishot {
                return self.end_op_later(key, completion);
            }
            completion.flags |= IOT_COMPLETION_MORE;
            self.push_ready(completion);
        }
    }

    /// Reads plaintext of `socket`'s session into the host's piece (or buffer) at `at`,
    /// as much as it holds.
    fn read_plaintext(&mut self, socket: u64, at: BufferRef) -> usize {
        let Some((ptr, len)) = self.buffers.host_room(at) else {
            return 0;
        };
        // SAFETY: the host holds this piece or buffer (just received or taken spare),
        // `len` bytes inside the pool; nothing else writes it until handed over.
        let room = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
        self.session_mut(socket)
            .map_or(0, |session| session.read_plaintext(room))
    }

    /// Another buffer for plaintext, if the socket may take one and the pool has one
    /// spare (a receive buffer out of the ring, else a free send buffer).
    fn plaintext_room(&mut self, socket: u64) -> Option<BufferRef> {
        if !self.may_receive(socket) {
            return None;
        }
        self.buffers
            .take_spare()
            .or_else(|| self.buffers.acquire().ok().map(BufferRef::whole))
    }

    /// No buffer for the plaintext: wait for one of the socket's own to come back, or
    /// (holding none) for any to return to the ring.
    fn wait_for_room(&mut self, key: usize, socket: u64) {
        if self.sockets.get(socket).is_ok_and(|s| s.received_held > 0) {
            return self.throttle(key);
        }
        self.driver[key].life.starved = true;
        self.starved.push_back(key);
    }

    /// Seals op `key` for its TLS socket as it starts: a send's bytes become records; a
    /// shutdown of the sending side sends close_notify first.
    pub(super) fn seal_for_tls(&mut self, key: usize) -> Result<()> {
        let op = &mut self.driver[key];
        let Some(session) = self
            .sockets
            .get_mut(op.socket)
            .ok()
            .and_then(|s| s.tls.as_deref_mut())
        else {
            return Ok(());
        };
        match &mut op.work {
            Work::Send(progress) if progress.sealable() => {
                let plaintext = progress.plaintext(&self.buffers);
                let mut records = self.record_buffers.take().unwrap_or_default();
                records.clear();
                // Records add a header and a tag (and TLS 1.3 a type byte) per 16 KiB.
                records.reserve(plaintext.len() + 32 * (plaintext.len() / 16_384 + 1));
                session.seal(plaintext, &mut records)?;
                progress.seal(records);
            }
            Work::Shutdown(shutdown)
                if shutdown.ends_sending() && session.check_established().is_ok() =>
            {
                let mut record = Vec::new();
                session.close_notify(&mut record);
                shutdown.notify_first(record);
            }
            _ => {}
        }
        Ok(())
    }

    /// Keeps the record buffer of a finished send for the next, unless it never held
    /// any (a few are kept: see `recycled.rs`).
    pub(super) fn keep_record_buffer(&mut self, records: Vec<u8>) {
        if records.capacity() > 0 {
            self.record_buffers.keep(records);
        }
    }
}
