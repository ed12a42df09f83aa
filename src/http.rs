//! The HTTP server: `/metrics` (or the configured telemetry path), `/healthz`, `/readyz` and a
//! landing page; optionally TLS and basic authentication (`--web.config.file`), and a plain probe
//! listener for the kubelet, which cannot present client certificates.
//!
//! Hardening: unknown paths answer 404 and other methods 405; request bodies are refused (413)
//! and request heads are bounded (16 KiB, read within 10 s, which also closes idle keep-alive
//! connections); TLS handshakes must finish within 10 s; at most [`MAX_CONNECTIONS`] connections
//! are open at once; at most `--web.max-requests` scrapes render at once (503 beyond). A scrape
//! renders after the model's lock is released, off the async worker threads, and streams its
//! output in chunks as it is encoded (never held whole: see `metrics::render_chunks`), gzipped on
//! the way when the request accepts it (`compress`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, VARY};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::board;
use crate::compress::{self, GzipSink};
use crate::metrics;
use crate::shared::Shared;
use crate::web_config::WebConfig;

/// Open connections accepted at once per listener; more are closed right away.
pub const MAX_CONNECTIONS: usize = 512;
/// Time to send a request head, and the longest a keep-alive connection may sit idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one listener serves.
pub struct Server {
    pub shared: Arc<Shared>,
    pub registry: Arc<Registry>,
    pub telemetry_path: String,
    pub web: WebConfig,
    /// Concurrent scrapes allowed; `None` is unlimited (`--web.max-requests=0`).
    pub scrapes: Option<Arc<Semaphore>>,
    /// The plain probe listener: only `/healthz` and `/readyz`, without authentication.
    pub probes_only: bool,
    /// The live board at `/` and its JSON at [`ROLLOUTS_API`]; off (`--web.disable-board`):
    /// `/` is a page of links.
    pub board: bool,
    /// The smallest SLO threshold, against which the board shows each rollout's age.
    pub slo_threshold_secs: u64,
}

/// Where the board's data is served as JSON.
pub const ROLLOUTS_API: &str = "/api/v1/rollouts";

type Reply = Response<UnsyncBoxBody<Bytes, Infallible>>;

/// Chunks of a scrape in flight between the rendering thread and the connection.
const SCRAPE_CHUNKS_IN_FLIGHT: usize = 4;

