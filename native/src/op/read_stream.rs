//! Reading a whole file as a stream of buffer-size chunks, like a multishot receive:
//! one read at a time into a buffer the kernel picks, re-issued at the next offset
//! after each chunk, ending with result 0 at end of file.
//!
//! Back-pressure: a stream pauses while the host holds `window` of its chunks and
//! resumes when one is released, so a slow consumer neither buffers the whole file
//! nor starves the worker's sockets of receive buffers. It also waits, like any
//! receive, when the receive ring runs dry.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::file::file_offset;
use crate::buffers::{BufferPool, RECV_GROUP};
use crate::pieces::Origin;

pub(crate) struct ReadStream {
    /// Next file offset to read, or `None` to read at the file position.
    at: Option<u64>,
    /// Chunks the host may hold before the stream pauses.
    window: u32,
    /// Chunks the host holds now.
    held: u32,
    /// Paused because `held` reached `window` (not in the kernel).
    paused: bool,
    /// Tells this stream's chunks from those of an earlier stream in the same slot.
    serial: u64,
}

impl ReadStream {
    /// From file offset `at` (`None`: the file position), at most `window` chunks in
    /// the host's hands; `serial` is new for every stream of the worker.
    pub(crate) fn new(at: Option<u64>, window: u32, serial: u64) -> ReadStream {
        ReadStream {
            at,
            window,
            held: 0,
            paused: false,
            serial,
        }
    }

    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        opcode::Read::new(fd, std::ptr::null_mut(), buffers.buffer_size())
            .offset(file_offset(self.at))
            .buf_group(RECV_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    /// Stream op `key` delivers `res` bytes: whether it must pause now, and the origin
    /// that tells it when the chunk comes back.
    pub(crate) fn delivered(&mut self, key: usize, res: i32) -> (bool, Origin) {
        self.at = self.at.map(|at| at + res as u64);
        self.held += 1;
        self.paused = self.held >= self.window;
        let origin = Origin::ReadStream {
            key: key as u32,
            serial: self.serial,
        };
        (self.paused, origin)
    }

    /// The host gave back a chunk of stream `serial`: true when this stream, paused,
    /// may read on (never once `cancelled`).
    pub(crate) fn returned(&mut self, serial: u64, cancelled: bool) -> bool {
        if self.serial != serial {
            return false; // a chunk of a stream that already ended
        }
        self.held = self.held.saturating_sub(1);
        if self.paused && self.held < self.window && !cancelled {
            self.paused = false;
            return true;
        }
        false
    }
}
