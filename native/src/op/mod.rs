//! In-flight operations, one file per family: each owns its payload (what the op still
//! needs while the kernel works), builds its SQE, and interprets its results.
//!
//! Dispatch is one `enum Work` over the families' structs, matched here, rather than a
//! `Box<dyn Operation>` per op: the slab holds every op inline (steady state allocates
//! nothing per operation), and each arm is a direct call the compiler can inline on
//! the hot receive and send paths. Adding a family means a file and one arm per match.

mod accept;
mod connect;
mod file;
mod handshake;
mod read;
mod read_stream;
mod recv;
pub(crate) mod recvmsg;
mod send;
mod shutdown;
mod vectored;

pub(crate) use accept::{Accept, AcceptNext};
pub(crate) use connect::Connect;
pub(crate) use file::{position, FileWork};
pub(crate) use handshake::Handshake;
pub(crate) use read::ReadInto;
pub(crate) use read_stream::ReadStream;
pub(crate) use recv::Recv;
pub(crate) use recvmsg::{MessageHeader, HEADER_LEN};
pub(crate) use send::{SendProgress, SendTarget};
pub(crate) use shutdown::Shutdown;
pub(crate) use vectored::VectoredIo;

use io_uring::squeue;
use io_uring::types::{Fd, Fixed};

use crate::abi::iot_completion;
use crate::buffers::BufferPool;
use crate::driver::in_flight::{Life, Tracked};
use crate::error::Result;
use crate::pieces::BufferRef;

/// What an op still needs when its completion arrives.
pub(crate) enum Work {
    Accept(Accept),
    Connect(Connect),
    Recv(Recv),
    Send(SendProgress),
    Shutdown(Shutdown),
    Read(ReadInto),
    Vectored(Box<VectoredIo>),
    ReadStream(ReadStream),
    /// A file operation that moves no buffer (open, sync, allocate, truncate, stat).
    File(FileWork),
    /// A TLS handshake (boxed: its flight buffer is only for the handshake's life).
    Handshake(Box<Handshake>),
}

impl Work {
    /// The SQE of the op's next kernel attempt; `fd` is its handle's, which only open
    /// and path stat do without, and `fixed` its slot in the ring's registered files.
    #[inline]
    pub(crate) fn entry(
        &self,
        fd: Result<Fd>,
        fixed: Option<Fixed>,
        buffers: &BufferPool,
    ) -> Result<squeue::Entry> {
        Ok(match self {
            Work::Accept(accept) => accept.entry(fd?),
            Work::Connect(connect) => connect.entry(fd?),
            Work::Recv(recv) => recv.entry(fd?, buffers),
            Work::Send(send) => send.entry(fd?, fixed, buffers),
            Work::Shutdown(shutdown) => shutdown.entry(fd?),
            Work::Read(read) => read.entry(fd?, buffers),
            Work::Vectored(io) => io.entry(fd?),
            Work::ReadStream(stream) => stream.entry(fd?, buffers),
            Work::File(file) => file.entry(fd)?,
            Work::Handshake(handshake) => handshake.entry(fd?, buffers),
        })
    }

    /// A socket receive, accept or send: an attempt the kernel runs when the socket is
    /// ready, and that can simply be made again when the kernel cancelled it.
    #[inline]
    pub(crate) fn polls_socket(&self) -> bool {
        matches!(self, Work::Recv(_) | Work::Accept(_) | Work::Send(_))
    }

    /// The host pieces or buffers this op borrowed (given back when it ends).
    pub(crate) fn borrowed(&self) -> &[BufferRef] {
        match self {
            Work::Send(progress) => std::slice::from_ref(&progress.at),
            Work::Read(read) => std::slice::from_ref(&read.into),
            Work::Vectored(io) => io.buffers(),
            _ => &[],
        }
    }

    /// Pool buffers the op took for itself (a one-shot datagram receive's), which go
    /// back to the pool unless the op hands them to the host.
    pub(crate) fn taken(&self) -> &[u32] {
        match self {
            Work::Recv(recv) => recv.taken(),
            _ => &[],
        }
    }

    /// Runs in a blocking io-wq thread (`IOSQE_ASYNC`), where a linked timeout does not
    /// fire (seen on Linux 6.18): its timeout is a separate timer that cancels it.
    pub(crate) fn blocks_in_io_wq(&self) -> bool {
        matches!(self, Work::File(FileWork::Open { .. }))
    }

    /// A transfer that goes on until every byte moved (a send, a file write) counts an
    /// attempt's `res`: `Some((more, result))`, `more` when bytes are left to move,
    /// `result` the op's result if it stops now. `None` for every other op.
    #[inline]
    pub(crate) fn transferred(&mut self, res: i32) -> Option<(bool, i32)> {
        match self {
            Work::Send(progress) => Some((progress.advance(res), progress.result(res))),
            Work::Vectored(io) if io.is_write() => Some((io.advance(res), io.result(res))),
            Work::Shutdown(shutdown) => shutdown.advance(res),
            _ => None,
        }
    }

    /// A datagram receive's completion says where its payload is (stream receives,
    /// failed ones and other ops are left alone).
    #[inline]
    pub(crate) fn describe_datagram(
        &mut self,
        completion: &mut iot_completion,
        buffers: &mut BufferPool,
    ) {
        if let Work::Recv(Recv {
            from: Some(header), ..
        }) = self
        {
            header.describe(completion, buffers);
        }
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

/// The result of a transfer that stops after an attempt returned `res`, with `done`
/// of `total` bytes moved: the error, `short` when it stopped early, else the count.
fn transfer_result(res: i32, done: u64, total: u64, short: i32) -> i32 {
    match res {
        r if r < 0 => r,
        _ if done < total => short,
        _ => done as i32,
    }
}

pub(crate) struct Op {
    pub(crate) tag: u64,
    pub(crate) kind: u16,
    /// Handle of the socket or file the op works on (0 for open and path stat).
    pub(crate) socket: u64,
    pub(crate) work: Work,
    /// Its attempt and where it is: cancelled, starved, backing off.
    pub(crate) life: Life,
    /// Came from its handle's ordered queue: the next queued op starts when it ends.
    pub(crate) ordered: bool,
    /// The piece (or span) its latest CQE handed over, until it hands it on. Taken when
    /// the CQE is read: packed buffers are cut in the order the kernel posts CQEs, not
    /// the order ops settle in (one with a timeout waits for its timer's CQE too).
    pub(crate) received: Option<BufferRef>,
    /// The receive ring's growth count when its latest attempt started.
    pub(crate) ring_epoch: u32,
}

impl Op {
    pub(crate) fn new(tag: u64, kind: u16, socket: u64, work: Work, timeout_ms: u32) -> Op {
        Op {
            tag,
            kind,
            socket,
            work,
            life: Life::new(timeout_ms),
            ordered: false,
            received: None,
            ring_epoch: 0,
        }
    }

    /// A completion of this op with `result`.
    pub(crate) fn completion(&self, result: i32) -> iot_completion {
        iot_completion::new(self.tag, self.kind, result)
    }
}

impl Tracked for Op {
    #[inline]
    fn life(&self) -> &Life {
        &self.life
    }

    #[inline]
    fn life_mut(&mut self) -> &mut Life {
        &mut self.life
    }

    #[inline]
    fn blocks_in_io_wq(&self) -> bool {
        self.work.blocks_in_io_wq()
    }
}
