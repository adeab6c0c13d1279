//! In-flight operations. `user_data` is the slab key of the op (never an fd), with one
//! high bit marking the op's linked timeout; a few sentinels mark SQEs whose
//! completions carry no news (cancels).

use io_uring::types::Timespec;
use socket2::SockAddr;

use crate::completion::iot_completion;
use crate::datagram::MessageHeader;
use crate::file_stream::ReadStream;
use crate::files::{FileWork, ReadInto, VectoredIo};

/// Marks the linked-timeout CQE of op `key`.
pub(crate) const TIMEOUT_BIT: u64 = 1 << 62;
/// Marks the back-off timer CQE of op `key` (an accept waiting out a transient error).
/// Bit 61 marks the messages a worker sent (`messaging.rs`).
pub(crate) const BACKOFF_BIT: u64 = 1 << 60;
/// Completions of fire-and-forget SQEs (cancel requests).
pub(crate) const IGNORED: u64 = u64::MAX;

/// What an op still needs when its completion arrives.
pub(crate) enum Work {
    Accept {
        multishot: bool,
        /// Transient errors in a row (`EMFILE`, ...), which set the back-off.
        failures: u8,
    },
    /// The socket is exposed to the host only when the connect succeeds.
    Connect {
        addr: Box<SockAddr>,
    },
    /// A receive into a buffer the kernel picks. With `from` it is a `recvmsg` that
    /// reports the sender and truncation (datagram sockets).
    Recv {
        multishot: bool,
        from: Option<Box<MessageHeader>>,
    },
    Send(SendProgress),
    Shutdown {
        how: i32,
    },
    /// A file read into (part of) one host buffer.
    Read(ReadInto),
    /// A file `readv`/`writev` over several host buffers.
    Vectored(Box<VectoredIo>),
    /// A whole-file read in buffer-size chunks the kernel picks.
    ReadStream(ReadStream),
    /// A file operation that moves no buffer (open, sync, allocate, truncate, stat).
    File(FileWork),
}

impl Work {
    /// The host buffers this op borrowed (given back when it ends).
    pub(crate) fn borrowed(&self) -> &[u32] {
        match self {
            Work::Send(progress) => std::slice::from_ref(&progress.buffer),
            Work::Read(read) => std::slice::from_ref(&read.buffer),
            Work::Vectored(io) => io.buffers(),
            _ => &[],
        }
    }

    /// Pool buffers the op took for itself (a one-shot datagram receive's), which go
    /// back to the pool unless the op hands them to the host.
    pub(crate) fn taken(&self) -> &[u32] {
        match self {
            Work::Recv {
                from: Some(header), ..
            } => header.buffer(),
            _ => &[],
        }
    }

    /// Runs in a blocking io-wq thread (`IOSQE_ASYNC`), where a linked timeout does not
    /// fire (seen on Linux 6.18): its timeout is a separate timer that cancels it.
    pub(crate) fn blocks_in_io_wq(&self) -> bool {
        matches!(self, Work::File(FileWork::Open { .. }))
    }

    /// Whether the borrowed buffers go back to the host (they hold what was read)
    /// rather than to the pool (their bytes were sent or written).
    pub(crate) fn fills_host_buffers(&self) -> bool {
        match self {
            Work::Read(_) => true,
            Work::Vectored(io) => !io.is_write(),
            _ => false,
        }
    }
}

/// Bytes of one host buffer on their way out; partial transfers are resubmitted until
/// `done == len`.
pub(crate) struct SendProgress {
    pub(crate) buffer: u32,
    pub(crate) offset: u32,
    pub(crate) len: u32,
    pub(crate) done: u32,
    pub(crate) to: SendTarget,
}

pub(crate) enum SendTarget {
    /// A stream, or a connected datagram socket (`send`).
    Connected,
    /// A datagram to this address (`sendto`).
    Address(Box<SockAddr>),
    /// A file write at this offset, or at the file position when `None`.
    File { at: Option<u64> },
}

pub(crate) struct Op {
    pub(crate) tag: u64,
    pub(crate) kind: u16,
    /// Handle of the socket or file the op works on (0 for open and path stat).
    pub(crate) socket: u64,
    pub(crate) work: Work,
    /// Timeout for each kernel attempt of this op (kept alive until submitted).
    pub(crate) timeout: Option<Box<Timespec>>,
    /// CQEs still expected for the current attempt (op + its linked timeout).
    pub(crate) expected: u8,
    /// The linked timeout fired: the op's `-ECANCELED` means `-ETIMEDOUT`.
    pub(crate) timed_out: bool,
    /// Final result of the current attempt, kept until the timeout CQE arrived too.
    pub(crate) result: Option<(i32, u32)>,
    /// The host asked to cancel: never retry or resubmit.
    pub(crate) cancelled: bool,
    /// Not in the kernel: waiting for buffers to come back (the receive ring ran dry,
    /// or a read stream's window is full) before resubmitting.
    pub(crate) starved: bool,
    /// Came from its handle's ordered queue: the next queued op starts when it ends.
    pub(crate) ordered: bool,
    /// Not in the kernel: a back-off timer runs before the next attempt.
    pub(crate) backing_off: bool,
}

impl Op {
    pub(crate) fn new(tag: u64, kind: u16, socket: u64, work: Work, timeout_ms: u32) -> Op {
        let timeout = (timeout_ms > 0).then(|| {
            Box::new(
                Timespec::new()
                    .sec(u64::from(timeout_ms / 1000))
                    .nsec((timeout_ms % 1000) * 1_000_000),
            )
        });
        Op {
            tag,
            kind,
            socket,
            work,
            timeout,
            expected: 0,
            timed_out: false,
            result: None,
            cancelled: false,
            starved: false,
            ordered: false,
            backing_off: false,
        }
    }

    /// A completion of this op with `result`.
    pub(crate) fn completion(&self, result: i32) -> iot_completion {
        iot_completion::new(self.tag, self.kind, result)
    }
}
