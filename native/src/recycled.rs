//! Boxes that ops keep while the kernel works, kept for the next op when one ends: a
//! datagram's destination address, a datagram receive's message header. They must stay
//! where they are while the kernel reads or writes them (an op itself moves: it may
//! wait in a socket's send queue before it goes into the slab), so they are boxed, and
//! steady traffic reuses the boxes instead of allocating one per datagram.

/// Boxes kept beyond this are freed: a burst's many do not stay for good.
const KEPT: usize = 64;

pub(crate) struct Recycled<T> {
    kept: Vec<Box<T>>,
}

impl<T> Default for Recycled<T> {
    fn default() -> Self {
        Recycled { kept: Vec::new() }
    }
}

impl<T> Recycled<T> {
    /// `value` in a box: a kept one when there is one, else a new one.
    pub(crate) fn boxed(&mut self, value: T) -> Box<T> {
        match self.take() {
            Some(mut boxed) => {
                *boxed = value;
                boxed
            }
            None => Box::new(value),
        }
    }

    /// A kept box with its old value, for a value that must be made in place.
    pub(crate) fn take(&mut self) -> Option<Box<T>> {
        self.kept.pop()
    }

    /// Keeps `boxed` for a later `boxed` or `take` (its value stays until then).
    pub(crate) fn keep(&mut self, boxed: Box<T>) {
        if self.kept.len() < KEPT {
            self.kept.push(boxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_box_is_filled_again_and_the_keep_is_bounded() {
        let mut recycled = Recycled::default();
        let first = recycled.boxed(1u64);
        let place: *const u64 = &*first;
        recycled.keep(first);
        let again = recycled.boxed(2);
        assert_eq!((&*again as *const u64, *again), (place, 2), "the kept box");
        for n in 0..KEPT as u64 + 10 {
            recycled.keep(Box::new(n));
        }
        assert_eq!(recycled.kept.len(), KEPT);
    }
}
