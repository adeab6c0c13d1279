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

use crate::buffers::RECV_GROUP;
use crate::completion::*;
use crate::error::Result;
use crate::ops::{Op, Work};
use crate::sockets::SocketKind;
use crate::worker::Worker;

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
}

impl Worker {
    /// Streams `file` from offset `at` (`IOT_OFFSET_CURRENT`: the file position), at most
    /// `window` chunks in the host's hands (0: a quarter of the receive buffers).
    pub(crate) fn file_read_stream(
        &mut self,
        file: u64,
        at: u64,
        window: u32,
        tag: u64,
        timeout_ms: u32,
    ) -> Result<()> {
        self.sockets.get_kind(file, SocketKind::File)?;
        let window = match window {
            0 => (self.buffers.recv_count() / 4).max(1),
            n => n,
        };
        self.stream_holders.next_serial += 1;
        let stream = ReadStream {
            at: crate::files::position(at)?,
            window,
            held: 0,
            paused: false,
            serial: self.stream_holders.next_serial,
        };
        let work = Work::ReadStream(stream);
        self.start(Op::new(tag, IOT_KIND_FILE_READ, file, work, timeout_ms))
            .map(drop)
    }

    pub(crate) fn stream_entry(&self, fd: Fd, stream: &ReadStream) -> squeue::Entry {
        opcode::Read::new(fd, std::ptr::null_mut(), self.buffers.buffer_size())
            .offset(stream.at.unwrap_or(crate::files::IOT_OFFSET_CURRENT))
            .buf_group(RECV_GROUP)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    }

    /// A chunk (or the end) arrived: hand it over and read on, pause, or finish.
    pub(crate) fn finish_stream(
        &mut self,
        key: usize,
        flags: u32,
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
        let buffer = self.take_buffer(flags, !delivered);
        let Some(buffer) = buffer.filter(|_| delivered) else {
            if res > 0 {
                completion.result = -libc::ECANCELED;
            }
            return self.end_op(key, completion);
        };
        let Work::ReadStream(stream) = &mut self.ops[key].work else {
            return self.end_op(key, completion);
        };
        stream.at = stream.at.map(|at| at + res as u64);
        stream.held += 1;
        stream.paused = stream.held >= stream.window;
        let (paused, serial) = (stream.paused, stream.serial);
        if let Some(slot) = self.stream_holders.holder.get_mut(usize::from(buffer)) {
            *slot = Some((key, serial));
        }
        completion.flags = IOT_COMPLETION_BUFFER | IOT_COMPLETION_MORE;
        completion.buffer_id = buffer;
        if paused {
            self.ops[key].starved = true;
        } else {
            self.read_next_chunk(key);
        }
        Some(completion)
    }

    /// Resubmits stream `key`; when that fails the stream ends with the error, after
    /// the chunk being delivered now.
    fn read_next_chunk(&mut self, key: usize) {
        if let Err(code) = self.submit_attempt(key) {
            let completion = self.ops[key].completion(code);
            self.end_op_later(key, completion);
        }
    }

    /// Buffer `id` went back to the receive ring (released by the host, or sent on and
    /// done): if a paused stream delivered it, the stream may go on.
    pub(crate) fn stream_buffer_returned(&mut self, id: u32) {
        let Some((key, serial)) = self
            .stream_holders
            .holder
            .get_mut(id as usize)
            .and_then(Option::take)
        else {
            return;
        };
        let Some(op) = self.ops.get_mut(key) else {
            return;
        };
        let Work::ReadStream(stream) = &mut op.work else {
            return;
        };
        if stream.serial != serial {
            return; // a chunk of a stream that already ended
        }
        stream.held = stream.held.saturating_sub(1);
        if stream.paused && stream.held < stream.window && !op.cancelled {
            stream.paused = false;
            op.starved = false;
            self.read_next_chunk(key);
        }
    }
}
