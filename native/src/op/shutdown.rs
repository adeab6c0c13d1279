//! Shut down one or both directions of a socket, after every send queued before it.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

pub(crate) struct Shutdown {
    /// `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
    pub(crate) how: i32,
}

impl Shutdown {
    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        opcode::Shutdown::new(fd, self.how).build()
    }
}
