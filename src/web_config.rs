//! `--web.config.file`: TLS and basic authentication for `/metrics`, in the Prometheus
//! exporter-toolkit format, so the same file works for this exporter and node_exporter:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # or NoClientCert, VerifyClientCertIfGiven
//!   client_ca_file: ca.crt
//!   min_version: TLS12                              # or TLS13
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...                          # bcrypt hash (htpasswd -nBC 10 "" | tr -d ':\n')
//! ```
//!
//! Relative paths are relative to the file. Settings the toolkit has but rustls does not
//! (`cipher_suites`, `curve_preferences`, TLS 1.0/1.1, clients certificates requested without
//! verification) are refused with an error rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;
use thiserror::Error;

/// A web configuration file that cannot be used. The message names the file and the fix.
#[derive(Debug, Error)]
pub enum WebConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid web configuration: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    http2: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

/// A loaded web configuration.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// The TLS configuration; `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// User → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks a web configuration file: every file it names must load.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let raw: Raw = if text.trim().is_empty() {
            Raw::default()
        } else {
            serde_saphyr::from_str(&text).map_err(|e| WebConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string().lines().next().unwrap_or_default().to_string(),
            })?
        };
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let tls = raw
            .tls_server_config
            .map(|t| tls_config(t, base).map_err(invalid))
            .transpose()?;
        for (user, hash) in &raw.basic_auth_users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(invalid(format!(
                    "basic_auth_users.{user} is not a bcrypt hash (make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                )));
            }
        }
        let http = raw.http_server_config.unwrap_or_default();
        if http.http2 == Some(true) {
            return Err(invalid(
                "http_server_config.http2 is not supported: this exporter serves HTTP/1.1".into(),
            ));
        }
        for name in http.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if matches!(
                lower.as_str(),
                "content-type" | "content-length" | "content-encoding" | "server" | "date"
            ) {
                return Err(invalid(format!(
                    "http_server_config.headers.{name} may not be overridden"
                )));
            }
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(format!(
                    "http_server_config.headers: '{name}' is not a header name"
                )));
            }
        }
        Ok(Self {
            tls,
            users: raw.basic_auth_users,
            headers: http.headers.into_iter().collect(),
        })
    }

    /// Checks an `Authorization` header against `basic_auth_users`. Takes tens of milliseconds
    /// (bcrypt): call it off the async runtime's worker threads.
    pub fn authorized(&self, authorization: Option<&str>) -> bool {
        if self.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(decode_basic) else {
            return false;
        };
        self.users
            .get(&user)
            .is_some_and(|hash| bcrypt::verify(password.as_bytes(), hash).unwrap_or(false))
    }
}

/// `Basic base64(user:password)` → (user, password).
fn decode_basic(header: &str) -> Option<(String, String)> {
    use base64::Engine;
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn tls_config(t: RawTls, base: &Path) -> Result<Arc<ServerConfig>, String> {
    let unsupported = |field: &str| {
        format!(
            "tls_server_config.{field} is not supported (rustls chooses safe values itself); remove it"
        )
    };
    if t.cipher_suites.is_some() {
        return Err(unsupported("cipher_suites"));
    }
    if t.curve_preferences.is_some() {
        return Err(unsupported("curve_preferences"));
    }
    if t.prefer_server_cipher_suites.is_some() {
        return Err(unsupported("prefer_server_cipher_suites"));
    }
    if t.client_allowed_sans.is_some() {
        return Err(unsupported("client_allowed_sans"));
    }
    let file = |name: &str, value: Option<String>| -> Result<PathBuf, String> {
        let v = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("tls_server_config.{name} is required"))?;
        Ok(base.join(v))
    };
    let cert_file = file("cert_file", t.cert_file)?;
    let key_file = file("key_file", t.key_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .map_err(|e| format!("cannot read certificates from {}: {e}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert_file.display()));
    }
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("cannot read a private key from {}: {e}", key_file.display()))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        match (t.min_version.as_deref(), t.max_version.as_deref()) {
            (None | Some("TLS12"), None | Some("TLS13")) => {
                &[&rustls::version::TLS12, &rustls::version::TLS13]
            }
            (Some("TLS13"), None | Some("TLS13")) => &[&rustls::version::TLS13],
            (None | Some("TLS12"), Some("TLS12")) => &[&rustls::version::TLS12],
            (min, max) => {
                return Err(format!(
                    "TLS versions min {min:?} max {max:?} are not supported: use TLS12 or TLS13"
                ));
            }
        };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let client_roots = || -> Result<Arc<RootCertStore>, String> {
        let ca = file("client_ca_file", t.client_ca_file.clone())?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&ca)
            .map_err(|e| format!("cannot read {}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("bad CA certificate in {}: {e}", ca.display()))?;
        }
        Ok(Arc::new(roots))
    };
    let builder = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => builder.with_no_client_auth(),
        "RequireAndVerifyClientCert" => {
            let verifier = WebPkiClientVerifier::builder_with_provider(client_roots()?, provider)
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        "VerifyClientCertIfGiven" => {
            let verifier = WebPkiClientVerifier::builder_with_provider(client_roots()?, provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| e.to_string())?;
            builder.with_client_cert_verifier(verifier)
        }
        other => {
            return Err(format!(
                "client_auth_type {other} is not supported: use NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match or are unusable: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn temp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "kre-webcfg-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).expect("dir");
        d
    }

    #[test]
    fn basic_auth_checks_bcrypt_hashes() {
        let dir = temp();
        let hash = bcrypt::hash("s3cret", 4).expect("hash");
        let cfg = WebConfig::load(&write(
            &dir,
            "a.yml",
            &format!("basic_auth_users:\n  prom: '{hash}'\n"),
        ))
        .expect("loads");
        use base64::Engine;
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert!(cfg.authorized(Some(&header("prom", "s3cret"))));
        assert!(!cfg.authorized(Some(&header("prom", "wrong"))));
        assert!(!cfg.authorized(Some(&header("other", "s3cret"))));
        assert!(!cfg.authorized(None));
        assert!(!cfg.authorized(Some("Bearer x")));
        assert!(WebConfig::default().authorized(None), "no users: open");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = temp();
        for (text, expected) in [
            (
                "basic_auth_users:\n  prom: plaintext\n",
                "not a bcrypt hash",
            ),
            (
                "tls_server_config:\n  key_file: k\n",
                "cert_file is required",
            ),
            (
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
                "missing.crt",
            ),
            ("unknown_section: 1\n", "not a valid web configuration"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n",
                "cipher_suites is not supported",
            ),
            (
                "http_server_config:\n  http2: true\n",
                "http2 is not supported",
            ),
        ] {
            let err = WebConfig::load(&write(&dir, "c.yml", text))
                .expect_err(text)
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        let missing = WebConfig::load(&dir.join("nope.yml"))
            .expect_err("missing")
            .to_string();
        assert!(missing.starts_with("cannot read"), "{missing}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
