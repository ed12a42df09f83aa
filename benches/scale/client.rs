//! Plain HTTP/1.1 on loopback for the bench: GETs, paged lists, and capturing the first lines of
//! a watch.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

async fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<hyper::Response<hyper::body::Incoming>, Error> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::get(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    Ok(sender
        .send_request(req.body(Empty::<Bytes>::new())?)
        .await?)
}

/// One GET: the status and the whole body.
pub async fn get(addr: SocketAddr, path: &str, accept: &str) -> Result<(u16, Vec<u8>), Error> {
    let (status, body, _) = get_with(addr, path, &[("accept", accept)]).await?;
    Ok((status, body))
}

/// One GET with these headers: the status, the whole body as sent and its `Content-Encoding`.
pub async fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Vec<u8>, Option<String>), Error> {
    let resp = send(addr, path, headers).await?;
    let status = resp.status().as_u16();
    let encoding = resp
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = resp.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, body, encoding))
}

/// A GET with a deadline; errors and timeouts are status 0.
pub async fn get_within(addr: SocketAddr, path: &str, within: Duration) -> (u16, Vec<u8>) {
    match tokio::time::timeout(within, get(addr, path, "*/*")).await {
        Ok(Ok(r)) => r,
        _ => (0, Vec::new()),
    }
}

#[derive(serde::Deserialize)]
struct ListMeta {
    #[serde(default, rename = "continue")]
    continue_: Option<String>,
}

#[derive(serde::Deserialize)]
struct ListHead {
    metadata: ListMeta,
}

/// Lists every object at `path` in pages of `limit`, as kubectl does; answers the items' bytes.
pub async fn list_all(
    addr: SocketAddr,
    path: &str,
    accept: &str,
    limit: u32,
) -> Result<u64, Error> {
    let mut bytes = 0u64;
    let mut token: Option<String> = None;
    loop {
        let page = match &token {
            Some(t) => format!("{path}?limit={limit}&continue={t}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, body) = get(addr, &page, accept).await?;
        if status != 200 {
            return Err(format!("list {page}: HTTP {status}").into());
        }
        bytes += body.len() as u64;
        let head: ListHead = serde_json::from_slice(&body)?;
        match head.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok(bytes),
        }
    }
}

/// The first lines of a watch, kept in one buffer.
#[derive(Default)]
pub struct Captured {
    pub data: Vec<u8>,
    /// `(start, end)` of each line in `data`, without the newline.
    pub lines: Vec<(usize, usize)>,
}

impl Captured {
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.lines.iter().map(|&(s, e)| &self.data[s..e])
    }
}

/// Watches `path` and keeps its first `max_lines` lines (at most `max_bytes`), then hangs up;
/// hangs up with what it has when `stop` turns true (a quiet watch may never reach the count).
/// BOOKMARK lines are not kept.
pub async fn capture(
    addr: SocketAddr,
    path: &str,
    accept: &str,
    max_lines: usize,
    max_bytes: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Captured, Error> {
    let resp = send(addr, path, &[("accept", accept)]).await?;
    if resp.status() != 200 {
        return Err(format!("watch {path}: HTTP {}", resp.status()).into());
    }
    let mut body = resp.into_body();
    let mut out = Captured::default();
    let mut start = 0;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(frame) = frame else {
            break;
        };
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        out.data.extend_from_slice(data);
        while let Some(i) = out.data[start..].iter().position(|&b| b == b'\n') {
            let end = start + i;
            if out.data[start..end].starts_with(b"{\"type\":\"BOOKMARK\"") {
                out.data.drain(start..=end);
                continue;
            }
            out.lines.push((start, end));
            start = end + 1;
            if out.lines.len() >= max_lines || start >= max_bytes {
                out.data.truncate(start);
                return Ok(out);
            }
        }
    }
    out.data.truncate(start);
    Ok(out)
}
