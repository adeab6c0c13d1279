//! When the receive ring grows. A receive that finds the ring empty doubles it at once
//! when its attempt was made against the ring's current size and the ring is within
//! its budget. Otherwise the receive waits for a buffer to come back, and if none has
//! by the end of the next drain the ring doubles then (up to the pool's receive
//! buffers).
//!
//! - An attempt made before the ring last grew says nothing of the grown ring: a
//!   burst's failures reach several drains, and doubling for each of them grew a
//!   packed ring from 16 to 4,096 buffers where 500 were used (2,000 connections x 4
//!   KiB).
//! - Past its budget (16 KiB of packed buffers per open socket, at least 1 MiB) the
//!   ring waits a drain too: what a host sends on comes back within its turn, and the
//!   bytes wait in the sockets meanwhile, not in memory of ours. A Dart echo of 64 KiB
//!   messages on 64 connections grew the ring to 128 buffers, 8 MiB resident, for the
//!   same round trips 32 buffers serve.
//! - The wait is one drain, never a buffer's return: a host that keeps every piece it
//!   got (a message it needs whole before it releases any) still receives everything,
//!   as the ring grows drain by drain. A receive that waited for a buffer to come back
//!   waited for ever there. Receives still waiting after some were fed from buffers
//!   that came back wait on from that drain; a wait that began while a flush reaped
//!   completions counts from the next drain. When nothing else would bring that
//!   drain, a CQE posted for it does (`AtDrainEnd::WakeForNextDrain`, and on arming).
//! - The budget counts every handle of the worker's socket table (listeners too).

/// Packed ring bytes per open socket that the ring grows to at once.
const BUDGET_PER_SOCKET: u64 = 16 << 10;
/// Packed ring bytes the ring grows to at once, however few sockets are open.
const BUDGET_FLOOR: u64 = 1 << 20;

/// The receive ring as a receive that found it empty met it.
pub(crate) struct RingState {
    /// Buffers the ring holds when none is out.
    pub(crate) target: u32,
    pub(crate) buffer_size: u32,
    /// Receives are packed (each takes bytes of a shared buffer, not a whole one).
    pub(crate) packed: bool,
    pub(crate) open_sockets: usize,
}

/// What the end of a drain does for receives waiting for the ring.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AtDrainEnd {
    Nothing,
    /// The ring doubles: nothing came back since the drain they began waiting in.
    Grow,
    /// They began waiting in this drain: the next one must come, also to a host that
    /// would otherwise sleep (a CQE brings it).
    WakeForNextDrain,
}

#[derive(Default)]
pub(crate) struct RingGrowth {
    /// How many times the ring grew; an attempt stamped with an older one is stale.
    epoch: u32,
    /// Drains so far.
    drains: u64,
    /// The drain in which receives began waiting for the ring, while they wait.
    waiting_since: Option<u64>,
}

