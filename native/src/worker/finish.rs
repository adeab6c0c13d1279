//! An attempt's last CQE (or a multishot op's next one) turned into what the host sees,
//! family by family: resubmit a partial transfer or an op the kernel ended early,
//! adopt an accepted or opened fd, hand a received buffer over, back off an accept
//! after a transient error, deliver a read stream's chunk. What only needs the op is
//! decided in its `op/` file (`Accept::after`, `Work::transferred`,
//! `Work::describe_datagram`, `ReadStream::delivered`); this is what also needs the
//! sockets, the buffers, the receive credit or the ring.

use std::os::fd::{FromRawFd, OwnedFd};

use super::Worker;
use crate::abi::*;
use crate::op::{AcceptNext, FileWork, Work};
use crate::recv_credit::RecvCredit;
use crate::sockets::SocketKind;

impl Worker {
    /// Finishes the current attempt of `key` once its op and timeout CQEs are both in.
    #[inline]
    pub(super) fn settle(&mut self, key: usize) -> Option<iot_completion> {
        let op = &self.driver[key];
        // An op whose socket was closed under it was cancelled with it.
        let closed = op.socket != 0 && self.sockets.get(op.socket).is_err();
        let (res, _) = self.driver.settle(key, closed)?;
        if !closed && self.park_stopped(key, res) {
            return None;
        }
        if !closed
            && self.driver[key].work.polls_socket()
            && self.driver.retry_orphaned(key, res)
            && self.submit_attempt(key).is_ok()
        {
            return None;
        }
        self.finish(key, res)
    }

    /// A multishot op produced one result and stays armed.
    pub(super) fn progress(&mut self, key: usize, res: i32) -> Option<iot_completion> {
        self.driver.made_progress(key);
        let op = &self.driver[key];
        let (tag, kind, socket_gone) = (op.tag, op.kind, self.sockets.get(op.socket).is_err());
        let mut completion = iot_completion::new(tag, kind, res);
        completion.flags = IOT_COMPLETION_MORE;
        match kind {
            IOT_KIND_ACCEPT if res >= 0 => {
                completion.result = 0;
                completion.handle = self.adopt_accepted(res, socket_gone)?;
            }
            IOT_KIND_RECV | IOT_KIND_RECV_FROM => {
                let buffer = self.take_piece(key, socket_gone)?;
                completion.flags |= IOT_COMPLETION_BUFFER;
                if matches!(&self.driver[key].work, Work::Recv(r) if r.kernel_multishot) {
                    completion.flags |= IOT_COMPLETION_PIECE;
                    self.received_by_multishot(key, buffer);
                }
                completion.buffer_id = buffer.id as u16;
                completion.offset = buffer.offset;
                self.driver[key]
                    .work
                    .describe_datagram(&mut completion, &mut self.buffers);
            }
            _ => {}
        }
        Some(completion)
    }

