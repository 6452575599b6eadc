//! HTTP(S) to one registry: where it is (`Endpoint`), the TLS roots and client certificate
//! for it (the system's roots plus `certs.d/<host[:port]>/`), the `/v2/` ping and its
//! challenge, the Authorization header that answers it (`Session`), redirects and retries.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::{Challenge, Credentials, parse_challenges};
use crate::{RegistryError, RegistrySettings};

/// A request body: empty, whole, or streamed (a layer being pushed).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;
type Http = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A registry's base address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `https://host[:port]` or `http://host[:port]`, no trailing slash.
    pub base: String,
    /// `host[:port]` as in references.
    pub host: String,
    /// For an insecure registry spoken to over HTTPS first: the plain HTTP base to fall back
    /// to when the HTTPS ping fails for a reason other than the certificate.
    pub fallback: Option<String>,
}

impl Endpoint {
    /// The registry of a reference's domain, as dockerd chooses: HTTPS for every registry;
    /// an insecure one (`insecure-registries`, `localhost`) falls back to plain HTTP. A
    /// loopback address (127.0.0.0/8, `::1`) is plain HTTP at once.
    pub fn for_host(settings: &RegistrySettings, host: &str) -> Result<Endpoint, RegistryError> {
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return Err(RegistryError::BadAddress(host.to_string()));
        }
        let host = host.to_string();
        if settings.is_loopback_address(&host) {
            return Ok(Endpoint {
                base: format!("http://{host}"),
                host,
                fallback: None,
            });
        }
        let fallback = settings
            .is_insecure(&host)
            .then(|| format!("http://{host}"));
        Ok(Endpoint {
            base: format!("https://{host}"),
            host,
            fallback,
        })
    }

    /// A mirror given as a URL (`http://mirror:5000/`, `https://mirror/`).
    pub fn from_url(url: &str) -> Result<Endpoint, RegistryError> {
        let url = url.trim_end_matches('/');
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| RegistryError::BadAddress(url.to_string()))?;
        if host.is_empty() || host.contains('/') {
            return Err(RegistryError::BadAddress(url.to_string()));
        }
        Ok(Endpoint {
            base: url.to_string(),
            host: host.to_string(),
            fallback: None,
        })
    }
}

#[derive(Debug, Clone)]
enum Auth {
    Anonymous,
    Header(String),
    /// A Basic challenge and no user: each request fails with dockerd's words.
    MissingBasic,
}

/// One repository on one registry, authenticated for some actions (`pull`, `pull,push`).
#[derive(Debug)]
pub(crate) struct Session {
    http: Http,
    pub endpoint: Endpoint,
    pub attempts: u32,
    auth: Mutex<Auth>,
}

/// The system's roots (`/etc/ssl/certs` and the like), read once.
fn native_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::debug!(error = %e, "reading the system's TLS roots");
        }
        found.certs
    })
}

fn tls_error(path: &Path, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    }
}

fn read_certs(file: &Path) -> Result<Vec<CertificateDer<'static>>, RegistryError> {
    CertificateDer::pem_file_iter(file)
        .map_err(|e| tls_error(file, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(file, e))
}

