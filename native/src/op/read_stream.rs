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

/// For each buffer id the host holds: the read stream (slot, serial) that delivered it.
pub(crate) struct StreamHolders {
    holder: Vec<Option<(usize, u64)>>,
    next_serial: u64,
}

impl StreamHolders {
    pub(crate) fn new(buffer_count: u32) -> StreamHolders {
        StreamHolders {
            holder: vec![None; buffer_count as usize],
            next_serial: 0,
        }
    }

    /// Buffer `id` came back: the stream (slot, serial) that delivered it, if any.
    pub(crate) fn take(&mut self, id: u32) -> Option<(usize, u64)> {
        self.holder.get_mut(id as usize).and_then(Option::take)
    }
}

impl ReadStream {
    /// From file offset `at` (`None`: the file position), at most `window` chunks in
    /// the host's hands.
    pub(crate) fn new(at: Option<u64>, window: u32, holders: &mut StreamHolders) -> ReadStream {
        holders.next_serial += 1;
        ReadStream {
            at,
            window,
            held: 0,
            paused: false,
            serial: holders.next_serial,
        }
    }

    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        opcode::Read::new(fd, std::ptr::null_mut(), buffers.buffer_size())
            .offset(file_offset(self.at))
            .buf_group(RECV_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    /// Stream op `key` delivers `res` bytes in `buffer`: true when it must pause now.
    pub(crate) fn delivered(
        &mut self,
        key: usize,
        res: i32,
        buffer: u16,
        holders: &mut StreamHolders,
    ) -> bool {
        self.at = self.at.map(|at| at + res as u64);
        self.held += 1;
        self.paused = self.held >= self.window;
        if let Some(slot) = holders.holder.get_mut(usize::from(buffer)) {
            *slot = Some((key, self.serial));
        }
        self.paused
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
