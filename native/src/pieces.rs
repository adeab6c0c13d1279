//! The pieces of the receive ring's buffers that the host and operations hold.
//!
//! With an incrementally consumed ring (`IOU_PBUF_RING_INC`, Linux 6.12) the kernel
//! fills a ring buffer from the front, one receive after another: each receive takes
//! bytes from where the one before it ended, whichever socket it is for. The kernel
//! keeps no offset the application can read safely (the ring entry it advances may
//! already count receives whose completions are still queued), so the offset of each
//! buffer is tracked here, by completions in the order the kernel posts them (it
//! consumes and posts under the same lock). Each receive hands out one *piece*: its
//! bytes, at its own offset. Without incremental consumption every receive takes a
//! whole buffer, which is then one piece at offset 0.
//!
//! A piece arrives with its receive's CQE and is the receiving op's until the op hands
//! it to the host (an op with a timeout completes only once its timer's CQE is in
//! too); then it is held by the host or lent to an operation (a send of its bytes). It
//! is named by buffer id and start offset; a buffer goes back to the ring only once the
//! kernel is done with it and every piece of it is back. The pieces of a buffer are
//! kept in offset order, live ones only: pieces usually come back in the order they
//! were handed out, so most releases take the front one.

use std::collections::VecDeque;

use crate::error::{Result, IOT_E_BAD_BUFFER};

/// Bytes of pool buffer `id` from `offset`: in a receive buffer, inside one piece (and
/// naming it); in any other buffer, which the host holds whole, anywhere.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct BufferRef {
    pub(crate) id: u32,
    pub(crate) offset: u32,
}

impl BufferRef {
    /// The start of buffer `id` (a buffer held whole).
    pub(crate) fn whole(id: u32) -> BufferRef {
        BufferRef { id, offset: 0 }
    }
}

/// Who hears when a piece comes back.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum Origin {
    #[default]
    Nobody,
    /// A stream socket's receive: it counts against the socket's receive credit.
    Socket(u64),
    /// A chunk of the read stream in op slot `key` (its `serial` tells it from a later
    /// stream in the same slot).
    ReadStream { key: u32, serial: u64 },
}

/// Who has a piece.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Holder {
    /// The receive it arrived with, until its completion hands it over.
    Arriving,
    Host,
    /// An operation the host lent it to (a send of its bytes).
    Lent,
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    start: u32,
    len: u32,
    holder: Holder,
    origin: Origin,
}

impl Piece {
    fn end(&self) -> u32 {
        self.start + self.len
    }
}

#[derive(Default)]
struct Buffer {
    /// Live pieces by start offset.
    out: VecDeque<Piece>,
    /// Where the kernel's next receive into this buffer starts.
    next: u32,
}

/// Pieces per receive buffer, made on first use (a worker that never grows its ring
/// never pays for the buffers past it).
#[derive(Default)]
pub(crate) struct Pieces {
    buffers: Vec<Buffer>,
    /// Pieces the host holds or lent, in all buffers.
    held: u32,
}

impl Pieces {
    fn buffer(&mut self, id: u32) -> &mut Buffer {
        let index = id as usize;
        if index >= self.buffers.len() {
            self.buffers.resize_with(index + 1, Buffer::default);
        }
        &mut self.buffers[index]
    }

    /// Buffer `id` goes (back) into the ring: the kernel starts it at offset 0.
    pub(crate) fn restart(&mut self, id: u32) {
        self.buffer(id).next = 0;
    }

    /// The kernel put `len` bytes into buffer `id` after the ones before: a new piece,
    /// arriving (see `hand_over`); returns its start.
    pub(crate) fn cut(&mut self, id: u32, len: u32) -> u32 {
        let buffer = self.buffer(id);
        let start = buffer.next;
        buffer.next = start.saturating_add(len);
        buffer.out.push_back(Piece {
            start,
            len,
            holder: Holder::Arriving,
            origin: Origin::Nobody,
        });
        start
    }

    /// The arriving piece at `start` is the host's now.
    pub(crate) fn hand_over(&mut self, id: u32, start: u32) {
        if let Ok((index, _)) = self.holding(id, start, 0, Holder::Arriving) {
            self.buffers[id as usize].out[index].holder = Holder::Host;
            self.held += 1;
        }
    }

    /// Whether buffer `id` has no piece out.
    pub(crate) fn none_out(&self, id: u32) -> bool {
        self.buffers
            .get(id as usize)
            .map_or(true, |buffer| buffer.out.is_empty())
    }

    /// Pieces the host holds or lent, in all buffers.
    pub(crate) fn held(&self) -> u32 {
        self.held
    }

    /// Receive buffers with a piece the host holds or lent.
    pub(crate) fn buffers_held(&self) -> usize {
        let held = |p: &Piece| p.holder != Holder::Arriving;
        self.buffers
            .iter()
            .filter(|b| b.out.iter().any(held))
            .count()
    }

    /// Who hears when piece `at` of buffer `id` (the host's) comes back.
    pub(crate) fn set_origin(&mut self, id: u32, at: u32, origin: Origin) {
        if let Ok((index, _)) = self.holding(id, at, 0, Holder::Host) {
            self.buffers[id as usize].out[index].origin = origin;
        }
    }

