//! `ADD <url>` in a build: one file over HTTP(S), with the registry client's TLS roots and
//! redirects, written to a path of the builder's.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use http::Method;
use http_body_util::BodyExt;

use crate::client::{Endpoint, Session};
use crate::{RegistryError, RegistrySettings};

/// What a fetch brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub size: u64,
    /// The answer's `Last-Modified`, which the file keeps as its time (as dockerd's ADD).
    pub last_modified: Option<SystemTime>,
}

/// GETs `url` (redirects followed) into the file `dest`; a status other than 2xx is an
/// error naming it.
pub async fn fetch_url(
    settings: &RegistrySettings,
    url: &str,
    dest: &Path,
) -> Result<Fetched, RegistryError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| RegistryError::BadAddress(url.to_string()))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let base = &url[..url.len() - rest.len() + host.len()];
    let session = Session::anonymous(Endpoint::from_url(base)?, settings)?;
    let resp = session.send_once(Method::GET, url, &[], false).await?;
    if !resp.status().is_success() {
        return Err(RegistryError::status(
            "GET",
            url,
            resp.status().as_u16(),
            String::new(),
        ));
    }
    let last_modified = resp
        .headers()
        .get(http::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(httpdate_parse);
    let io = |source| RegistryError::Io {
        path: dest.to_path_buf(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(dest).map_err(io)?);
    let mut size = 0u64;
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| RegistryError::Body {
            url: url.to_string(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            file.write_all(&data).map_err(io)?;
        }
    }
    file.flush().map_err(io)?;
    Ok(Fetched {
        size,
        last_modified,
    })
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn httpdate_parse(s: &str) -> Option<SystemTime> {
    // "Sun, 06 Nov 1994 08:49:37 GMT" → "1994-11-06T08:49:37Z"
    let mut f = s.split_whitespace().skip(1);
    let (day, mon, year, time) = (f.next()?, f.next()?, f.next()?, f.next()?);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == mon)? + 1;
    humantime::parse_rfc3339(&format!("{year}-{m:02}-{day:0>2}T{time}Z")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read() {
        let t = httpdate_parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784111777
        );
        assert_eq!(httpdate_parse("yesterday"), None);
    }
}
