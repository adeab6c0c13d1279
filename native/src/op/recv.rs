//! Receive into a buffer the kernel picks from the receive ring. A multishot stream
//! receive stays armed in the kernel, a CQE per arrival, until the worker stops it at
//! its socket's share of buffers (`recv_credit.rs`); TLS ciphertext is received one
//! attempt at a time, each decrypted before the next. A datagram receive is a
//! `recvmsg` that reports the sender and truncation (`recvmsg.rs`).

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::recvmsg::MessageHeader;
use crate::buffers::{BufferPool, RECV_GROUP};

pub(crate) struct Recv {
    pub(crate) multishot: bool,
    /// A multishot stream receive without TLS: the kernel keeps it armed. One SQE
    /// instead of an attempt per arrival saves the attempt's file lookup, its failed
    /// first read and its poll arming (`iot_bench echo`: 3-17% of the server's CPU
    /// per round trip at 50-2,000 connections).
    pub(crate) kernel_multishot: bool,
    /// The worker cancelled the kernel's multishot receive because its socket reached
    /// its share of buffers: the attempt's final CQE parks the op rather than ends it.
    pub(crate) stopping: bool,
    /// In the worker's queue of receives waiting for the pool's room (perhaps gone on
    /// since): not queued twice.
    pub(crate) awaits_room: bool,
    /// Datagram sockets: the `recvmsg` header.
    pub(crate) from: Option<Box<MessageHeader>>,
}

impl Recv {
    /// A stream receive; `kernel_multishot` when the kernel may keep it armed.
    pub(crate) fn stream(multishot: bool, kernel_multishot: bool) -> Recv {
        Recv {
            multishot,
            kernel_multishot: multishot && kernel_multishot,
            stopping: false,
            awaits_room: false,
            from: None,
        }
    }

    /// A datagram receive with its `recvmsg` header (multishot ones are the kernel's).
    pub(crate) fn datagram(multishot: bool, header: Box<MessageHeader>) -> Recv {
        Recv {
            multishot,
            kernel_multishot: false,
            stopping: false,
            awaits_room: false,
            from: Some(header),
        }
    }

    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        match &self.from {
            Some(header) => header.entry(fd, self.multishot),
            None if self.kernel_multishot => opcode::RecvMulti::new(fd, RECV_GROUP).build(),
            None => opcode::Recv::new(fd, std::ptr::null_mut(), buffers.buffer_size())
                .buf_group(RECV_GROUP)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT),
        }
    }

    /// `entry`, a kernel multishot receive, ends once it received `bytes` in all
    /// (`IORING_RECV_MSHOT_LIM`: a nonzero `optlen`, at byte 44 of the SQE, which the
    /// `io-uring` crate has no setter for; kernels before it refuse it with `EINVAL`,
    /// as the `file_index` that shares those bytes: `probe.rs` checks).
    pub(crate) fn limit_total_bytes(entry: squeue::Entry, bytes: u32) -> squeue::Entry {
        const OPTLEN: usize = 44;
        // SAFETY: `squeue::Entry` is `#[repr(C)]` around the kernel's 64-byte
        // `io_uring_sqe` (transmute checks the size), which has no padding and which
        // the crate builds from zeroed memory, so every byte is initialised; bytes
        // 44..48 are its `optlen`.
        let mut sqe: [u8; 64] = unsafe { std::mem::transmute(entry) };
        sqe[OPTLEN..OPTLEN + 4].copy_from_slice(&bytes.to_ne_bytes());
        // SAFETY: the same bytes, back as the entry they came from.
        unsafe { std::mem::transmute::<[u8; 64], squeue::Entry>(sqe) }
    }

    /// Pool buffers the op took for itself (a one-shot datagram receive's).
    pub(crate) fn taken(&self) -> &[u32] {
        self.from.as_deref().map_or(&[], MessageHeader::buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(entry: squeue::Entry) -> [u8; 64] {
        // SAFETY: as in `limit_total_bytes`.
        unsafe { std::mem::transmute(entry) }
    }

    #[test]
    fn the_byte_limit_lands_in_optlen_and_nowhere_else() {
        let entry = || {
            opcode::RecvMulti::new(Fd(7), RECV_GROUP)
                .build()
                .user_data(9)
        };
        let before = bytes(entry());
        let after = bytes(Recv::limit_total_bytes(entry(), 0x0102_0304));
        assert_eq!(after[44..48], 0x0102_0304u32.to_ne_bytes());
        assert_eq!(before[..44], after[..44]);
        assert_eq!(before[48..], after[48..]);
        assert_eq!(before[44..48], [0; 4], "a receive leaves optlen zero");
    }
}