/// The TLS configuration for `host` (`host[:port]`): the system's roots, plus dockerd's
/// per-registry folders `<certs.d>/<host[:port]>/`: `*.crt` are extra CAs, a `*.cert` with
/// its `*.key` (`client.cert`, `client.key`) the client certificate.
pub(crate) fn tls_config(
    settings: &RegistrySettings,
    host: &str,
) -> Result<rustls::ClientConfig, RegistryError> {
    let mut roots = rustls::RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(native_roots().iter().cloned());
    let mut client_auth = None;
    for dir in settings.certs_dirs.iter().map(|d| d.join(host)) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            match file.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    for c in read_certs(&file)? {
                        roots.add(c).map_err(|e| tls_error(&file, e))?;
                    }
                }
                Some("cert") if client_auth.is_none() => {
                    let key = file.with_extension("key");
                    let k = PrivateKeyDer::from_pem_file(&key).map_err(|e| tls_error(&key, e))?;
                    client_auth = Some((read_certs(&file)?, k));
                }
                _ => {}
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RegistryError::Unsupported(format!("TLS: {e}")))?
    .with_root_certificates(roots);
    match client_auth {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| RegistryError::Unsupported(format!("TLS client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn http_client(tls: rustls::ClientConfig) -> Http {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(15)));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

fn method_name(m: &Method) -> String {
    // Go's net/http error text: `Get "url"`, `Head "url"`.
    let s = m.as_str().to_ascii_lowercase();
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Percent-encodes a query value.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{code lower-cased}: {message}` of a registry's `{"errors": [...]}` body, as Go's
/// `errcode.Error` prints it; empty when the body says nothing.
pub(crate) fn registry_errors(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<E>,
    }
    serde_json::from_slice::<Errors>(body)
        .map(|e| {
            e.errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.code.to_ascii_lowercase().replace('_', " "),
                        e.message
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    resp: Response<Incoming>,
    limit: usize,
    what: &str,
    url: &str,
) -> Result<Bytes, RegistryError> {
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| RegistryError::Body {
            url: url.to_string(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(RegistryError::TooLarge {
                    what: what.to_string(),
                    limit,
                });
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(200u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(5))
}

impl Session {
    /// A session that asks no registry anything first (a plain download).
    pub fn anonymous(
        endpoint: Endpoint,
        settings: &RegistrySettings,
    ) -> Result<Session, RegistryError> {
        Ok(Session {
            http: http_client(tls_config(settings, &endpoint.host)?),
            endpoint,
            attempts: 1,
            auth: Mutex::new(Auth::Anonymous),
        })
    }

    /// Pings `/v2/` and answers its challenge for `scope` (`repository:NAME:pull`), or
    /// without a scope for a login.
    pub async fn open(
        endpoint: Endpoint,
        settings: &RegistrySettings,
        scope: Option<String>,
        creds: Option<&Credentials>,
    ) -> Result<Session, RegistryError> {
        let mut session = Session {
            http: http_client(tls_config(settings, &endpoint.host)?),
            endpoint,
            attempts: settings.max_download_attempts.max(1),
            auth: Mutex::new(Auth::Anonymous),
        };
        let mut url = format!("{}/v2/", session.endpoint.base);
        let resp = match session.send_once(Method::GET, &url, &[], false).await {
            // dockerd's way with an insecure registry: HTTPS first, then plain HTTP. A
            // certificate the roots do not vouch for is an answer, not a reason to fall back.
            Err(e @ RegistryError::Connect { .. })
                if session.endpoint.fallback.is_some() && !is_certificate_error(&e) =>
            {
                tracing::debug!(error = %e, "HTTPS failed; trying plain HTTP");
                if let Some(base) = session.endpoint.fallback.take() {
                    session.endpoint.base = base;
                }
                url = format!("{}/v2/", session.endpoint.base);
                session.send_once(Method::GET, &url, &[], false).await?
            }
            other => other?,
        };
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::UNAUTHORIZED => {
                let auth = session.answer(&resp, scope.as_deref(), creds, &url).await?;
                *session.lock() = auth;
            }
            s => {
                return Err(RegistryError::Status {
                    method: "GET".into(),
                    url,
                    status: s.as_u16(),
                    detail: String::new(),
                });
            }
        }
        Ok(session)
    }

    /// `POST /auth`: `/v2/` with the credentials must answer 200.
    pub async fn login(
        endpoint: Endpoint,
        settings: &RegistrySettings,
        creds: Credentials,
    ) -> Result<(), RegistryError> {
        let session = Session::open(endpoint, settings, None, Some(&creds)).await?;
        let url = format!("{}/v2/", session.endpoint.base);
        let resp = session.send_once(Method::GET, &url, &[], true).await?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(RegistryError::LoginFailed {
            url,
            status: status_text(resp.status()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Auth> {
        self.auth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn answer(
        &self,
        resp: &Response<Incoming>,
        scope: Option<&str>,
        creds: Option<&Credentials>,
        url: &str,
    ) -> Result<Auth, RegistryError> {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        // A bearer challenge first, when the registry offers both.
        let chosen = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        match chosen {
            Some(Challenge::Bearer {
                realm,
                service,
                scope: offered,
            }) => {
                let scope = scope.map(str::to_string).or(offered);
                let token = self.token(&realm, service, scope, creds).await?;
                return Ok(Auth::Header(format!("Bearer {token}")));
            }
            Some(Challenge::Basic) => {
                return Ok(match creds.and_then(Credentials::basic) {
                    Some(h) => Auth::Header(h),
                    None => Auth::MissingBasic,
                });
            }
            None => {}
        }
        Err(RegistryError::Denied(format!(
            "{url} asks for authentication berth does not know"
        )))
    }

    async fn token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
        creds: Option<&Credentials>,
    ) -> Result<String, RegistryError> {
        if let Some(c) = creds.filter(|c| !c.registry_token.is_empty()) {
            return Ok(c.registry_token.clone());
        }
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in [("service", service), ("scope", scope)] {
            if let Some(v) = v {
                url.push_str(&format!("{sep}{k}={}", query_escape(&v)));
                sep = '&';
            }
        }
        let uri: Uri = url
            .parse()
            .map_err(|_| RegistryError::BadAddress(url.clone()))?;
        let mut req = Request::get(uri);
        if let Some(basic) = creds.and_then(Credentials::basic) {
            req = req.header(header::AUTHORIZATION, basic);
        }
        let req = req
            .body(full(Bytes::new()))
            .map_err(|_| RegistryError::BadAddress(url.clone()))?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| connect_error("GET", &url, e))?;
        let status = resp.status();
        let body = read_limited(resp, 1 << 20, "a token answer", &url).await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistryError::Denied(format!(
                "unauthorized: incorrect username or password ({url} answered {})",
                status_text(status)
            )));
        }
        if !status.is_success() {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url,
                status: status.as_u16(),
                detail: String::new(),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Denied(format!("the token server's answer: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        if token.is_empty() {
            return Err(RegistryError::Denied(
                "the token server gave no token".into(),
            ));
        }
        Ok(token)
    }

    /// One request, with the session's Authorization (for URLs on the registry), following
    /// redirects.
    pub async fn send_once(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        with_auth: bool,
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut url = url.to_string();
        for _ in 0..6 {
            let on_registry = url.starts_with(&format!("{}/", self.endpoint.base));
            let uri: Uri = url
                .parse()
                .map_err(|_| RegistryError::BadAddress(url.clone()))?;
            let mut req = Request::builder().method(method.clone()).uri(uri);
            if with_auth && on_registry {
                match self.lock().clone() {
                    Auth::Anonymous => {}
                    Auth::Header(h) => req = req.header(header::AUTHORIZATION, h),
                    Auth::MissingBasic => {
                        return Err(RegistryError::NoCredentials {
                            method: method_name(&method),
                            url,
                        });
                    }
                }
            }
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let req = req
                .body(full(Bytes::new()))
                .map_err(|_| RegistryError::BadAddress(url.clone()))?;
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| connect_error(&method_name(&method), &url, e))?;
            if resp.status().is_redirection()
                && let Some(loc) = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
            {
                url = if loc.starts_with('/') {
                    format!("{}{loc}", self.endpoint.base)
                } else if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc.to_string()
                } else {
                    return Err(RegistryError::BadAddress(format!(
                        "{url}: redirected to {loc:?}"
                    )));
                };
                continue;
            }
            return Ok(resp);
        }
        Err(RegistryError::BadAddress(format!(
            "{url}: too many redirects"
        )))
    }

    /// One request with a body (an upload), with the session's Authorization; no
    /// redirects, no retries (the body is gone once sent).
    pub async fn send_body(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
        body: Body,
    ) -> Result<Response<Incoming>, RegistryError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| RegistryError::BadAddress(url.to_string()))?;
        let mut req = Request::builder().method(method.clone()).uri(uri);
        if url.starts_with(&format!("{}/", self.endpoint.base)) {
            match self.lock().clone() {
                Auth::Anonymous => {}
                Auth::Header(h) => req = req.header(header::AUTHORIZATION, h),
                Auth::MissingBasic => {
                    return Err(RegistryError::NoCredentials {
                        method: method_name(&method),
                        url: url.to_string(),
                    });
                }
            }
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req
            .body(body)
            .map_err(|_| RegistryError::BadAddress(url.to_string()))?;
        self.http
            .request(req)
            .await
            .map_err(|e| connect_error(&method_name(&method), url, e))
    }

    /// `send_once`, tried again on 5xx, 429 and network faults, up to the session's attempts.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(header::HeaderName, String)],
    ) -> Result<Response<Incoming>, RegistryError> {
        let mut attempt = 1;
        loop {
            let result = self.send_once(method.clone(), url, headers, true).await;
            let result = match result {
                Ok(r) if r.status().is_server_error() || r.status() == 429 => {
                    Err(RegistryError::Status {
                        method: method.to_string(),
                        url: url.to_string(),
                        status: r.status().as_u16(),
                        detail: String::new(),
                    })
                }
                other => other,
            };
            match result {
                Err(e) if e.retryable() && attempt < self.attempts => {
                    tracing::debug!(url, attempt, error = %e, "registry request failed; trying again");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

pub(crate) fn status_text(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_string()
}

/// Go's words for a certificate the client refuses (`x509: ...`), when `e` is one.
fn certificate_text(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        // hyper-rustls wraps tokio-rustls's io::Error (which wraps the rustls::Error) in
        // another io::Error, and io::Error's source() skips what it wraps.
        let mut inner: &(dyn std::error::Error + 'static) = err;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        let tls = inner.downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            use rustls::CertificateError as C;
            let why = match c {
                C::UnknownIssuer => "certificate signed by unknown authority".to_string(),
                C::Expired | C::NotValidYet => {
                    "certificate has expired or is not yet valid".to_string()
                }
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "certificate is not valid for the registry's name".to_string()
                }
                other => format!("certificate refused ({other:?})"),
            };
            return Some(format!("tls: failed to verify certificate: x509: {why}"));
        }
        next = err.source();
    }
    None
}

/// Whether a registry error is a refused server certificate.
pub(crate) fn is_certificate_error(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Connect { source, .. } if source.to_string().contains("x509: "))
}

fn connect_error(method: &str, url: &str, e: hyper_util::client::legacy::Error) -> RegistryError {
    if let Some(text) = certificate_text(&e) {
        return RegistryError::Connect {
            method: method.to_string(),
            url: url.to_string(),
            source: Box::new(std::io::Error::new(std::io::ErrorKind::InvalidData, text)),
        };
    }
    // The innermost error says what happened (`Connection refused`); the layers above it
    // ("client error (Connect)", "tcp connect error") say nothing more.
    let mut source: &(dyn std::error::Error + 'static) = &e;
    while let Some(s) = source.source() {
        source = s;
    }
    let text = source.to_string();
    let kind = source
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind);
    RegistryError::Connect {
        method: method.to_string(),
        url: url.to_string(),
        source: Box::new(std::io::Error::new(
            kind.unwrap_or(std::io::ErrorKind::Other),
            match kind {
                Some(std::io::ErrorKind::ConnectionRefused) => "connect: connection refused".into(),
                _ => text,
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_errors_read_as_go_prints_them() {
        assert_eq!(
            registry_errors(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"nope"}}]}"#
            ),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(registry_errors(b"not json"), "");
    }

    #[test]
    fn endpoints_choose_the_scheme_as_dockerd() {
        let s = RegistrySettings {
            insecure: vec!["plain.test".into()],
            ..Default::default()
        };
        let loopback = Endpoint::for_host(&s, "127.0.0.1:5000").unwrap();
        assert_eq!(loopback.base, "http://127.0.0.1:5000");
        assert_eq!(loopback.fallback, None);
        let hub = Endpoint::for_host(&s, "registry-1.docker.io").unwrap();
        assert_eq!(hub.base, "https://registry-1.docker.io");
        assert_eq!(hub.fallback, None);
        for h in ["plain.test:5000", "localhost:5000"] {
            let e = Endpoint::for_host(&s, h).unwrap();
            assert_eq!(e.base, format!("https://{h}"));
            assert_eq!(e.fallback, Some(format!("http://{h}")));
        }
        assert_eq!(
            Endpoint::from_url("http://127.0.0.1:5000/").unwrap().host,
            "127.0.0.1:5000"
        );
        assert_eq!(
            Endpoint::from_url("https://mirror.test/").unwrap().base,
            "https://mirror.test"
        );
        assert!(Endpoint::from_url("mirror.test").is_err());
        assert_eq!(method_name(&Method::HEAD), "Head");
        assert_eq!(
            query_escape("repository:a/b:pull push"),
            "repository:a/b:pull%20push"
        );
    }
}
