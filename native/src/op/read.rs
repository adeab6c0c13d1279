//! A file read into (part of) one host buffer, which the completion hands back
//! (`IOT_COMPLETION_BUFFER`, whatever the outcome).

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::file::file_offset;
use crate::abi::*;
use crate::buffers::BufferPool;
use crate::pieces::BufferRef;

/// A read into `len` bytes of a host buffer (or piece) from `into`.
pub(crate) struct ReadInto {
    pub(crate) into: BufferRef,
    len: u32,
    at: Option<u64>,
}

impl ReadInto {
    /// At file offset `at` (`None`: the file position); the range was checked.
    pub(crate) fn new(into: BufferRef, len: u32, at: Option<u64>) -> ReadInto {
        ReadInto { into, len, at }
    }

    /// The fixed-buffer opcode when the pool is registered.
    pub(crate) fn entry(&self, fd: Fd, buffers: &BufferPool) -> squeue::Entry {
        // SAFETY: offset + len was checked against the buffer size at queue time.
        let ptr = unsafe { buffers.ptr(self.into.id).add(self.into.offset as usize) };
        let at = file_offset(self.at);
        match buffers.fixed_index(self.into.id) {
            Some(index) => opcode::ReadFixed::new(fd, ptr, self.len, index)
                .offset(at)
                .build(),
            None => opcode::Read::new(fd, ptr, self.len).offset(at).build(),
        }
    }

    /// Names the buffer in the completion that hands it back.
    pub(crate) fn hand_back(&self, completion: &mut iot_completion) {
        completion.flags |= IOT_COMPLETION_BUFFER;
        completion.buffer_id = self.into.id as u16;
        completion.offset = self.into.offset;
    }
}