    /// The index of the piece of buffer `id` that `holder` has and that holds bytes
    /// `[offset, offset + len)`. `IOT_E_BAD_BUFFER` when no such piece holds `offset`,
    /// `-EINVAL` when the range runs past its piece.
    fn holding(&self, id: u32, offset: u32, len: u32, holder: Holder) -> Result<(usize, &Piece)> {
        let out = &self.buffers.get(id as usize).ok_or(IOT_E_BAD_BUFFER)?.out;
        // The last piece starting at or before `offset`. Most lookups are of the
        // newest piece (just received) or the oldest (released in order).
        let index = match (out.front(), out.back()) {
            (_, Some(last)) if last.start <= offset => out.len() - 1,
            (Some(first), _) if first.start <= offset && out[1].start > offset => 0,
            _ => out
                .partition_point(|p| p.start <= offset)
                .checked_sub(1)
                .ok_or(IOT_E_BAD_BUFFER)?,
        };
        let piece = &out[index];
        if piece.holder != holder || offset > piece.end() {
            return Err(IOT_E_BAD_BUFFER);
        }
        match offset.checked_add(len) {
            Some(end) if end <= piece.end() => Ok((index, piece)),
            _ => Err(-libc::EINVAL),
        }
    }

    /// Checks that the host holds bytes `[offset, offset + len)` of buffer `id`, inside
    /// one piece; returns that piece's start and length.
    pub(crate) fn check_host_range(&self, id: u32, offset: u32, len: u32) -> Result<(u32, u32)> {
        let (_, piece) = self.holding(id, offset, len, Holder::Host)?;
        Ok((piece.start, piece.len))
    }

    /// Lends the host's piece holding `offset` to an operation.
    pub(crate) fn lend(&mut self, id: u32, offset: u32) -> Result<()> {
        let (index, _) = self.holding(id, offset, 0, Holder::Host)?;
        self.buffers[id as usize].out[index].holder = Holder::Lent;
        Ok(())
    }

    /// An operation gives the piece holding `offset` back to the host (it read into
    /// it). False if no lent piece holds it.
    pub(crate) fn return_to_host(&mut self, id: u32, offset: u32) -> bool {
        let Ok((index, _)) = self.holding(id, offset, 0, Holder::Lent) else {
            return false;
        };
        self.buffers[id as usize].out[index].holder = Holder::Host;
        true
    }

    /// The host gives back the piece starting at `start` (exactly: a piece is named by
    /// its start). `IOT_E_BAD_BUFFER` if it holds no piece starting there.
    pub(crate) fn release(&mut self, id: u32, start: u32) -> Result<Origin> {
        let (index, piece) = self.holding(id, start, 0, Holder::Host)?;
        if piece.start != start {
            return Err(IOT_E_BAD_BUFFER);
        }
        Ok(self.remove(id, index))
    }

    /// An operation is done with the piece holding `offset` (its bytes went out).
    pub(crate) fn release_lent(&mut self, id: u32, offset: u32) -> Option<Origin> {
        let (index, _) = self.holding(id, offset, 0, Holder::Lent).ok()?;
        Some(self.remove(id, index))
    }

    fn remove(&mut self, id: u32, index: usize) -> Origin {
        self.held -= 1;
        let out = &mut self.buffers[id as usize].out;
        let piece = out.remove(index).expect("index found above");
        piece.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_cut_in_order_and_released_by_their_start() {
        let mut pieces = Pieces::default();
        pieces.restart(3);
        assert_eq!(pieces.cut(3, 64), 0);
        assert_eq!(pieces.cut(3, 10), 64);
        assert_eq!(pieces.cut(3, 6), 74);
        assert_eq!(
            pieces.release(3, 0),
            Err(IOT_E_BAD_BUFFER),
            "not handed over"
        );
        assert_eq!((pieces.held(), pieces.buffers_held()), (0, 0));
        for start in [0, 64, 74] {
            pieces.hand_over(3, start);
        }
        assert_eq!((pieces.held(), pieces.buffers_held()), (3, 1));
        assert_eq!(pieces.release(3, 70), Err(IOT_E_BAD_BUFFER), "not a start");
        assert_eq!(
            pieces.release(3, 80),
            Err(IOT_E_BAD_BUFFER),
            "past the last"
        );
        assert_eq!(
            pieces.release(4, 0),
            Err(IOT_E_BAD_BUFFER),
            "another buffer"
        );
        assert_eq!(pieces.release(3, 64), Ok(Origin::Nobody));
        assert_eq!(pieces.release(3, 64), Err(IOT_E_BAD_BUFFER), "twice");
        assert!(!pieces.none_out(3));
        pieces.release(3, 74).expect("last");
        pieces.release(3, 0).expect("first");
        assert!(pieces.none_out(3));
        assert_eq!(pieces.held(), 0);
    }

    #[test]
    fn a_lent_piece_is_the_operations_until_it_comes_back() {
        let mut pieces = Pieces::default();
        let (a, b) = (pieces.cut(0, 100), pieces.cut(0, 100));
        pieces.hand_over(0, a);
        pieces.hand_over(0, b);
        pieces.set_origin(0, b, Origin::Socket(7));
        assert_eq!(pieces.check_host_range(0, b + 10, 90), Ok((100, 100)));
        assert_eq!(pieces.check_host_range(0, b + 10, 91), Err(-libc::EINVAL));
        pieces.lend(0, b + 10).expect("lend");
        assert_eq!(pieces.release(0, b), Err(IOT_E_BAD_BUFFER), "lent");
        assert_eq!(pieces.lend(0, b), Err(IOT_E_BAD_BUFFER), "lent twice");
        assert!(pieces.return_to_host(0, b + 50));
        pieces.lend(0, b).expect("lent again");
        assert_eq!(pieces.release_lent(0, b + 99), Some(Origin::Socket(7)));
        assert_eq!(pieces.release_lent(0, b), None, "already back");
        assert_eq!(pieces.release(0, a), Ok(Origin::Nobody));
    }
}
