//! Compressed responses: whether a request accepts gzip, and a gzip stage between an encoder
//! that produces chunks and the connection that sends them.
//!
//! Prometheus asks for `Accept-Encoding: gzip` on every scrape, as kube-state-metrics and
//! node_exporter answer it: at 100k pods a scrape is about 116 MiB of text and a few MiB
//! gzipped. The body is compressed as it streams: each chunk of text goes through one deflate
//! stream and whatever compressed bytes it yields are sent on, so a scrape never holds its whole
//! output, plain or compressed. The level is zlib's fastest (1): this text is so repetitive that
//! it still shrinks about 20 times, for the least CPU per series (BENCHMARKS.md).

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// The deflate level: fast, for scrapes at 100k pods within the CPU budget per series.
pub const GZIP_LEVEL: u32 = 1;

/// Whether an `Accept-Encoding` header accepts gzip (RFC 9110, 12.5.3): `gzip` (or its alias
/// `x-gzip`) listed with a non-zero weight, or `*` with a non-zero weight while gzip is not
/// refused by name. Absent or empty: identity only.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in accept_encoding.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next_back()
            .unwrap_or(1.0);
        let accepted = weight > 0.0;
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(accepted),
            "*" => any = Some(accepted),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// A gzip stream in front of `sink`: [`Self::push`] compresses a chunk and hands on what came
/// out, [`Self::finish`] the rest and the trailer. The sink answers false when the client went
/// away; then nothing more is compressed.
pub struct GzipSink<F: FnMut(Bytes) -> bool> {
    encoder: GzEncoder<Vec<u8>>,
    sink: F,
    open: bool,
}

impl<F: FnMut(Bytes) -> bool> GzipSink<F> {
    pub fn new(sink: F) -> Self {
        Self {
            encoder: GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL)),
            sink,
            open: true,
        }
    }

    /// Compresses `chunk` and sends what the stream yields; false once the sink refused.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if !self.open {
            return false;
        }
        // Writing to a Vec cannot fail.
        if self.encoder.write_all(chunk).is_err() {
            self.open = false;
            return false;
        }
        let out = std::mem::take(self.encoder.get_mut());
        if !out.is_empty() {
            self.open = (self.sink)(Bytes::from(out));
        }
        self.open
    }

    /// Ends the stream: the buffered rest and the gzip trailer go to the sink.
    pub fn finish(mut self) -> bool {
        if !self.open {
            return false;
        }
        match self.encoder.try_finish() {
            Ok(()) => {
                let out = std::mem::take(self.encoder.get_mut());
                out.is_empty() || (self.sink)(Bytes::from(out))
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn gzip_is_accepted_only_when_the_request_says_so() {
        for (header, gzip) in [
            (None, false),
            (Some(""), false),
            (Some("identity"), false),
            (Some("gzip"), true),
            (Some("GZIP"), true),
            (Some("x-gzip"), true),
            (Some("deflate, gzip;q=0.5"), true),
            // Prometheus' own header.
            (Some("gzip"), true),
            (Some("gzip;q=0"), false),
            (Some("gzip; q=0.0"), false),
            (Some("br, *"), true),
            (Some("*;q=0"), false),
            (Some("gzip;q=0, *"), false),
            (Some("deflate, br"), false),
        ] {
            assert_eq!(accepts_gzip(header), gzip, "{header:?}");
        }
    }

    #[test]
    fn the_stream_decompresses_to_the_chunks_in_order_and_is_sent_as_it_is_compressed() {
        let text: Vec<String> = (0..50_000)
            .map(|i| format!("kube_rollout_phase{{namespace=\"ns{i}\",phase=\"complete\"}} 1\n"))
            .collect();
        let sent = std::cell::RefCell::new(Vec::<Bytes>::new());
        let mut gz = GzipSink::new(|b| {
            sent.borrow_mut().push(b);
            true
        });
        for chunk in text.chunks(1000) {
            assert!(gz.push(chunk.concat().as_bytes()));
        }
        let before_finish = sent.borrow().len();
        assert!(gz.finish());
        // The header alone would be one piece: compressed data went out before the end.
        assert!(before_finish >= 2, "{before_finish} pieces before the end");
        let body: Vec<u8> = sent.borrow().concat();
        let mut plain = String::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .read_to_string(&mut plain)
            .expect("valid gzip");
        assert_eq!(plain, text.concat());
    }

    #[test]
    fn a_refusing_sink_stops_the_stream() {
        let mut calls = 0;
        let mut gz = GzipSink::new(|_| {
            calls += 1;
            false
        });
        let big = "x".repeat(1 << 20);
        let mut pushes = 0;
        while gz.push(big.as_bytes()) {
            pushes += 1;
            assert!(pushes < 100, "the stream yields output and is refused");
        }
        assert!(!gz.push(b"more"));
        assert!(!gz.finish());
        assert_eq!(calls, 1, "nothing sent after the refusal");
    }
}
