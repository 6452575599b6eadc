//! Credentials as clients send them (`X-Registry-Auth`, `POST /auth`) and the registry's
//! `WWW-Authenticate` challenges.

use base64::Engine;
use serde::Deserialize;

use crate::client::{Endpoint, Session};
use crate::{RegistryError, RegistrySettings};

/// Docker's `AuthConfig` (the fields a registry needs).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
    #[serde(default)]
    pub serveraddress: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads `X-Registry-Auth` (base64url JSON, padded or not; the standard alphabet is
    /// taken too). As dockerd does for a pull, an unreadable header counts as none.
    pub fn from_header(value: &str) -> Option<Credentials> {
        let value = value.trim().trim_end_matches('=');
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(value))
            .ok()?;
        let c: Credentials = serde_json::from_slice(&bytes).ok()?;
        (!c.is_empty()).then_some(c)
    }

    fn is_empty(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }

    /// `Basic base64(user:password)`, when there is a user.
    pub(crate) fn basic(&self) -> Option<String> {
        (!self.username.is_empty()).then(|| {
            let pair = format!("{}:{}", self.username, self.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        })
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"` (quoted values may
/// hold commas and `\"`). Unknown schemes are left out.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let mut params: Vec<(String, String)> = Vec::new();
        let mut s = after.trim_start();
        // key=value pairs until the next scheme (a token not followed by '=').
        while let Some(eq) = s.find('=') {
            let key = s[..eq].trim();
            if key.is_empty() || key.contains([' ', ',']) {
                break;
            }
            let mut v = String::new();
            let mut chars = s[eq + 1..].char_indices();
            let consumed;
            if s[eq + 1..].starts_with('"') {
                chars.next();
                let mut escaped = false;
                let mut end = s.len() - eq - 1;
                for (i, c) in chars.by_ref() {
                    if escaped {
                        v.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        end = i + 1;
                        break;
                    } else {
                        v.push(c);
                    }
                }
                consumed = eq + 1 + end;
            } else {
                let end = s[eq + 1..].find(',').unwrap_or(s.len() - eq - 1);
                v = s[eq + 1..eq + 1 + end].trim().to_string();
                consumed = eq + 1 + end;
            }
            params.push((key.to_ascii_lowercase(), v));
            s = s[consumed.min(s.len())..].trim_start();
            match s.strip_prefix(',') {
                Some(r) => s = r.trim_start(),
                None => break,
            }
        }
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = get("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            }
            _ => {}
        }
        if s.len() == rest.len() {
            break;
        }
        rest = s;
    }
    out
}

/// `POST /auth`: tries the credentials against the registry's `/v2/`.
pub async fn login(
    settings: &RegistrySettings,
    server: &str,
    creds: Credentials,
) -> Result<(), RegistryError> {
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .trim_end_matches("/v1")
        .trim_end_matches("/v2");
    let host = match host {
        "" | "index.docker.io" | "docker.io" | "registry-1.docker.io" => "registry-1.docker.io",
        h => h,
    };
    let endpoint = Endpoint::for_host(settings, host)?;
    Session::login(endpoint, settings, creds).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_challenges_parse() {
        assert_eq!(
            parse_challenges(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="acc""#),
            vec![Challenge::Basic]
        );
        // A scope with a comma inside quotes, an escaped quote, unquoted values.
        assert_eq!(
            parse_challenges(
                r#"Bearer realm=http://127.0.0.1:9/token, scope="repository:a/b:pull,push", service="x\"y""#
            ),
            vec![Challenge::Bearer {
                realm: "http://127.0.0.1:9/token".into(),
                service: Some("x\"y".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }]
        );
        assert!(parse_challenges("Negotiate abc").is_empty());
        assert!(parse_challenges(r#"Bearer service="no realm""#).is_empty());
    }

    #[test]
    fn the_auth_header_is_base64url_json() {
        // From pull-auth.txt.
        let c = Credentials::from_header(
            "eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJzZXJ2ZXJhZGRyZXNzIjoiMTI3LjAuMC4xOjUwMDEifQ==",
        )
        .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert_eq!(c.serveraddress, "127.0.0.1:5001");
        assert_eq!(c.basic().as_deref(), Some("Basic dTpw"));
        assert_eq!(
            Credentials::from_header("e30="),
            None,
            "{{}} is no credentials"
        );
        assert_eq!(Credentials::from_header("!!"), None);
        assert!(!format!("{c:?}").contains("\"p\""), "no password in logs");
    }
}
