//! Plain HTTP/1.1 against a loopback server, to look at the wire itself: status codes, headers,
//! bodies and watch streams line by line with their receive times.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("response body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A fresh HTTP/1.1 connection to `addr`, driven on its own task.
async fn connect<B>(addr: SocketAddr) -> SendRequest<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to loopback server");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    sender
}

async fn send(
    addr: SocketAddr,
    path: &str,
    accept: &str,
) -> hyper::Response<hyper::body::Incoming> {
    let mut sender = connect(addr).await;
    let req = Request::get(path)
        .header("host", addr.to_string())
        .header("accept", accept)
        .body(Empty::<Bytes>::new())
        .expect("request");
    sender.send_request(req).await.expect("response")
}

/// One GET, whole body.
pub async fn get(addr: SocketAddr, path: &str, accept: &str) -> Reply {
    request(addr, "GET", path, &[("accept", accept)], b"").await
}

pub fn unix_now_pub() -> f64 {
    unix_now()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A watch: its status and headers, then each line with the time it arrived.
pub struct Watch {
    pub status: u16,
    pub headers: HeaderMap,
    pub lines: mpsc::UnboundedReceiver<(f64, String)>,
}

pub async fn watch(addr: SocketAddr, path: &str, accept: &str) -> Watch {
    let resp = send(addr, path, accept).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let (tx, lines) = mpsc::unbounded_channel();
    let mut body = resp.into_body();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            buf.extend_from_slice(data);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                if tx.send((unix_now(), text)).is_err() {
                    return;
                }
            }
        }
    });
    Watch {
        status,
        headers,
        lines,
    }
}

impl Watch {
    /// The next line, or `None` after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<(f64, String)> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every line received so far.
    pub fn drain(&mut self) -> Vec<(f64, String)> {
        let mut out = Vec::new();
        while let Ok(l) = self.lines.try_recv() {
            out.push(l);
        }
        out
    }
}

/// One GET with extra headers.
pub async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(addr, "GET", path, headers, b"").await
}

/// Any method, headers and body.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut sender = connect(addr).await;
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}
