//! Image operations: the store's synchronous work on blocking threads, bridged to async
//! readers and writers.

use berth_images::{DeleteResult, ImageId, ImageRecord, ImportOptions, LoadedImage, Reference};
use tokio::io::{AsyncRead, DuplexStream};
use tokio_util::io::SyncIoBridge;

use crate::{Daemon, DaemonError};

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
}

impl Daemon {
    /// `docker import`: one layer from `body` (plain or gzip tar).
    pub async fn image_import(
        &self,
        body: impl AsyncRead + Send + Unpin + 'static,
        opts: ImportOptions,
    ) -> Result<ImageId, DaemonError> {
        let store = self.images.clone();
        let reader = SyncIoBridge::new(body);
        blocking(move || Ok(store.import(reader, &opts)?)).await
    }

    /// `docker load`.
    pub async fn image_load(
        &self,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Vec<LoadedImage>, DaemonError> {
        let store = self.images.clone();
        let reader = SyncIoBridge::new(body);
        blocking(move || Ok(store.load(reader)?)).await
    }

    /// `docker save`: resolves every name first (so a bad name fails before anything is
    /// sent), then writes the archive on a blocking thread into the returned reader.
    pub fn image_save(&self, names: &[String]) -> Result<DuplexStream, DaemonError> {
        let mut wanted: Vec<(ImageId, Vec<Reference>)> = Vec::new();
        for name in names {
            let id = self.images.resolve(name)?;
            let by_name = Reference::parse(name).ok().filter(|r| {
                self.images
                    .get(&id)
                    .is_ok_and(|rec| rec.repo_tags.contains(r))
            });
            match wanted.iter_mut().find(|(i, _)| *i == id) {
                Some((_, refs)) => refs.extend(by_name),
                None => wanted.push((id, by_name.into_iter().collect())),
            }
        }
        let (reader, writer) = tokio::io::duplex(1 << 20);
        let store = self.images.clone();
        let writer = SyncIoBridge::new(writer);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.save(&wanted, writer) {
                tracing::error!(error = %e, "docker save stopped");
            }
        });
        Ok(reader)
    }

    pub fn image_resolve(&self, name: &str) -> Result<ImageId, DaemonError> {
        Ok(self.images.resolve(name)?)
    }

    pub fn image_get(&self, name: &str) -> Result<ImageRecord, DaemonError> {
        let id = self.images.resolve(name)?;
        Ok(self.images.get(&id)?)
    }

    pub fn image_list(&self) -> Vec<ImageRecord> {
        self.images.list()
    }

    pub fn image_layer_size(&self, diff_id: &str) -> u64 {
        self.images.layer_size(diff_id)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn image_tag(&self, name: &str, target: &str) -> Result<(), DaemonError> {
        let id = self.images.resolve(name)?;
        let r = Reference::parse(target)?;
        Ok(self.images.tag(&id, r)?)
    }

    /// Whether a container was created from the image.
    fn image_in_use(&self, id: &str) -> bool {
        self.containers_using_image(id)
    }

    /// `docker rmi`.
    pub async fn image_delete(
        &self,
        name: &str,
        force: bool,
    ) -> Result<Vec<DeleteResult>, DaemonError> {
        Ok(self
            .images
            .delete(name, force, &|id| self.image_in_use(id))?)
    }

    /// `docker image prune`.
    pub fn image_prune(&self) -> Result<(Vec<DeleteResult>, u64), DaemonError> {
        Ok(self.images.prune(&|id| self.image_in_use(id))?)
    }
}