impl RingGrowth {
    /// The stamp of an attempt made now.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    pub(crate) fn drain_started(&mut self) {
        self.drains = self.drains.wrapping_add(1);
    }

    /// How many buffers a receive attempted at `attempt_epoch` that found `ring` empty
    /// adds to it now: as many as it holds, up to its budget; none when the receive
    /// waits instead (see `waiting`).
    pub(crate) fn growth_now(&self, attempt_epoch: u32, ring: &RingState) -> u32 {
        if attempt_epoch != self.epoch {
            return 0;
        }
        let double = Self::doubling(ring.target);
        if !ring.packed {
            return double;
        }
        let budget = (ring.open_sockets as u64 * BUDGET_PER_SOCKET).max(BUDGET_FLOOR);
        let budget_buffers = budget.div_ceil(u64::from(ring.buffer_size.max(1)));
        let room = budget_buffers.saturating_sub(u64::from(ring.target));
        room.min(u64::from(double)) as u32
    }

    /// How many buffers doubling a ring of `ring_target` adds (what receives that
    /// waited a drain for it add).
    pub(crate) fn doubling(ring_target: u32) -> u32 {
        ring_target.max(1)
    }

    /// The ring grew.
    pub(crate) fn grew(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    /// A receive waits for the ring: in a drain, or between two (`outside_drain`: a
    /// flush reaping completions), when the wait counts from the next drain.
    pub(crate) fn waiting(&mut self, outside_drain: bool) {
        let drain = self.drains + u64::from(outside_drain);
        self.waiting_since.get_or_insert(drain);
    }

    /// Whether a CQE must bring the next drain: receives began waiting for the ring
    /// and still do (`receives_wait`), and it is empty.
    pub(crate) fn needs_wake(&self, receives_wait: bool, ring_has_buffers: bool) -> bool {
        self.waiting_since.is_some() && receives_wait && !ring_has_buffers
    }

    /// Every CQE of the drain is in: `receives_wait` for the ring, which
    /// `ring_has_buffers` or not.
    pub(crate) fn at_drain_end(
        &mut self,
        receives_wait: bool,
        ring_has_buffers: bool,
    ) -> AtDrainEnd {
        let Some(since) = self.waiting_since else {
            return AtDrainEnd::Nothing;
        };
        if !receives_wait {
            self.waiting_since = None;
            AtDrainEnd::Nothing
        } else if ring_has_buffers {
            // Some are fed from what came back; the others wait on from now (a receive
            // fed had bytes waiting: its completion brings the next drain).
            self.waiting_since = Some(self.drains);
            AtDrainEnd::Nothing
        } else if since >= self.drains {
            AtDrainEnd::WakeForNextDrain
        } else {
            self.waiting_since = None;
            AtDrainEnd::Grow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(target: u32, open_sockets: usize) -> RingState {
        RingState {
            target,
            buffer_size: 64 << 10,
            packed: true,
            open_sockets,
        }
    }

    #[test]
    fn a_fresh_attempt_doubles_the_ring_up_to_its_budget() {
        let growth = RingGrowth::default();
        // 1 MiB of 64 KiB buffers is 16; 128 sockets make it 2 MiB, 32 buffers.
        assert_eq!(growth.growth_now(0, &packed(4, 1)), 4);
        assert_eq!(growth.growth_now(0, &packed(12, 1)), 4);
        assert_eq!(growth.growth_now(0, &packed(16, 1)), 0);
        assert_eq!(growth.growth_now(0, &packed(16, 128)), 16);
        assert_eq!(growth.growth_now(0, &packed(32, 128)), 0);
        assert_eq!(RingGrowth::doubling(32), 32);
    }

    #[test]
    fn a_whole_buffer_ring_has_no_budget() {
        let ring = RingState {
            packed: false,
            ..packed(1 << 15, 1)
        };
        assert_eq!(RingGrowth::default().growth_now(0, &ring), 1 << 15);
    }

    #[test]
    fn an_attempt_made_before_the_ring_grew_does_not_grow_it() {
        let mut growth = RingGrowth::default();
        growth.grew();
        assert_eq!(growth.growth_now(0, &packed(8, 1)), 0);
        assert_eq!(growth.growth_now(1, &packed(8, 1)), 8);
    }

    /// The end of the drain in which a wait began posts a wake-up; the next one grows
    /// the ring.
    fn assert_grows_a_drain_later(growth: &mut RingGrowth) {
        assert_eq!(
            growth.at_drain_end(true, false),
            AtDrainEnd::WakeForNextDrain
        );
        growth.drain_started();
        assert_eq!(growth.at_drain_end(true, false), AtDrainEnd::Grow);
    }

    #[test]
    fn waiting_receives_grow_the_ring_one_drain_later() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        assert!(growth.needs_wake(true, false));
        assert_eq!(
            growth.at_drain_end(true, false),
            AtDrainEnd::WakeForNextDrain
        );
        growth.drain_started();
        growth.waiting(false); // another receive: the wait still began a drain ago
        assert_eq!(growth.at_drain_end(true, false), AtDrainEnd::Grow);
        assert!(!growth.needs_wake(true, false));
        assert_eq!(growth.at_drain_end(true, false), AtDrainEnd::Nothing);
    }

    #[test]
    fn receives_left_waiting_after_a_feed_wait_on_from_that_drain() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        growth.drain_started();
        // Buffers came back: some are fed, the others' wait starts again.
        assert_eq!(growth.at_drain_end(true, true), AtDrainEnd::Nothing);
        assert!(growth.needs_wake(true, false));
        assert_grows_a_drain_later(&mut growth);
    }

    #[test]
    fn a_wait_that_began_between_drains_counts_from_the_next() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(true);
        growth.drain_started();
        assert_grows_a_drain_later(&mut growth);
    }

    #[test]
    fn nothing_happens_once_no_receive_waits() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        growth.drain_started();
        assert_eq!(growth.at_drain_end(false, false), AtDrainEnd::Nothing);
        assert!(!growth.needs_wake(true, false));
    }
}
