//! Secure and hardened serving: TLS with client certificates, basic auth, the plain probe
//! listener, plain HTTP by default, and the limits on requests. The real binary, on loopback.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TempDir;
use common::exporter::Exporter;
use common::http;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A kubeconfig pointing at a port where nothing listens: serving does not need the API.
fn dead_kubeconfig(dir: &TempDir) -> std::path::PathBuf {
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:9\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n",
    )
    .expect("kubeconfig");
    path
}

struct Pem {
    cert: String,
    key: String,
}

struct Pki {
    ca: String,
    server: Pem,
    client: Pem,
    rogue_client: Pem,
}

fn issue(issuer: &CertifiedIssuer<'static, KeyPair>, client: bool) -> Pem {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let cert = params.signed_by(&key, issuer).expect("sign");
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn new_ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn pki() -> Pki {
    let ca = new_ca();
    let rogue = new_ca();
    Pki {
        ca: ca.pem(),
        server: issue(&ca, false),
        client: issue(&ca, true),
        rogue_client: issue(&rogue, true),
    }
}

fn client_config(pki: &Pki, cert: Option<&Pem>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    use rustls::pki_types::pem::PemObject;
    let config = match cert {
        Some(p) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(p.cert.as_bytes())
                    .map(|c| c.expect("cert"))
                    .collect(),
                PrivateKeyDer::from_pem_slice(p.key.as_bytes()).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// GET over TLS; `Err` when the handshake or the request fails.
async fn tls_get(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    path: &str,
) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates_and_a_plain_probe_listener() {
    let dir = TempDir::new("tls");
    let pki = pki();
    for (name, text) in [
        ("ca.crt", &pki.ca),
        ("server.crt", &pki.server.cert),
        ("server.key", &pki.server.key),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    // Relative paths are relative to the configuration file.
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    )
    .expect("web config");
    let e = Exporter::start(
        &dead_kubeconfig(&dir),
        &[
            "--web.config.file",
            web.to_str().expect("utf-8"),
            "--web.probe-listen-address",
            "127.0.0.1:0",
        ],
    );
    let (status, body) = tls_get(e.addr, client_config(&pki, Some(&pki.client)), "/metrics")
        .await
        .expect("a trusted client cert is accepted");
    assert_eq!(status, 200);
    assert!(body.contains("kube_rollout_exporter_build_info"));
    assert!(
        tls_get(e.addr, client_config(&pki, None), "/metrics")
            .await
            .is_err(),
        "no client cert: rejected"
    );
    assert!(
        tls_get(
            e.addr,
            client_config(&pki, Some(&pki.rogue_client)),
            "/metrics"
        )
        .await
        .is_err(),
        "a client cert from another CA: rejected"
    );
    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(e.addr).await.expect("connect");
    plain
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "no metrics over plain HTTP"
    );

    // The probe listener: plain HTTP, probes only.
    let probe = probe_addr(&e);
    assert_eq!(http::get(probe, "/healthz", "*/*").await.status, 200);
    assert_eq!(
        http::get(probe, "/readyz", "*/*").await.status,
        503,
        "the API server is down"
    );
    assert_eq!(http::get(probe, "/metrics", "*/*").await.status, 404);
    // The board is served over TLS only, never on the probe listener.
    let (status, board) = tls_get(e.addr, client_config(&pki, Some(&pki.client)), "/")
        .await
        .expect("the board over TLS");
    assert_eq!(status, 200);
    assert!(board.contains("id=\"board\""), "{board}");
    for path in ["/", "/api/v1/rollouts"] {
        assert_eq!(http::get(probe, path, "*/*").await.status, 404, "{path}");
    }
}

/// The probe listener's address, from the exporter's start log line.
fn probe_addr(e: &Exporter) -> SocketAddr {
    e.start_line()["fields"]["probe_listen"]
        .as_str()
        .and_then(|s| {
            s.trim_start_matches("Some(")
                .trim_end_matches(')')
                .parse()
                .ok()
        })
        .expect("probe listener address logged")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_rejects_a_wrong_password() {
    let dir = TempDir::new("auth");
    let hash = bcrypt::hash("correct horse", 4).expect("hash");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).expect("write");
    let e = Exporter::start(
        &dead_kubeconfig(&dir),
        &["--web.config.file", web.to_str().expect("utf-8")],
    );
    use base64::Engine;
    let basic = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let none = http::get_with(e.addr, "/metrics", &[]).await;
    assert_eq!(none.status, 401);
    assert_eq!(
        none.header("www-authenticate"),
        Some("Basic realm=\"kube-rollout-exporter\"")
    );
    let wrong = http::get_with(
        e.addr,
        "/metrics",
        &[("authorization", &basic("prometheus", "wrong"))],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let unknown = http::get_with(
        e.addr,
        "/metrics",
        &[("authorization", &basic("mallory", "correct horse"))],
    )
    .await;
    assert_eq!(unknown.status, 401);
    let right = http::get_with(
        e.addr,
        "/metrics",
        &[("authorization", &basic("prometheus", "correct horse"))],
    )
    .await;
    assert_eq!(right.status, 200);
    assert!(String::from_utf8_lossy(&right.body).contains("kube_rollout_exporter_build_info"));
    // The board and its JSON are behind the same authentication.
    for path in ["/", "/api/v1/rollouts"] {
        assert_eq!(
            http::get_with(e.addr, path, &[]).await.status,
            401,
            "{path}"
        );
        let right = http::get_with(
            e.addr,
            path,
            &[("authorization", &basic("prometheus", "correct horse"))],
        )
        .await;
        assert_eq!(right.status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_by_default_with_bounded_requests() {
    let dir = TempDir::new("plain");
    let e = Exporter::start(&dead_kubeconfig(&dir), &[]);
    let ok = http::get(e.addr, "/metrics", "text/plain").await;
    assert_eq!(ok.status, 200, "plain HTTP, no authentication, by default");
    assert_eq!(http::get(e.addr, "/nope", "*/*").await.status, 404);
    let post = http::request(e.addr, "POST", "/metrics", &[], b"").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let with_body = http::request(e.addr, "GET", "/metrics", &[], b"x=1").await;
    assert_eq!(with_body.status, 413);
    // A request head over 16 KiB is refused.
    let mut s = TcpStream::connect(e.addr).await.expect("connect");
    let big = format!(
        "GET /metrics HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let mut buf = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap_or(0);
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    // A client that starts a request and stalls is disconnected after the header read timeout.
    let mut slow = TcpStream::connect(e.addr).await.expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "connection closed by the server");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(15),
        "closed after {waited:?}"
    );
}

#[test]
fn a_bad_web_config_file_is_a_clear_startup_error() {
    let dir = TempDir::new("badweb");
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
    )
    .expect("write");
    let out = std::process::Command::new(common::exporter::binary())
        .args([
            "--kubeconfig",
            dead_kubeconfig(&dir).to_str().expect("utf-8"),
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.level",
            "error",
        ])
        .args(["--web.config.file", web.to_str().expect("utf-8")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: --web.config.file:") && last.contains("nope.crt"),
        "{stderr}"
    );
}

/// `Accept-Encoding: gzip`, as Prometheus sends it: the body is gzip, streamed (chunked, no
/// length known in advance), and decompresses to the same series as the plain scrape of the same
/// moment; without the header, plain text. Over a real synced cluster, so the body is large.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_gzipped_when_asked_and_decompress_to_the_plain_scrape() {
    use common::cluster::{Cluster, STEADY_WITHIN};
    use common::exporter::Scrape;
    use std::io::Read;

    let deployments: Vec<_> = (0..20)
        .map(|i| kube_sim::SimDeployment::new("shop", &format!("web-{i}")).replicas(2))
        .collect();
    let c = Cluster::steady("gzip", &deployments, STEADY_WITHIN).await;
    let e = c.synced_exporter(&[]).await;
    for accept in ["text/plain", "application/openmetrics-text; version=1.0.0"] {
        let gz = http::get_with(
            e.addr,
            "/metrics",
            &[("accept", accept), ("accept-encoding", "gzip")],
        )
        .await;
        let plain = http::get(e.addr, "/metrics", accept).await;
        assert_eq!((gz.status, plain.status), (200, 200));
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{accept}");
        assert_eq!(plain.header("content-encoding"), None, "{accept}");
        for r in [&gz, &plain] {
            assert_eq!(r.header("vary"), Some("Accept-Encoding"));
            assert_eq!(r.header("transfer-encoding"), Some("chunked"), "streamed");
            assert_eq!(r.header("content-type"), plain.header("content-type"));
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz.body.as_slice())
            .read_to_string(&mut text)
            .expect("the body is gzip");
        assert!(
            gz.body.len() * 5 < text.len(),
            "compressed: {} of {} bytes",
            gz.body.len(),
            text.len()
        );
        // The same series; the rollout series (not the exporter's own counters and process
        // figures, which move between two scrapes) with the same values.
        let (unzipped, plain) = (
            Scrape::parse(&text),
            Scrape::parse(&String::from_utf8_lossy(&plain.body)),
        );
        let keys = |s: &Scrape| s.0.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&unzipped), keys(&plain), "{accept}");
        let stable = |s: &Scrape| {
            s.0.iter()
                .filter(|(k, _)| {
                    k.starts_with("kube_rollout_") && !k.starts_with("kube_rollout_exporter_")
                })
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<_>>()
        };
        let n = stable(&plain).len();
        assert!(n >= 20 * 18, "every workload's series: {n}");
        assert_eq!(stable(&unzipped), stable(&plain), "{accept}");
        assert!(text.ends_with("# EOF\n") || !accept.contains("openmetrics"));
    }
    // A client that refuses gzip gets plain text.
    let refused = http::get_with(e.addr, "/metrics", &[("accept-encoding", "gzip;q=0")]).await;
    assert_eq!(refused.header("content-encoding"), None);
    assert!(String::from_utf8_lossy(&refused.body).contains("kube_rollout_phase"));
}
