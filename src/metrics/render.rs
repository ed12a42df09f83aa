//! Rendering a scrape: content negotiation (OpenMetrics or the text format 0.0.4) and the chunked
//! writer that hands the text out as it is encoded, so a scrape of a million series never holds
//! its whole output.

use std::fmt;

use bytes::Bytes;
use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the classic Prometheus text format.
pub const TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bytes per chunk of a streamed scrape.
pub const CHUNK: usize = 64 * 1024;

/// OpenMetrics when the `Accept` header names it (as Prometheus does), text 0.0.4 otherwise.
fn is_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// The content type [`render_chunks`] answers for an `Accept` header.
pub fn content_type(accept: Option<&str>) -> &'static str {
    if is_openmetrics(accept) {
        OPENMETRICS
    } else {
        TEXT_004
    }
}

/// A writer that hands what is written to a sink in chunks of about [`CHUNK`] bytes: text as a
/// `fmt::Write` (a scrape), bytes as an `io::Write` (the board's JSON).
pub struct Chunks<'a, F: ?Sized> {
    buf: Vec<u8>,
    sink: &'a mut F,
    /// The sink refused a chunk (the client went away): writing stops.
    closed: bool,
}

impl<'a, F: FnMut(Bytes) -> bool + ?Sized> Chunks<'a, F> {
    pub fn new(sink: &'a mut F) -> Self {
        Self {
            buf: Vec::with_capacity(CHUNK + 4096),
            sink,
            closed: false,
        }
    }

    /// Sends what is buffered; an error once the sink refused.
    pub fn flush_chunk(&mut self) -> fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        if !chunk.is_empty() && !(self.sink)(Bytes::from(chunk)) {
            self.closed = true;
            return Err(fmt::Error);
        }
        Ok(())
    }

    fn push(&mut self, data: &[u8]) -> fmt::Result {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(())
    }
}

impl<F: FnMut(Bytes) -> bool + ?Sized> fmt::Write for Chunks<'_, F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes())
    }
}

impl<F: FnMut(Bytes) -> bool + ?Sized> std::io::Write for Chunks<'_, F> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.push(data)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders the registry in the format the `Accept` header asks for, handing the text to `sink`
/// in chunks of about [`CHUNK`] bytes as it is encoded: memory during a scrape is the snapshot
/// plus the chunks in flight, whatever the output's size. Stops early when `sink` answers false
/// (the client went away). Returns the content type.
pub fn render_chunks(
    registry: &Registry,
    accept: Option<&str>,
    mut sink: impl FnMut(Bytes) -> bool,
) -> &'static str {
    let mut out = Chunks::new(&mut sink);
    let result = if is_openmetrics(accept) {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    match result.and_then(|()| out.flush_chunk()) {
        Ok(()) => {}
        Err(_) if out.closed => tracing::debug!("scrape abandoned by the client"),
        Err(_) => tracing::error!("encoding metrics failed"),
    }
    content_type(accept)
}
