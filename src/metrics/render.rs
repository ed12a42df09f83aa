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

/// A `fmt::Write` that hands its text to a sink in chunks of about [`CHUNK`] bytes.
struct Chunks<'a, F> {
    buf: String,
    sink: &'a mut F,
    /// The sink refused a chunk (the client went away): encoding stops.
    closed: bool,
}

impl<F: FnMut(Bytes) -> bool> Chunks<'_, F> {
    fn flush(&mut self) -> fmt::Result {
        let chunk = std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 4096));
        if !chunk.is_empty() && !(self.sink)(Bytes::from(chunk)) {
            self.closed = true;
            return Err(fmt::Error);
        }
        Ok(())
    }
}

impl<F: FnMut(Bytes) -> bool> fmt::Write for Chunks<'_, F> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.buf.push_str(s);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
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
    let mut out = Chunks {
        buf: String::with_capacity(CHUNK + 4096),
        sink: &mut sink,
        closed: false,
    };
    let result = if is_openmetrics(accept) {
        prometheus_client::encoding::text::encode(&mut out, registry)
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
    };
    match result.and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(_) if out.closed => tracing::debug!("scrape abandoned by the client"),
        Err(_) => tracing::error!("encoding metrics failed"),
    }
    content_type(accept)
}
