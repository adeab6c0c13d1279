//! When the receive ring grows, and by how much. A receive that finds the ring empty
//! has it grow at the end of the drain (once every completion is in) when its attempt
//! was made against the ring's current size and the ring is within its budget.
//! Otherwise the receive waits for a buffer to come back, and if none has by the end
//! of the next drain the ring grows then (up to the pool's receive buffers). Either
//! way it grows by what the receives that failed or wait need, at most doubling and
//! at most by the spare buffers.
//!
//! - Growth waits for the drain's end because only then is it known how many
//!   receives wait, and the ring is first in, first out: buffers it holds but no
//!   burst needed stay ahead of every buffer that comes back, so the next burst
//!   writes into them, and their pages become resident. Growing at a burst's first
//!   failure by doubling left up to half the ring so (a Dart echo of 4 KiB messages
//!   on 500 connections made 1.6-2.1 KiB resident per connection that way).
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

/// The receive ring as receives waiting for it meet it.
pub(crate) struct RingState {
    /// Buffers the ring holds when none is out.
    pub(crate) target: u32,
    pub(crate) buffer_size: u32,
    /// Receives are packed (each takes bytes of a shared buffer, not a whole one).
    pub(crate) packed: bool,
    pub(crate) open_sockets: usize,
    /// The ring may still hold a buffer (`BufferPool::ring_has_buffers`).
    pub(crate) has_buffers: bool,
    /// How many receives a buffer serves (`BufferPool::receives_per_buffer`).
    pub(crate) receives_per_buffer: u32,
    /// Receives waiting for the ring.
    pub(crate) waiting: u32,
    /// Receive buffers it may still grow by (spare ones).
    pub(crate) spare: u32,
}

impl RingState {
    /// Buffers that `receives` need.
    fn buffers_for(&self, receives: u32) -> u32 {
        receives.div_ceil(self.receives_per_buffer.max(1))
    }
}

/// What the end of a drain does for receives waiting for the ring.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AtDrainEnd {
    Nothing,
    /// The ring grows by this many buffers.
    Grow(u32),
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
    /// Current attempts that found the ring empty within its budget since the last
    /// drain's end: it grows then by what they need.
    failed: u32,
}

impl RingGrowth {
    /// The stamp of an attempt made now.
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    pub(crate) fn drain_started(&mut self) {
        self.drains = self.drains.wrapping_add(1);
    }

    /// A receive attempted at `attempt_epoch` found `ring` empty: the ring grows at
    /// the drain's end if the attempt is current and the ring within its budget.
    pub(crate) fn found_empty(&mut self, attempt_epoch: u32, ring: &RingState) {
        if attempt_epoch == self.epoch && Self::room_within_budget(ring) > 0 {
            self.failed = self.failed.saturating_add(1);
        }
    }

    /// How many buffers the ring may add at once: as many as it holds, up to its
    /// budget and the spare buffers.
    fn room_within_budget(ring: &RingState) -> u32 {
        let double = Self::doubling(ring.target).min(ring.spare);
        if !ring.packed {
            return double;
        }
        let budget = (ring.open_sockets as u64 * BUDGET_PER_SOCKET).max(BUDGET_FLOOR);
        let budget_buffers = budget.div_ceil(u64::from(ring.buffer_size.max(1)));
        let room = budget_buffers.saturating_sub(u64::from(ring.target));
        room.min(u64::from(double)) as u32
    }

    /// How many buffers doubling a ring of `ring_target` adds.
    fn doubling(ring_target: u32) -> u32 {
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
        (self.waiting_since.is_some() || self.failed > 0) && receives_wait && !ring_has_buffers
    }

    /// Every CQE of the drain is in: what happens for `ring`, and for the receives
    /// waiting for it.
    pub(crate) fn at_drain_end(&mut self, ring: &RingState) -> AtDrainEnd {
        let failed = std::mem::take(&mut self.failed);
        let receives_wait = ring.waiting > 0;
        // Every receive that failed needed room, also those tried again at once.
        let add = ring
            .buffers_for(failed.max(ring.waiting))
            .min(Self::room_within_budget(ring));
        if failed > 0 && add > 0 {
            return self.grow(add, ring);
        }
        if !receives_wait {
            self.waiting_since = None;
            return AtDrainEnd::Nothing;
        }
        let Some(since) = self.waiting_since else {
            return AtDrainEnd::Nothing;
        };
        if ring.has_buffers {
            // Some are fed from what came back; the others wait on from now (a receive
            // fed had bytes waiting: its completion brings the next drain).
            self.waiting_since = Some(self.drains);
            AtDrainEnd::Nothing
        } else if since >= self.drains {
            AtDrainEnd::WakeForNextDrain
        } else {
            let add = ring
                .buffers_for(ring.waiting)
                .min(Self::doubling(ring.target))
                .min(ring.spare);
            if add == 0 {
                // Only a buffer coming back can feed them (it resumes them itself).
                self.waiting_since = None;
                return AtDrainEnd::Nothing;
            }
            self.grow(add, ring)
        }
    }

