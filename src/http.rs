//! The HTTP server: `/metrics` (or the configured telemetry path), `/healthz`, `/readyz` and a
//! landing page. Scrapes render into a buffer after the model's lock is released, then write.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::metrics;
use crate::state::Shared;

/// What the server serves.
pub struct Server {
    pub shared: Arc<Shared>,
    pub registry: Registry,
    pub telemetry_path: String,
}

fn text(
    code: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
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

    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let known = path == self.telemetry_path || matches!(path, "/" | "/healthz" | "/readyz");
        if !known {
            return text(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "404 page not found\n",
            );
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut resp = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "405 method not allowed\n",
            );
            resp.headers_mut()
                .insert("allow", HeaderValue::from_static("GET, HEAD"));
            return resp;
        }
        match path {
            "/" => text(StatusCode::OK, "text/html; charset=utf-8", self.landing()),
            "/healthz" => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" => match self.shared.readiness() {
                Ok(()) => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("not ready: {why}\n"),
                ),
            },
            _ => {
                let accept = req
                    .headers()
                    .get(hyper::header::ACCEPT)
                    .and_then(|v| v.to_str().ok());
                let (content_type, body) = metrics::render(&self.registry, accept);
                text(StatusCode::OK, content_type, body)
            }
        }
    }
}

/// Serves until `shutdown` fires, then stops accepting and lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
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
        debug!(%peer, "connection");
        let server = server.clone();
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            let service = service_fn(move |req| {
                let resp = server.respond(&req);
                async move { Ok::<_, Infallible>(resp) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
