//! What a CQE is for, in one place. An op's `user_data` is its slab key (never an fd:
//! fds are reused, keys are not while in flight); high bits mark the CQEs that belong
//! to an op without being its result (its linked timeout, an accept's back-off timer)
//! and the sender's own CQE of a message; one sentinel marks fire-and-forget SQEs.
//!
//! A message from another worker carries the sender's tag, any 64-bit value, as its
//! `user_data`, so it is told apart by its flags instead: the upper half holds `MARK`,
//! which the kernel never sets on our own ops' CQEs (they only use the upper half for a
//! buffer id, and then set `IORING_CQE_F_BUFFER`, bit 0, which messages never do), and
//! the message kind sits in bits 8..16, clear of every kernel flag bit. Passing our
//! flags through `MSG_RING` needs Linux >= 6.3 (`messaging::supported`).

/// Completions of fire-and-forget SQEs (cancel requests, timer removals).
pub(crate) const IGNORED: u64 = u64::MAX;
/// Marks the linked-timeout (or separate timer) CQE of op `key`.
const TIMEOUT_BIT: u64 = 1 << 62;
/// Marks the sender's own CQE for a message it sent: `SEND_BIT | outbox key`.
const SEND_BIT: u64 = 1 << 61;
/// Marks the back-off timer CQE of op `key` (an accept waiting out a transient error).
const BACKOFF_BIT: u64 = 1 << 60;

const MARK: u32 = 0x10A7_0000;
const KIND_SHIFT: u32 = 8;

/// What a message CQE carries in `res`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Wire {
    /// The host's 32-bit value.
    Plain = 1,
    /// The slot index of a payload in transit.
    Payload = 2,
    /// The slot index of a socket in transit.
    Socket = 3,
    /// The value given to the broadcast.
    StopRequest = 4,
}

impl Wire {
    /// The CQE flags a message of this kind arrives with.
    pub(crate) fn flags(self) -> u32 {
        MARK | (self as u32) << KIND_SHIFT
    }
}

/// Who a CQE is for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Cqe {
    /// A message from another worker (`user_data` is the sender's tag).
    Message(Wire),
    /// A fire-and-forget SQE: nothing to do.
    Ignored,
    /// The outcome of message `key` of this worker's outbox.
    Sent(usize),
    /// The back-off timer of op `key` ended.
    Backoff(usize),
    /// The timeout of op `key` fired or was cancelled.
    Timeout(usize),
    /// A result of op `key`.
    Op(usize),
}

/// Decodes a CQE's `user_data` and `flags`.
#[inline]
pub(crate) fn decode(user_data: u64, flags: u32) -> Cqe {
    // Checked first: a message's user_data is the sender's tag, any 64-bit value.
    if let Some(wire) = incoming(flags) {
        return Cqe::Message(wire);
    }
    if user_data == IGNORED {
        Cqe::Ignored
    } else if user_data & SEND_BIT != 0 {
        Cqe::Sent((user_data & !SEND_BIT) as usize)
    } else if user_data & BACKOFF_BIT != 0 {
        Cqe::Backoff((user_data & !BACKOFF_BIT) as usize)
    } else if user_data & TIMEOUT_BIT != 0 {
        Cqe::Timeout((user_data & !TIMEOUT_BIT) as usize)
    } else {
        Cqe::Op(user_data as usize)
    }
}

/// The kind of message a CQE is, or `None` for the CQE of one of our own ops.
#[inline]
pub(crate) fn incoming(flags: u32) -> Option<Wire> {
    const IORING_CQE_F_BUFFER: u32 = 1;
    if flags & 0xFFFF_0000 != MARK || flags & IORING_CQE_F_BUFFER != 0 {
        return None;
    }
    match (flags & 0xFFFF) >> KIND_SHIFT {
        1 => Some(Wire::Plain),
        2 => Some(Wire::Payload),
        3 => Some(Wire::Socket),
        4 => Some(Wire::StopRequest),
        _ => None,
    }
}

/// The `user_data` of op `key`'s own SQE.
#[inline]
pub(crate) fn op(key: usize) -> u64 {
    key as u64
}

/// The `user_data` of op `key`'s timeout.
#[inline]
pub(crate) fn timeout(key: usize) -> u64 {
    key as u64 | TIMEOUT_BIT
}

/// The `user_data` of op `key`'s back-off timer.
pub(crate) fn backoff(key: usize) -> u64 {
    key as u64 | BACKOFF_BIT
}

/// The `user_data` of the SQE that sends outbox message `key`.
pub(crate) fn sent(key: usize) -> u64 {
    key as u64 | SEND_BIT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_decodes_back() {
        for key in [0, 1, 4095, (1 << 30) - 1] {
            assert_eq!(decode(op(key), 0), Cqe::Op(key));
            assert_eq!(decode(timeout(key), 0), Cqe::Timeout(key));
            assert_eq!(decode(backoff(key), 0), Cqe::Backoff(key));
            assert_eq!(decode(sent(key), 0), Cqe::Sent(key));
        }
        assert_eq!(decode(IGNORED, 0), Cqe::Ignored);
        for wire in [Wire::Plain, Wire::Payload, Wire::Socket, Wire::StopRequest] {
            assert_eq!(decode(op(7), wire.flags()), Cqe::Message(wire));
            // A buffer id in the upper half comes with IORING_CQE_F_BUFFER.
            assert_eq!(decode(op(7), wire.flags() | 1), Cqe::Op(7));
        }
    }
}
