//! Shut down one or both directions of a socket, after every send queued before it.
//! On a TLS socket, shutting down the sending side first sends a close_notify alert,
//! so the peer can tell the end of the stream from a cut connection.

use io_uring::types::Fd;
use io_uring::{opcode, squeue};

pub(crate) struct Shutdown {
    /// `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
    pub(crate) how: i32,
    /// A TLS socket's close_notify record, sent before the shutdown.
    close_notify: Vec<u8>,
    notified: usize,
}

impl Shutdown {
    pub(crate) fn new(how: i32) -> Shutdown {
        Shutdown {
            how,
            close_notify: Vec::new(),
            notified: 0,
        }
    }

    /// Whether the sending side goes down (a TLS session then says goodbye first).
    pub(crate) fn ends_sending(&self) -> bool {
        self.how != libc::SHUT_RD
    }

    /// Sends `record` before shutting down.
    pub(crate) fn notify_first(&mut self, record: Vec<u8>) {
        self.close_notify = record;
    }

    pub(crate) fn entry(&self, fd: Fd) -> squeue::Entry {
        match self
            .close_notify
            .get(self.notified..)
            .filter(|rest| !rest.is_empty())
        {
            Some(rest) => opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .flags(libc::MSG_NOSIGNAL)
                .build(),
            None => opcode::Shutdown::new(fd, self.how).build(),
        }
    }

    /// After an attempt that sent (part of) the close_notify: `Some((true, result))`,
    /// the shutdown (or the rest) goes next (`result` if it cannot); a failed send gives the alert up (the peer
    /// is gone) and shuts down all the same. `None` after the shutdown itself.
    pub(crate) fn advance(&mut self, res: i32) -> Option<(bool, i32)> {
        if self.notified >= self.close_notify.len() {
            return None;
        }
        match res {
            n if n > 0 => self.notified += n as usize,
            _ => self.notified = self.close_notify.len(),
        }
        Some((true, -libc::ECANCELED))
    }
}
