//! The ring's registered files: a stream socket's sends name its slot in the ring's
//! file table instead of its fd, which spares the kernel an fd-table lookup and a
//! reference count taken and dropped per send (`fget`/`fput`: 2.6% of an echo
//! server's CPU at 2,000 connections, where an epoll server's `fdget` is 0.7%).
//!
//! Only on kernels whose table keeps a reference per slot (Linux 6.13). Before, a file
//! put out of the table was released only once every request that used the table
//! before it ended, in order: one send waiting on a peer that does not read would
//! hold every later close of the worker's streams, and the peers would see no end.
//!
//! The table is sparse and registered once (Linux 5.19), as large as the open-file
//! limit allows up to `MAX_SLOTS`; a socket takes the slot of its handle, so a slot
//! names at most one open socket. A slot is set or cleared by an
//! `IORING_OP_FILES_UPDATE` queued ahead of the SQEs that use it: the kernel runs it
//! in order while submitting, reading the fd from `values`, so no syscall is added. A
//! socket whose handle's slot is past the table, or a ring that refused the table,
//! keeps using its fd.
//!
//! An update's failure goes unseen (its CQE is ignored). The kernel fails one only
//! when it cannot allocate the slot's small node (`ENOMEM`): that stream's sends then
//! fail with `EBADF`, or, for a failed emptying, its socket stays open until the slot
//! is reused or the worker freed.

use std::os::fd::RawFd;

use io_uring::{opcode, squeue};

use crate::driver::ring::Ring;
use crate::error::Result;

/// Slots at most: 512 KiB of kernel memory per ring at this size.
const MAX_SLOTS: u32 = 65_536;

pub(crate) struct FixedFiles {
    /// Slots in the table; 0 when the kernel refused it.
    slots: usize,
    /// The value each queued update gives its slot, read by the kernel when it submits
    /// the update. Used in turn, one more than the submission queue has entries: the
    /// queue submits before it overflows, so a value is reused only once the update
    /// that read it was submitted. Boxed, so its address never moves.
    values: Box<[RawFd]>,
    next: usize,
    /// One past the highest slot ever set, for `clear_all`.
    used: usize,
}

impl FixedFiles {
    /// Registers an empty table on `ring` when `per_slot_references`; none when the
    /// kernel refuses it.
    pub(crate) fn new(ring: &Ring, per_slot_references: bool) -> FixedFiles {
        let slots = if per_slot_references {
            open_file_limit().min(MAX_SLOTS)
        } else {
            0
        };
        let registered = slots > 0
            && ring
                .uring()
                .submitter()
                .register_files_sparse(slots)
                .is_ok();
        let queue = ring.uring().params().sq_entries() as usize + 1;
        FixedFiles {
            slots: if registered { slots as usize } else { 0 },
            values: vec![-1; if registered { queue } else { 0 }].into_boxed_slice(),
            next: 0,
            used: 0,
        }
    }

    /// Queues the update that puts `fd` in `slot`; false when the table has no such
    /// slot or the ring has no room for the update.
    pub(crate) fn set(&mut self, ring: &mut Ring, slot: usize, fd: RawFd) -> bool {
        if slot >= self.slots {
            return false;
        }
        self.used = self.used.max(slot + 1);
        self.queue_update(ring, slot, fd).is_ok()
    }

    /// Queues the update that empties `slot`: the kernel drops its reference to the
    /// socket there when it submits it, and closing the fd then closes the socket.
    pub(crate) fn clear(&mut self, ring: &mut Ring, slot: usize) -> Result<()> {
        self.queue_update(ring, slot, -1)
    }

    /// Empties every slot now, with one syscall: a socket closed while the ring lives
    /// on (a host or a sender still holds a duplicate of its fd) must not stay open in
    /// the table.
    pub(crate) fn clear_all(&mut self, ring: &Ring) {
        if self.used > 0 {
            // Fails only when the ring is going away, which releases the table anyway.
            let _ = ring
                .uring()
                .submitter()
                .register_files_update(0, &vec![-1; self.used]);
        }
        self.used = 0;
    }

    fn queue_update(&mut self, ring: &mut Ring, slot: usize, fd: RawFd) -> Result<()> {
        let at = self.next;
        self.values[at] = fd;
        // No CQE when it succeeds (Linux 5.17): the host's completion queue is not
        // its to fill.
        let update = opcode::FilesUpdate::new(&self.values[at], 1)
            .offset(slot as i32)
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS);
        ring.push_ignored(update)?;
        // Only a queued update uses up its value.
        self.next = (at + 1) % self.values.len();
        Ok(())
    }
}

fn open_file_limit() -> u32 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    u32::try_from(limit.rlim_cur).unwrap_or(u32::MAX)
}