    /// Registers an accepted fd as a socket; closes it when its listener is gone.
    pub(super) fn adopt_accepted(&mut self, fd: i32, listener_gone: bool) -> Option<u64> {
        // SAFETY: the kernel just created this fd for us; nothing else owns it.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if listener_gone {
            return None; // dropping closes it
        }
        // Fails harmlessly on Unix sockets, which have no Nagle delay to turn off.
        let _ = socket2::SockRef::from(&fd).set_nodelay(true);
        // No handle left for it (millions open): dropping it refuses the connection.
        self.sockets
            .insert(fd, crate::sockets::SocketKind::Stream)
            .ok()
    }

    /// The back-off timer of op `key` ended: re-arm the accept, unless the host
    /// cancelled it or closed the listener meanwhile (the timer was removed then).
    pub(super) fn on_backoff_timer(&mut self, key: usize) -> Option<iot_completion> {
        let op = self.driver.get(key)?;
        let gone = op.life.cancelled || self.sockets.get(op.socket).is_err();
        let result = if gone {
            -libc::ECANCELED
        } else {
            match self.submit_attempt(key) {
                Ok(()) => return None,
                Err(code) => code,
            }
        };
        let completion = self.driver[key].completion(result);
        self.end_op(key, completion)
    }

    /// A chunk (or the end) of read stream `key` arrived: hand it over and read on,
    /// pause, or finish.
    pub(super) fn finish_stream(
        &mut self,
        key: usize,
        mut completion: iot_completion,
        retry: bool,
    ) -> Option<iot_completion> {
        let res = completion.result;
        if res == -libc::ENOBUFS && retry {
            self.starve(key);
            return None;
        }
        // A chunk nobody will read (cancelled, closed) or an empty one goes back.
        let delivered = res > 0 && retry;
        let buffer = self.take_piece(key, !delivered);
        let Some(buffer) = buffer.filter(|_| delivered) else {
            if res > 0 {
                completion.result = -libc::ECANCELED;
            }
            return self.end_op(key, completion);
        };
        let Work::ReadStream(stream) = &mut self.driver[key].work else {
            return self.end_op(key, completion);
        };
        let (paused, origin) = stream.delivered(key, res);
        self.buffers.set_origin(buffer, origin);
        completion.flags = IOT_COMPLETION_BUFFER | IOT_COMPLETION_PIECE | IOT_COMPLETION_MORE;
        completion.buffer_id = buffer.id as u16;
        completion.offset = buffer.offset;
        if paused {
            self.driver[key].life.starved = true;
        } else {
            self.read_next_chunk(key);
        }
        Some(completion)
    }

    /// Resubmits stream `key`; when that fails the stream ends with the error, after
    /// the chunk being delivered now.
    pub(super) fn read_next_chunk(&mut self, key: usize) {
        if let Err(code) = self.submit_attempt(key) {
            let completion = self.driver[key].completion(code);
            self.end_op_later(key, completion);
        }
    }

    /// Final CQE of an attempt: resubmit, or complete the op and free its slot.
    pub(super) fn finish(&mut self, key: usize, res: i32) -> Option<iot_completion> {
        let op = &self.driver[key];
        let (tag, kind, socket, cancelled) = (op.tag, op.kind, op.socket, op.life.cancelled);
        let on = self.sockets.get(socket);
        let (socket_gone, secured) = (on.is_err(), on.is_ok_and(|s| s.tls.is_some()));
        let retry = !cancelled && !socket_gone;
        let mut completion = iot_completion::new(tag, kind, res);
        if let Some((more, result)) = self.driver[key].work.transferred(res) {
            if more && retry && self.submit_attempt(key).is_ok() {
                return None;
            }
            // Cut short by a cancel or a close, not by the peer.
            completion.result = if more && !retry {
                -libc::ECANCELED
            } else {
                result
            };
            return self.end_op(key, completion);
        }
        if secured && matches!(self.driver[key].work, Work::Recv(_)) {
            return self.finish_tls_receive(key, res, retry);
        }
        match &mut self.driver[key].work {
            Work::Handshake(_) => return self.finish_handshake(key, res, retry),
            Work::Accept(accept) => match accept.after(res, retry) {
                AcceptNext::BackOff(pause) => {
                    if self.driver.back_off(key, pause).is_ok() {
                        completion.flags = IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                }
                AcceptNext::Adopt { rearm } => {
                    completion.result = 0;
                    completion.handle = self.adopt_accepted(res, socket_gone).unwrap_or(0);
                    if completion.handle == 0 {
                        completion.result = -libc::ECANCELED;
                    } else if rearm && self.submit_attempt(key).is_ok() {
                        completion.flags = IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                }
                AcceptNext::End => {}
            },
            Work::Connect(_) => {
                if res == 0 && !socket_gone {
                    completion.handle = socket;
                } else if !socket_gone {
                    let _ = self.remove_socket(socket); // never exposed: close it here
                }
            }
            Work::Recv(recv) => {
                let (multishot, stream) = (recv.multishot, recv.from.is_none());
                if res == -libc::ENOBUFS && retry {
                    // A multishot receive may have filled its socket's share first.
                    match stream && !self.may_receive(socket) {
                        true => self.throttle(key),
                        false => self.starve(key),
                    }
                    return None;
                }
                if res == -libc::ENOBUFS {
                    // Out of buffers after the host cancelled: report what it asked for.
                    completion.result = -libc::ECANCELED;
                }
                if res == 0 && stream && self.sockets.get(socket).is_ok_and(|s| s.reset_seen) {
                    completion.result = -libc::ECONNRESET;
                }
                if let Some(piece) = self.take_piece(key, socket_gone) {
                    completion.flags = match stream {
                        true => IOT_COMPLETION_BUFFER | IOT_COMPLETION_PIECE,
                        false => IOT_COMPLETION_BUFFER,
                    };
                    completion.buffer_id = piece.id as u16;
                    completion.offset = piece.offset;
                    RecvCredit::note_received(&mut self.sockets, socket, piece, &mut self.buffers);
                    self.driver[key]
                        .work
                        .describe_datagram(&mut completion, &mut self.buffers);
                    if multishot && res > 0 && retry && !self.may_receive(socket) {
                        self.throttle(key);
                        completion.flags |= IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                    if multishot && res > 0 && retry && self.submit_attempt(key).is_ok() {
                        completion.flags |= IOT_COMPLETION_MORE;
                        return Some(completion);
                    }
                } else if socket_gone && res >= 0 {
                    completion.result = -libc::ECANCELED;
                } else {
                    // A one-shot datagram landed in the op's own buffer.
                    self.driver[key]
                        .work
                        .describe_datagram(&mut completion, &mut self.buffers);
                }
            }
            Work::File(FileWork::Open { .. }) if res >= 0 => {
                // SAFETY: the kernel just opened this fd for us; nothing else owns it.
                let fd = unsafe { <OwnedFd as FromRawFd>::from_raw_fd(res) };
                completion.result = match cancelled {
                    true => -libc::ECANCELED, // dropping `fd` closes it
                    false => match self.sockets.insert(fd, SocketKind::File) {
                        Ok(handle) => {
                            completion.handle = handle;
                            0
                        }
                        Err(code) => code,
                    },
                };
            }
            Work::File(file) if res == 0 && !cancelled => file.stat_done(),
            Work::ReadStream(_) => return self.finish_stream(key, completion, retry),
            Work::Send(_)
            | Work::Shutdown(_)
            | Work::Read(_)
            | Work::Vectored(_)
            | Work::File(_) => {}
        }
        self.end_op(key, completion)
    }
}
