//! The build context: the request body (a tar, plain or gzip) unpacked into a folder of the
//! builder's own, every entry placed inside it (`berth_inroot::unpack`); its Dockerfile and
//! `.dockerignore` read inside it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use berth_dockerfile::IgnoreMatcher;
use berth_inroot::{Root, Tree};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use super::BuildError;
use crate::DaemonError;
use crate::images::blocking;

/// The most of a Dockerfile or a `.dockerignore` berthd reads.
const FILE_LIMIT: u64 = 16 << 20;

/// A received context.
pub(super) struct Context {
    pub dir: PathBuf,
    pub ignore: std::sync::Arc<IgnoreMatcher>,
}

impl Context {
    /// Unpacks `body` under `tmp/context` (gzip recognised by its magic bytes).
    pub async fn receive(
        body: impl AsyncRead + Send + Unpin + 'static,
        tmp: &Path,
    ) -> Result<Context, DaemonError> {
        let dir = tmp.join("context");
        let d = dir.clone();
        let reader = SyncIoBridge::new(body);
        blocking(move || {
            std::fs::create_dir_all(&d).map_err(|source| DaemonError::Io {
                path: d.clone(),
                source,
            })?;
            let mut r = BufReader::with_capacity(1 << 16, reader);
            let head = r.fill_buf().map(|b| b.to_vec()).unwrap_or_default();
            if head.is_empty() {
                // No body at all: an empty context (a Dockerfile-less build fails below).
                return Ok(());
            }
            let src: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
                Box::new(flate2::read::MultiGzDecoder::new(r))
            } else {
                Box::new(r)
            };
            berth_inroot::unpack::unpack(src, &d).map_err(|e| {
                DaemonError::from(BuildError::Invalid(format!(
                    "the build context is not a valid tar archive: {e}"
                )))
            })?;
            Ok(())
        })
        .await?;
        let ignore_text = read_in(&dir, ".dockerignore").await?.unwrap_or_default();
        let patterns = berth_dockerfile::read_dockerignore(&ignore_text);
        let ignore = IgnoreMatcher::new(&patterns)
            .map_err(|e| BuildError::Invalid(format!("error reading .dockerignore: {e}")))?;
        Ok(Context {
            dir,
            ignore: std::sync::Arc::new(ignore),
        })
    }

    /// The Dockerfile (`name`, `Dockerfile` when empty, `dockerfile` too for the default),
    /// read inside the context.
    pub fn dockerfile(&self, name: &str) -> Result<String, DaemonError> {
        let wanted = if name.is_empty() { "Dockerfile" } else { name };
        let candidates: Vec<&str> = if name.is_empty() || name == "Dockerfile" {
            vec!["Dockerfile", "dockerfile"]
        } else {
            vec![wanted]
        };
        let root = Root::open(&self.dir)?;
        for c in candidates {
            match root.read_capped(Path::new(c), FILE_LIMIT) {
                Ok(Some(bytes)) => return Ok(String::from_utf8_lossy(&bytes).into_owned()),
                Ok(None) => {}
                Err(berth_inroot::RootError::NotRegular { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(BuildError::Invalid(format!("Cannot locate specified Dockerfile: {wanted}")).into())
    }
}

async fn read_in(dir: &Path, name: &'static str) -> Result<Option<String>, DaemonError> {
    let dir = dir.to_path_buf();
    blocking(move || {
        let root = Root::open(&dir)?;
        Ok(root
            .read_capped(Path::new(name), FILE_LIMIT)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    })
    .await
}