fn text(code: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut resp = Response::new(Full::new(body.into()).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn plain(code: StatusCode, body: impl Into<Bytes>) -> Reply {
    text(code, "text/plain; charset=utf-8", body)
}

impl Server {
    fn landing(&self) -> String {
        format!(
            "<!doctype html>\n<html><head><title>kube-rollout-exporter</title></head><body>\n\
             <h1>kube-rollout-exporter {version}</h1>\n\
             <p>The Kubernetes rollout lifecycle as Prometheus metrics: terminating pods, drain durations, \
             time to ready and to complete.</p>\n<ul>\n\
             <li><a href=\"{path}\">{path}</a>: metrics</li>\n\
             <li><a href=\"/healthz\">/healthz</a>: process alive</li>\n\
             <li><a href=\"/readyz\">/readyz</a>: every watch synced and healthy</li>\n</ul>\n</body></html>\n",
            version = metrics::VERSION,
            path = self.telemetry_path,
        )
    }

    fn known(&self, path: &str) -> bool {
        match path {
            "/healthz" | "/readyz" => true,
            _ if self.probes_only => false,
            "/" => true,
            ROLLOUTS_API => self.board,
            p => p == self.telemetry_path,
        }
    }

    async fn respond(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let mut resp = self.clone().route(req).await;
        for (name, value) in &self.web.headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                resp.headers_mut().insert(n, v);
            }
        }
        resp
    }

    async fn route(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_string();
        if !self.known(&path) {
            return plain(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
            resp.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        let has_body = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
            || req.headers().contains_key(hyper::header::TRANSFER_ENCODING);
        if has_body {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 request bodies are not accepted\n",
            );
        }
        if !self.probes_only && !self.web.users.is_empty() {
            let auth = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let server = self.clone();
            // bcrypt is deliberately slow: keep it off the async worker threads.
            let ok = tokio::task::spawn_blocking(move || server.web.authorized(auth.as_deref()))
                .await
                .unwrap_or(false);
            if !ok {
                let mut resp = plain(StatusCode::UNAUTHORIZED, "401 unauthorized\n");
                resp.headers_mut().insert(
                    "www-authenticate",
                    HeaderValue::from_static("Basic realm=\"kube-rollout-exporter\""),
                );
                return resp;
            }
        }
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let gzip = compress::accepts_gzip(header(hyper::header::ACCEPT_ENCODING));
        match path.as_str() {
            "/healthz" => plain(StatusCode::OK, "ok\n"),
            "/readyz" => match self.shared.readiness().check() {
                Ok(()) => plain(StatusCode::OK, "ok\n"),
                Err(why) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            "/" if !self.board => text(StatusCode::OK, "text/html; charset=utf-8", self.landing()),
            "/" | ROLLOUTS_API => match board::Query::parse(req.uri().query()) {
                Ok(query) => self.board(path == "/", query, gzip),
                Err(why) => plain(StatusCode::BAD_REQUEST, format!("400 {why}\n")),
            },
            _ => {
                let accept = header(hyper::header::ACCEPT).map(str::to_string);
                debug!(
                    encoding = if gzip { "gzip" } else { "identity" },
                    user_agent = header(hyper::header::USER_AGENT).unwrap_or(""),
                    "scrape"
                );
                self.scrape(accept, gzip)
            }
        }
    }

    /// Renders the metrics in the format `accept` asks for (see [`Self::stream`]).
    fn scrape(self: Arc<Self>, accept: Option<String>, gzip: bool) -> Reply {
        let content_type = metrics::content_type(accept.as_deref());
        let server = self.clone();
        self.stream(content_type, gzip, move |send| {
            metrics::render_chunks(&server.registry, accept.as_deref(), send);
        })
    }

    /// The board as HTML (`html`) or JSON, from a snapshot taken now.
    fn board(self: Arc<Self>, html: bool, query: board::Query, gzip: bool) -> Reply {
        let server = self.clone();
        let content_type = if html {
            "text/html; charset=utf-8"
        } else {
            "application/json"
        };
        self.stream(content_type, gzip, move |send| {
            let snapshot = server.shared.snapshot();
            let now = crate::shared::now().as_secs_f64();
            let b = board::build(&snapshot.workloads, now, server.slo_threshold_secs, &query);
            if html {
                let page = board::render(&b, &query, metrics::VERSION, &server.telemetry_path);
                send(Bytes::from(page));
            } else {
                let mut out = metrics::Chunks::new(send);
                if serde_json::to_writer(&mut out, &b).is_ok() {
                    let _ = out.flush_chunk();
                }
            }
        })
    }

    /// Streams what `produce` hands its sink, gzipped on the way when `gzip`, within the
    /// concurrent request limit (`--web.max-requests`): `produce` runs off the async worker
    /// threads, and the connection writes each chunk as it comes, so no body is held whole.
    fn stream(
        self: Arc<Self>,
        content_type: &'static str,
        gzip: bool,
        produce: impl FnOnce(&mut dyn FnMut(Bytes) -> bool) + Send + 'static,
    ) -> Reply {
        let permit = match &self.scrapes {
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    return plain(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "503 too many concurrent scrapes (--web.max-requests)\n",
                    );
                }
            },
            None => None,
        };
        // The producing thread sends chunks as it makes them; the connection writes them as
        // they come. The permit is held until the producing ends.
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(SCRAPE_CHUNKS_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut send = |chunk| tx.blocking_send(chunk).is_ok();
            if gzip {
                let mut gz = GzipSink::new(send);
                produce(&mut |c: Bytes| gz.push(&c));
                gz.finish();
            } else {
                produce(&mut send);
            }
        });
        let chunks = futures::stream::unfold(rx, |mut rx| async move {
            let chunk = rx.recv().await?;
            Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
        });
        let mut resp = Response::new(StreamBody::new(chunks).boxed_unsync());
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        // Caches must not serve one coding to a client that asked for the other.
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        resp
    }
}

async fn serve_connection<IO>(
    io: IO,
    server: Arc<Server>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(server.respond(req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Serves until `shutdown` fires, then stops accepting and lets open requests finish (5 s at most).
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = server.web.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "connection limit reached: closing");
            continue;
        };
        let server = server.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => serve_connection(stream, server, stop).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, server, stop).await,
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, ModelConfig};

    fn server(scrapes: usize) -> Arc<Server> {
        let shared = Arc::new(Shared::new(Model::new(ModelConfig::default())));
        Arc::new(Server {
            registry: Arc::new(metrics::registry(shared.clone(), false)),
            shared,
            telemetry_path: "/metrics".into(),
            web: WebConfig::default(),
            scrapes: Some(Arc::new(Semaphore::new(scrapes))),
            probes_only: false,
            board: true,
            slo_threshold_secs: 900,
        })
    }

    #[tokio::test]
    async fn scrapes_beyond_the_limit_get_503() {
        let s = server(1);
        let held = s
            .scrapes
            .clone()
            .expect("limited")
            .try_acquire_owned()
            .expect("the only permit");
        assert_eq!(
            s.clone().scrape(None, false).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        drop(held);
        let ok = s.clone().scrape(None, false);
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[CONTENT_TYPE], metrics::TEXT_004);
    }

    #[test]
    fn the_probe_listener_knows_only_the_probes() {
        let mut s = Arc::try_unwrap(server(1)).ok().expect("sole owner");
        assert!(s.known("/metrics") && s.known("/") && s.known("/readyz"));
        assert!(s.known(ROLLOUTS_API));
        s.probes_only = true;
        assert!(!s.known(ROLLOUTS_API));
        assert!(!s.known("/metrics") && !s.known("/") && s.known("/healthz") && s.known("/readyz"));
    }
}
