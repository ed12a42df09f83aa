//! Splits a watch response into its lines, without copying the lines that lie whole in a frame.
//!
//! The API server writes one JSON object per line and flushes when nothing more is pending, so a
//! frame read from the connection usually holds many whole lines, and a line is cut in two only at
//! a frame's end. Whole lines are handed out as slices of the frame; only a cut line is copied,
//! into a carry buffer that the next frame completes.

use memchr::memchr_iter;

/// A line longer than this is an error: a server sending bytes without newlines would otherwise
/// grow the carry buffer without bound. Real objects are at most a few MiB (etcd's limit is 1.5 MiB
/// per object).
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// The carry buffer of a line cut between frames.
#[derive(Debug, Default)]
pub struct Lines {
    carry: Vec<u8>,
}

/// A line exceeded [`MAX_LINE`].
#[derive(Debug, PartialEq, Eq)]
pub struct TooLong;

impl Lines {
    /// Calls `each` with every line that `chunk` completes, in order, without its newline; empty
    /// lines are skipped. Stops at the first error of `each`.
    pub fn feed<E: From<TooLong>>(
        &mut self,
        chunk: &[u8],
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut start = 0;
        for end in memchr_iter(b'\n', chunk) {
            if self.carry.is_empty() {
                nonempty(&chunk[start..end], &mut each)?;
            } else {
                self.append(&chunk[start..end])?;
                let line = std::mem::take(&mut self.carry);
                let result = nonempty(&line, &mut each);
                // Keep the allocation for the next cut line.
                self.carry = line;
                self.carry.clear();
                result?;
            }
            start = end + 1;
        }
        self.append(&chunk[start..])?;
        Ok(())
    }

    /// Bytes of a cut line waiting for the rest of it.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.carry.len()
    }

    fn append(&mut self, part: &[u8]) -> Result<(), TooLong> {
        if self.carry.len() + part.len() > MAX_LINE {
            self.carry = Vec::new();
            return Err(TooLong);
        }
        self.carry.extend_from_slice(part);
        Ok(())
    }
}

fn nonempty<E>(line: &[u8], each: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    each(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        TooLong,
        Stop,
    }

    impl From<TooLong> for E {
        fn from(_: TooLong) -> Self {
            E::TooLong
        }
    }

    fn split(chunks: &[&[u8]]) -> (Vec<String>, usize) {
        let mut lines = Lines::default();
        let mut out = Vec::new();
        for chunk in chunks {
            lines
                .feed(chunk, |l| {
                    out.push(String::from_utf8_lossy(l).into_owned());
                    Ok::<_, E>(())
                })
                .expect("no error");
        }
        (out, lines.pending())
    }

    #[test]
    fn lines_cut_anywhere_come_out_whole_and_in_order() {
        let text = b"{\"a\":1}\n{\"b\":2}\n\n  \n{\"c\":3}\n{\"d\"";
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let (out, pending) = split(&[&text[..cut], &text[cut..cut2], &text[cut2..]]);
                assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"], "{cut} {cut2}");
                assert_eq!(pending, 4, "the unfinished line waits");
            }
        }
    }

    #[test]
    fn an_error_stops_at_that_line_and_a_huge_line_is_refused() {
        let mut lines = Lines::default();
        let mut seen = 0;
        let r = lines.feed(b"1\n2\n3\n", |l| {
            seen += 1;
            if l == b"2" { Err(E::Stop) } else { Ok(()) }
        });
        assert_eq!((r, seen), (Err(E::Stop), 2));

        let mut lines = Lines::default();
        let big = vec![b'x'; MAX_LINE / 2 + 1];
        assert_eq!(lines.feed(&big, |_| Ok::<_, E>(())), Ok(()));
        assert_eq!(lines.feed(&big, |_| Ok::<_, E>(())), Err(E::TooLong));
        assert_eq!(lines.pending(), 0, "the buffer is dropped");
    }
}