    /// The ring grows by `add`: receives that its buffers do not feed at the drain's
    /// end wait on from this drain while it can grow further, so that it does a drain
    /// later (nothing else would: their attempts were made before it grew). Once no
    /// buffer is spare, only one coming back feeds them, and nothing wakes the host
    /// for them.
    fn grow(&mut self, add: u32, ring: &RingState) -> AtDrainEnd {
        self.waiting_since = (ring.waiting > 0 && ring.spare > add).then_some(self.drains);
        AtDrainEnd::Grow(add)
    }

    /// The drain's end fed every receive that waited: a receive that finds the ring
    /// empty later waits a drain again before it grows past its budget.
    pub(crate) fn none_waits(&mut self) {
        self.waiting_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty packed ring of `target` 64 KiB buffers, each serving one receive, with
    /// `open_sockets` and `waiting` receives.
    fn packed(target: u32, open_sockets: usize, waiting: u32) -> RingState {
        RingState {
            target,
            buffer_size: 64 << 10,
            packed: true,
            open_sockets,
            has_buffers: false,
            receives_per_buffer: 1,
            waiting,
            spare: 1 << 15,
        }
    }

    /// What the end of a drain in which `failures` current attempts found `ring`
    /// empty does.
    fn after_failures(failures: u32, ring: &RingState) -> AtDrainEnd {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        for _ in 0..failures {
            growth.found_empty(0, ring);
        }
        growth.at_drain_end(ring)
    }

    #[test]
    fn failures_grow_the_ring_at_the_drain_end_by_what_the_receives_need() {
        // Never more than doubling, and never past the budget: 1 MiB of 64 KiB
        // buffers is 16; 128 sockets make it 2 MiB, 32 buffers.
        assert_eq!(after_failures(1, &packed(4, 1, 3)), AtDrainEnd::Grow(3));
        assert_eq!(after_failures(1, &packed(4, 1, 100)), AtDrainEnd::Grow(4));
        assert_eq!(after_failures(1, &packed(12, 1, 100)), AtDrainEnd::Grow(4));
        assert_eq!(
            after_failures(1, &packed(16, 128, 100)),
            AtDrainEnd::Grow(16)
        );
        // Past the budget it waits a drain (see below; no wait began here).
        assert_eq!(after_failures(1, &packed(16, 1, 100)), AtDrainEnd::Nothing);
        assert_eq!(
            after_failures(1, &packed(32, 128, 100)),
            AtDrainEnd::Nothing
        );
    }

    #[test]
    fn receives_tried_again_at_once_count_too() {
        // They failed on an empty ring, and were tried again as buffers seemed back.
        assert_eq!(after_failures(5, &packed(8, 1, 0)), AtDrainEnd::Grow(5));
        assert_eq!(after_failures(1, &packed(8, 1, 0)), AtDrainEnd::Grow(1));
    }

    #[test]
    fn packed_buffers_serve_several_receives() {
        let ring = RingState {
            receives_per_buffer: 16,
            ..packed(8, 1, 100)
        };
        assert_eq!(after_failures(1, &ring), AtDrainEnd::Grow(7));
    }

    #[test]
    fn a_whole_buffer_ring_has_no_budget() {
        let ring = RingState {
            packed: false,
            ..packed(1 << 15, 1, 1 << 16)
        };
        assert_eq!(after_failures(1, &ring), AtDrainEnd::Grow(1 << 15));
    }

    #[test]
    fn an_attempt_made_before_the_ring_grew_does_not_grow_it() {
        let mut growth = RingGrowth::default();
        growth.grew();
        growth.found_empty(0, &packed(8, 1, 8));
        assert_eq!(growth.at_drain_end(&packed(8, 1, 8)), AtDrainEnd::Nothing);
        growth.found_empty(1, &packed(8, 1, 8));
        assert_eq!(growth.at_drain_end(&packed(8, 1, 8)), AtDrainEnd::Grow(8));
    }

    /// The end of the drain in which a wait began posts a wake-up; the next one grows
    /// the ring by what the receives need, at most doubling.
    fn assert_grows_a_drain_later(growth: &mut RingGrowth) {
        let ring = packed(8, 1, 3);
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::WakeForNextDrain);
        growth.drain_started();
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::Grow(3));
    }

    #[test]
    fn waiting_receives_grow_the_ring_one_drain_later() {
        let mut growth = RingGrowth::default();
        let ring = packed(8, 1, 100);
        growth.drain_started();
        growth.waiting(false);
        assert!(growth.needs_wake(true, false));
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::WakeForNextDrain);
        growth.drain_started();
        growth.waiting(false); // another receive: the wait still began a drain ago
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::Grow(8));
        growth.grew();
        // 16 buffers feed 16 of them; the others' wait goes on, or they would wait
        // for a buffer to come back, for ever where the host holds every one.
        assert!(growth.needs_wake(true, false));
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::WakeForNextDrain);
        growth.drain_started();
        assert_eq!(
            growth.at_drain_end(&packed(16, 1, 84)),
            AtDrainEnd::Grow(16)
        );
        growth.drain_started();
        assert_eq!(growth.at_drain_end(&packed(32, 1, 0)), AtDrainEnd::Nothing);
        assert!(!growth.needs_wake(true, false));
    }

    #[test]
    fn once_no_buffer_is_spare_nothing_wakes_the_host_for_waiting_receives() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        growth.drain_started();
        // The last 8 spare buffers join the ring: the receives they do not feed wait
        // for buffers to come back, which resume them.
        let last = RingState {
            spare: 8,
            ..packed(8, 1, 100)
        };
        assert_eq!(growth.at_drain_end(&last), AtDrainEnd::Grow(8));
        assert!(!growth.needs_wake(true, false));
        let exhausted = RingState {
            spare: 0,
            ..packed(16, 1, 84)
        };
        growth.found_empty(growth.epoch(), &exhausted);
        assert_eq!(growth.at_drain_end(&exhausted), AtDrainEnd::Nothing);
        assert!(!growth.needs_wake(true, false));
    }

    #[test]
    fn receives_left_waiting_after_a_feed_wait_on_from_that_drain() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        growth.drain_started();
        // Buffers came back: some are fed, the others' wait starts again.
        let fed = RingState {
            has_buffers: true,
            ..packed(8, 1, 3)
        };
        assert_eq!(growth.at_drain_end(&fed), AtDrainEnd::Nothing);
        assert!(growth.needs_wake(true, false));
        assert_grows_a_drain_later(&mut growth);
    }

    #[test]
    fn receives_left_waiting_after_the_ring_grew_wait_on_from_that_drain() {
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.found_empty(0, &packed(4, 1, 10));
        assert!(
            growth.needs_wake(true, false),
            "the growth needs a drain's end"
        );
        assert_eq!(growth.at_drain_end(&packed(4, 1, 10)), AtDrainEnd::Grow(4));
        growth.grew();
        assert!(growth.needs_wake(true, false));
        assert_grows_a_drain_later(&mut growth);
    }

    #[test]
    fn a_growth_that_fed_every_waiting_receive_leaves_no_wait_behind() {
        // Past the budget (16 buffers of 64 KiB for one socket): 3 receives wait a
        // drain, then the ring grows by 3, which feeds them all.
        let mut growth = RingGrowth::default();
        growth.drain_started();
        growth.waiting(false);
        let waiting = packed(16, 1, 3);
        assert_eq!(growth.at_drain_end(&waiting), AtDrainEnd::WakeForNextDrain);
        growth.drain_started();
        assert_eq!(growth.at_drain_end(&waiting), AtDrainEnd::Grow(3));
        growth.grew();
        growth.none_waits();
        // A receive that finds the grown ring empty in the next drain waits a drain.
        growth.drain_started();
        let ring = packed(19, 1, 1);
        growth.found_empty(growth.epoch(), &ring);
        growth.waiting(false);
        assert_eq!(growth.at_drain_end(&ring), AtDrainEnd::WakeForNextDrain);
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
        assert_eq!(growth.at_drain_end(&packed(8, 1, 0)), AtDrainEnd::Nothing);
        assert!(!growth.needs_wake(true, false));
    }
}
