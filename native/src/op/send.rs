//! Send from one host buffer: on a stream or connected datagram socket (`send`), as a
//! datagram to an address (`sendto`), or as a file write. A partial transfer is
//! resubmitted for the rest until all bytes went or an error came.

use io_uring::types::{Fd, Fixed};
use io_uring::{opcode, squeue};
use socket2::SockAddr;

use super::file::file_offset;
use crate::abi::*;
use crate::buffers::BufferPool;
use crate::pieces::BufferRef;

/// Bytes of one host buffer on their way out; partial transfers are resubmitted until
/// `done == len`.
pub(crate) struct SendProgress {
    /// Where its bytes start (in the piece or buffer the send borrowed).
    pub(crate) at: BufferRef,
    len: u32,
    done: u32,
    to: SendTarget,
}

pub(crate) enum SendTarget {
    /// A stream, or a connected datagram socket (`send`).
    Connected,
    /// A datagram to this address (`sendto`).
    Address(Box<SockAddr>),
    /// A file write at this offset, or at the file position when `None`.
    File { at: Option<u64> },
    /// A TLS socket: the records sealing the buffer's `plain` bytes, sent instead.
    Sealed { records: Vec<u8>, plain: u32 },
}

impl SendTarget {
    /// The completion kind of a send towards this target.
    pub(crate) fn kind(&self) -> u16 {
        match self {
            SendTarget::Connected | SendTarget::Sealed { .. } => IOT_KIND_SEND,
            SendTarget::Address(_) => IOT_KIND_SEND_TO,
            SendTarget::File { .. } => IOT_KIND_FILE_WRITE,
        }
    }
}

impl SendProgress {
    /// `len` bytes from `at` (checked against its piece or buffer by the caller).
    pub(crate) fn new(at: BufferRef, len: u32, to: SendTarget) -> SendProgress {
        SendProgress {
            at,
            len,
            done: 0,
            to,
        }
    }

    /// The bytes this send takes from its buffer (what a TLS session seals).
    pub(crate) fn plaintext<'a>(&self, buffers: &'a BufferPool) -> &'a [u8] {
        // SAFETY: offset + len was checked against the piece or buffer at queue time,
        // and the op owns it: nobody writes it meanwhile.
        unsafe {
            std::slice::from_raw_parts(
                buffers.ptr(self.at.id).add(self.at.offset as usize),
                self.len as usize,
            )
        }
    }

    /// A send on a stream, which a TLS session seals (not yet sealed).
    pub(crate) fn sealable(&self) -> bool {
        matches!(self.to, SendTarget::Connected)
    }

    /// Sends `records` (the sealed plaintext) instead; the completion still counts
    /// the plaintext.
    pub(crate) fn seal(&mut self, records: Vec<u8>) {
        let plain = self.len;
        self.len = records.len() as u32;
        self.to = SendTarget::Sealed { records, plain };
    }

    /// The destination box of a datagram send, for the next one.
    pub(crate) fn take_address(&mut self) -> Option<Box<SockAddr>> {
        match std::mem::replace(&mut self.to, SendTarget::Connected) {
            SendTarget::Address(address) => Some(address),
            other => {
                self.to = other;
                None
            }
        }
    }

    /// The records a sealed send sent, for the next send to seal into.
    pub(crate) fn take_records(&mut self) -> Option<Vec<u8>> {
        match &mut self.to {
            SendTarget::Sealed { records, .. } => Some(std::mem::take(records)),
            _ => None,
        }
    }

    /// Stream sends go without `MSG_WAITALL`: with it, io_uring retries a short send
    /// itself and, when an error comes after some bytes went, reports those bytes and
    /// drops the error, a reset's included, so the receive finds a clean end. Without
    /// it a short send comes back here, and the next attempt meets the error. A stream
    /// send names its socket's registered slot (`fixed`) when it has one.
    pub(crate) fn entry(
        &self,
        fd: Fd,
        fixed: Option<Fixed>,
        buffers: &BufferPool,
    ) -> squeue::Entry {
        let stream_send = |ptr: *const u8, len: u32| {
            match fixed {
                Some(slot) => opcode::Send::new(slot, ptr, len),
                None => opcode::Send::new(fd, ptr, len),
            }
            .flags(libc::MSG_NOSIGNAL)
            .build()
        };
        if let SendTarget::Sealed { records, .. } = &self.to {
            let rest = &records[self.done as usize..];
            return stream_send(rest.as_ptr(), rest.len() as u32);
        }
        // SAFETY: offset + len was checked against the buffer size at queue time.
        let ptr = unsafe {
            buffers
                .ptr(self.at.id)
                .add((self.at.offset + self.done) as usize)
        };
        let len = self.len - self.done;
        match &self.to {
            SendTarget::Connected | SendTarget::Sealed { .. } => stream_send(ptr, len),
            SendTarget::Address(addr) => opcode::Send::new(fd, ptr, len)
                .flags(libc::MSG_NOSIGNAL)
                .dest_addr(addr.as_ptr().cast())
                .dest_addr_len(addr.len())
                .build(),
            SendTarget::File { at } => {
                // The fixed-buffer opcode when the pool is registered.
                let at = file_offset(at.map(|offset| offset + u64::from(self.done)));
                match buffers.fixed_index(self.at.id) {
                    Some(index) => opcode::WriteFixed::new(fd, ptr, len, index)
                        .offset(at)
                        .build(),
                    None => opcode::Write::new(fd, ptr, len).offset(at).build(),
                }
            }
        }
    }

    /// Counts an attempt's result; true when bytes are left to send after it.
    pub(crate) fn advance(&mut self, res: i32) -> bool {
        if res > 0 {
            self.done += res as u32;
        }
        res > 0 && self.done < self.len
    }

    /// The op's result once it stops after an attempt that returned `res`.
    pub(crate) fn result(&self, res: i32) -> i32 {
        // Nothing moved: the peer is gone, or the file takes no more.
        let short = match self.to {
            SendTarget::File { .. } => -libc::EIO,
            _ => -libc::EPIPE,
        };
        match (
            &self.to,
            super::transfer_result(res, u64::from(self.done), u64::from(self.len), short),
        ) {
            (SendTarget::Sealed { plain, .. }, sent) if sent >= 0 => *plain as i32,
            (_, result) => result,
        }
    }
}
