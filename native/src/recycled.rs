//! What a finished op leaves for the next one, so steady traffic allocates none: the
//! record buffer a TLS send sealed into, a datagram's destination address and a
//! datagram receive's message header. The last two are boxed because they must stay
//! where they are while the kernel reads or writes them (an op itself moves: it may
//! wait in a socket's send queue before it goes into the slab). At most `KEPT` are
//! kept: a burst's many do not stay for good.

pub(crate) struct Recycled<T, const KEPT: usize> {
    kept: Vec<T>,
}

impl<T, const KEPT: usize> Default for Recycled<T, KEPT> {
    fn default() -> Self {
        Recycled { kept: Vec::new() }
    }
}

impl<T, const KEPT: usize> Recycled<T, KEPT> {
    /// A kept one with its old contents, for the caller to fill again.
    pub(crate) fn take(&mut self) -> Option<T> {
        self.kept.pop()
    }

    /// Keeps `value` for a later `take` (or `boxed`); its contents stay until then.
    pub(crate) fn keep(&mut self, value: T) {
        if self.kept.len() < KEPT {
            self.kept.push(value);
        }
    }
}

impl<U, const KEPT: usize> Recycled<Box<U>, KEPT> {
    /// `value` in a box: a kept one when there is one, else a new one.
    pub(crate) fn boxed(&mut self, value: U) -> Box<U> {
        match self.take() {
            Some(mut boxed) => {
                *boxed = value;
                boxed
            }
            None => Box::new(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_box_is_filled_again_and_the_keep_is_bounded() {
        const KEPT: usize = 4;
        let mut recycled = Recycled::<Box<u64>, KEPT>::default();
        let first = recycled.boxed(1);
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
