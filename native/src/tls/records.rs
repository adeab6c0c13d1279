//! Where the ciphertext stream is between TLS records, so an end of stream inside a
//! record (data lost in transit, or a truncation attack) is an error rather than a
//! clean end: rustls keeps a partial record without a word when the stream ends.

/// Bytes of a record header: content type, version, length.
const HEADER: usize = 5;

#[derive(Default)]
pub(crate) struct RecordBoundary {
    /// Header bytes of the current record seen so far.
    header: [u8; HEADER],
    header_len: usize,
    /// Body bytes of the current record still to come.
    body_left: usize,
}

impl RecordBoundary {
    /// Follows `bytes` of the stream.
    pub(crate) fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == HEADER {
                self.body_left = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.header_len = 0;
            }
        }
    }

    /// Whether the stream is between records.
    pub(crate) fn between_records(&self) -> bool {
        self.header_len == 0 && self.body_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_anywhere_are_followed() {
        let stream = [
            [23, 3, 3, 0, 2, 7, 7].as_slice(),
            &[21, 3, 3, 0, 0],
            &[23, 3, 3, 1, 0],
        ]
        .concat();
        let mut whole = stream.clone();
        whole.extend(vec![0; 256]);
        for cut in 0..=whole.len() {
            let mut boundary = RecordBoundary::default();
            boundary.advance(&whole[..cut]);
            let ends = [0, 7, 12, whole.len()];
            assert_eq!(
                boundary.between_records(),
                ends.contains(&cut),
                "cut at {cut}"
            );
            boundary.advance(&whole[cut..]);
            assert!(boundary.between_records());
        }
    }
}
