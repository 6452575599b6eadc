//! HTTP to one registry: where it is (`Endpoint`), the `/v2/` ping and its challenge, the
//! Authorization header that answers it (`Session`), redirects and retries.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::auth::{Challenge, Credentials, parse_challenges};
use crate::{RegistryError, RegistrySettings};

/// A request body: empty, whole, or streamed (a layer being pushed).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;
type Http = Client<HttpConnector, Body>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A registry's base address, spoken to over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `http://host[:port]`, no trailing slash.
    pub base: String,
    /// `host[:port]` as in references.
    pub host: String,
}

impl Endpoint {
    /// The registry of a reference's domain. HTTPS (everything not insecure) is refused
    /// until berth has a TLS client.
    pub fn for_host(settings: &RegistrySettings, host: &str) -> Result<Endpoint, RegistryError> {
        if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
            return Err(RegistryError::BadAddress(host.to_string()));
        }
        if !settings.is_insecure(host) {
            return Err(RegistryError::TlsUnsupported {
                host: host.to_string(),
            });
        }
        Ok(Endpoint {
            base: format!("http://{host}"),
            host: host.to_string(),
        })
    }

    /// A mirror given as a URL (`http://mirror:5000/`).
    pub fn from_url(url: &str) -> Result<Endpoint, RegistryError> {
        let url = url.trim_end_matches('/');
        if let Some(host) = url.strip_prefix("http://") {
            if host.is_empty() || host.contains('/') {
                return Err(RegistryError::BadAddress(url.to_string()));
            }
            return Ok(Endpoint {
                base: url.to_string(),
                host: host.to_string(),
            });
        }
        let host = url.strip_prefix("https://").unwrap_or(url);
        Err(RegistryError::TlsUnsupported {
            host: host.to_string(),
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

fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(15)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
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
    /// Pings `/v2/` and answers its challenge for `scope` (`repository:NAME:pull`), or
    /// without a scope for a login.
    pub async fn open(
        endpoint: Endpoint,
        settings: &RegistrySettings,
        scope: Option<String>,
        creds: Option<&Credentials>,
    ) -> Result<Session, RegistryError> {
        let session = Session {
            http: http_client(),
            endpoint,
            attempts: settings.max_download_attempts.max(1),
            auth: Mutex::new(Auth::Anonymous),
        };
        let url = format!("{}/v2/", session.endpoint.base);
        let resp = session.send_once(Method::GET, &url, &[], false).await?;
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
        if !url.starts_with("http://") {
            let host = url.split('/').nth(2).unwrap_or(&url).to_string();
            return Err(RegistryError::TlsUnsupported { host });
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
                } else if loc.starts_with("http://") {
                    loc.to_string()
                } else {
                    let host = loc.split('/').nth(2).unwrap_or(loc).to_string();
                    return Err(RegistryError::TlsUnsupported { host });
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

fn connect_error(method: &str, url: &str, e: hyper_util::client::legacy::Error) -> RegistryError {
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
    fn endpoints_are_plain_http_or_refused() {
        let s = RegistrySettings::default();
        assert_eq!(
            Endpoint::for_host(&s, "127.0.0.1:5000").unwrap().base,
            "http://127.0.0.1:5000"
        );
        assert!(matches!(
            Endpoint::for_host(&s, "registry-1.docker.io"),
            Err(RegistryError::TlsUnsupported { .. })
        ));
        assert_eq!(
            Endpoint::from_url("http://127.0.0.1:5000/").unwrap().host,
            "127.0.0.1:5000"
        );
        assert!(Endpoint::from_url("https://mirror.test").is_err());
        assert_eq!(method_name(&Method::HEAD), "Head");
        assert_eq!(
            query_escape("repository:a/b:pull push"),
            "repository:a/b:pull%20push"
        );
    }
}
