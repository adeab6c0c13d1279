//! Connect a stream socket. The socket is exposed to the host only when the connect
//! succeeds; on failure the worker closes it.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};
use socket2::SockAddr;

pub(crate) struct Connect {
    /// Read by the kernel while in flight, hence boxed (stable address).
    addr: Box<SockAddr>,
}

impl Connect {
    pub(crate) fn new(addr: SockAddr) -> Connect {
        Connect {
            addr: Box::new(addr),
        }
    }

    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        opcode::Connect::new(fd, self.addr.as_ptr(), self.addr.len()).build()
    }
}
