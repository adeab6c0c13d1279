//! The timespecs that timeout SQEs point to. The kernel copies a timeout's timespec
//! while it prepares the SQE, inside the `io_uring_enter` that submits it
//! (`__io_timeout_prep` reads `sqe->addr`), so each must stay where it is only until
//! then. They are staged here, in blocks that never move, and the blocks are reused
//! once a submit leaves the submission queue empty: an op with a timeout costs no
//! allocation per attempt (it used to box one timespec each).

use std::cell::UnsafeCell;
use std::time::Duration;

use io_uring::types::Timespec;

/// Timespecs per block: more ops with timeouts than this between two submits add a
/// block (kept for good).
const BLOCK: usize = 64;

#[derive(Default)]
pub(crate) struct Timespecs {
    /// Boxed: a block stays where it is when the list of blocks grows. In cells: a
    /// slot is written through a shared borrow, which leaves the pointers handed out
    /// for the block's other slots valid (a `&mut` to the block would not).
    blocks: Vec<Box<[UnsafeCell<Timespec>]>>,
    /// Timespecs staged since the submission queue was last empty.
    staged: usize,
}

impl Timespecs {
    /// `timeout_ms` as a timespec that stays where it is until the submission queue
    /// was next emptied ([`Timespecs::reuse`]).
    pub(crate) fn stage(&mut self, timeout_ms: u32) -> *const Timespec {
        let (block, slot) = (self.staged / BLOCK, self.staged % BLOCK);
        if block == self.blocks.len() {
            let fresh = (0..BLOCK).map(|_| UnsafeCell::new(Timespec::new()));
            self.blocks.push(fresh.collect());
        }
        self.staged += 1;
        let timespec = self.blocks[block][slot].get();
        // SAFETY: the slot is ours: no SQE still points at it (it was not staged since
        // the kernel last read every staged timespec), and nothing else borrows it.
        unsafe { *timespec = Timespec::from(Duration::from_millis(u64::from(timeout_ms))) };
        timespec
    }

    /// The kernel has read every staged timespec (a submit left the submission queue
    /// empty): their places can be staged again.
    pub(crate) fn reuse(&mut self) {
        self.staged = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_timespecs_stay_put_until_reused() {
        let mut timespecs = Timespecs::default();
        let first = timespecs.stage(1_500);
        // More than a block: the first one's place is unchanged.
        let later: Vec<_> = (0..BLOCK as u32 + 1)
            .map(|ms| timespecs.stage(ms))
            .collect();
        assert!(!later.contains(&first));
        // SAFETY: staged timespecs live as long as `timespecs`.
        let read = |t: *const Timespec| format!("{:?}", unsafe { *t });
        assert_eq!(
            read(first),
            format!("{:?}", Timespec::new().sec(1).nsec(500_000_000))
        );
        let blocks = timespecs.blocks.len();
        timespecs.reuse();
        assert_eq!(timespecs.stage(7), first, "reused from the start");
        assert_eq!(
            read(first),
            format!("{:?}", Timespec::new().nsec(7_000_000))
        );
        assert_eq!(timespecs.blocks.len(), blocks, "no block added by reuse");
    }
}
