//! A file `readv`/`writev` over several host buffers. A partial write is resubmitted
//! for the rest; a read's buffers go back to the host with what was read.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

use super::file::file_offset;
use crate::pieces::BufferRef;

/// A `readv`/`writev` over host buffer slices. A partial write is resubmitted for the
/// rest: `first` skips the iovecs already done, the first remaining one is trimmed.
pub(crate) struct VectoredIo {
    iovecs: Box<[libc::iovec]>,
    buffers: Box<[BufferRef]>,
    write: bool,
    at: Option<u64>,
    first: usize,
    done: u64,
    total: u64,
}

// SAFETY: the iovecs point into the worker's buffer pool, which moves with the worker.
unsafe impl Send for VectoredIo {}

impl VectoredIo {
    /// Over `iovecs` into the pieces or buffers `buffers` (each lent once, by the
    /// caller), `total` bytes at file offset `at` (`None`: the file position).
    pub(crate) fn new(
        iovecs: Box<[libc::iovec]>,
        buffers: Box<[BufferRef]>,
        write: bool,
        at: Option<u64>,
        total: u64,
    ) -> VectoredIo {
        VectoredIo {
            iovecs,
            buffers,
            write,
            at,
            first: 0,
            done: 0,
            total,
        }
    }

    pub(crate) fn buffers(&self) -> &[BufferRef] {
        &self.buffers
    }

    pub(crate) fn is_write(&self) -> bool {
        self.write
    }

    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        let rest = &self.iovecs[self.first..];
        let at = file_offset(self.at.map(|at| at + self.done));
        if self.write {
            opcode::Writev::new(fd, rest.as_ptr(), rest.len() as u32)
                .offset(at)
                .build()
        } else {
            opcode::Readv::new(fd, rest.as_ptr(), rest.len() as u32)
                .offset(at)
                .build()
        }
    }

    /// Counts a write attempt's result; true when bytes are left to write after it.
    pub(crate) fn advance(&mut self, res: i32) -> bool {
        if res > 0 {
            self.skip(res as u64);
        }
        res > 0 && self.done < self.total
    }

    /// A write's result once it stops after an attempt that returned `res`.
    pub(crate) fn result(&self, res: i32) -> i32 {
        super::transfer_result(res, self.done, self.total, -libc::EIO)
    }

    /// Marks `n` more bytes done: drops finished iovecs, trims the next.
    fn skip(&mut self, n: u64) {
        self.done += n;
        let mut left = n as usize;
        while let Some(iov) = self.iovecs.get_mut(self.first) {
            if left < iov.iov_len {
                // SAFETY: left < iov_len, so the new base stays inside the buffer.
                iov.iov_base = unsafe { iov.iov_base.cast::<u8>().add(left) }.cast();
                iov.iov_len -= left;
                return;
            }
            left -= iov.iov_len;
            self.first += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_vectored_write_resumes_mid_buffer() {
        let mut bytes = [0u8; 10];
        let base = bytes.as_mut_ptr();
        let iovec = |start: usize, len: usize| libc::iovec {
            // SAFETY: start < bytes.len().
            iov_base: unsafe { base.add(start) }.cast(),
            iov_len: len,
        };
        let iovecs = vec![iovec(0, 4), iovec(4, 6)].into();
        let buffers = vec![BufferRef::whole(0), BufferRef::whole(1)].into();
        let mut io = VectoredIo::new(iovecs, buffers, true, Some(100), 10);
        assert!(io.advance(6), "4 bytes left");
        assert_eq!((io.first, io.done), (1, 6));
        assert_eq!(io.iovecs[1].iov_len, 4);
        assert_eq!(io.iovecs[1].iov_base, iovec(6, 0).iov_base);
        assert!(!io.advance(4), "all written");
        assert_eq!((io.first, io.done), (2, 10));
        assert_eq!(io.result(4), 10);
    }
}
