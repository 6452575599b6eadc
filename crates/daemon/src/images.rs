//! Image operations: the store's synchronous work on blocking threads, bridged to async
//! readers and writers.

use berth_images::{
    DeleteResult, HistoryEntry, ImageId, ImageRecord, ImportOptions, LoadedImage, Reference,
};
use tokio::io::{AsyncRead, DuplexStream};
use tokio_util::io::SyncIoBridge;

use crate::{Credentials, Daemon, DaemonError, Platform, ProgressSink};

pub(crate) async fn blocking<T: Send + 'static>(
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
        let reference = opts.reference.clone();
        let id = blocking(move || Ok(store.import(reader, &opts)?)).await?;
        self.image_event("import", &id, Some(&id));
        if let Some(r) = reference {
            self.image_event("tag", &id, Some(&r.to_string()));
        }
        Ok(id)
    }

    /// `docker pull` (and the CLI's pull before `run` of a missing image): the registry's
    /// image into the store, dockerd's progress messages into `progress`. An error before
    /// the first message is the request's; after it, the stream's.
    pub async fn image_pull(
        &self,
        reference: Reference,
        platform: Option<&str>,
        credentials: Option<Credentials>,
        progress: ProgressSink,
    ) -> Result<(), DaemonError> {
        let platform = platform
            .filter(|p| !p.is_empty())
            .map(Platform::parse)
            .transpose()?;
        let settings = self.registry_settings();
        let req = berth_registry::PullRequest {
            reference: reference.clone(),
            platform,
            credentials,
        };
        let outcome = berth_registry::pull(self.images.clone(), &settings, req, &progress).await?;
        let name = reference.to_string();
        tracing::debug!(image = %outcome.id, %name, up_to_date = outcome.up_to_date, "pulled");
        self.image_event("pull", &name, Some(&name));
        Ok(())
    }

    /// `docker push NAME[:TAG]`: one tag, or every tag of the repository when `tag` is
    /// empty (as dockerd). An image that is not here is refused before anything is sent.
    pub async fn image_push(
        &self,
        name: &str,
        tag: Option<&str>,
        credentials: Option<Credentials>,
        progress: ProgressSink,
    ) -> Result<(), DaemonError> {
        let repo = Reference::parse_with(name, false)?;
        let wanted: Vec<Reference> = match (tag.filter(|t| !t.is_empty()), &repo.tag) {
            (Some(t), _) => vec![repo.with_tag(t)],
            (None, Some(_)) => vec![repo.clone()],
            (None, None) => self
                .images
                .list()
                .into_iter()
                .flat_map(|r| r.repo_tags)
                .filter(|t| t.full_name() == repo.full_name())
                .collect(),
        };
        if wanted.is_empty() {
            return Err(berth_images::ImageError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                repo.familiar_name()
            ))
            .into());
        }
        let mut pushes = Vec::new();
        for r in wanted {
            let image = self.images.resolve(&r.to_string()).map_err(|_| {
                berth_images::ImageError::NotFound(format!(
                    "An image does not exist locally with the tag: {r}"
                ))
            })?;
            pushes.push((r, image));
        }
        let settings = self.registry_settings();
        for (reference, image) in pushes {
            let req = berth_registry::PushRequest {
                reference: reference.clone(),
                image,
                credentials: credentials.clone(),
            };
            berth_registry::push(self.images.clone(), &settings, req, &progress).await?;
            let name = reference.to_string();
            self.image_event("push", &name, Some(&name));
        }
        Ok(())
    }

    /// `docker login`: the credentials tried against the registry (nothing is kept).
    pub async fn registry_login(
        &self,
        server: &str,
        credentials: Credentials,
    ) -> Result<(), DaemonError> {
        let settings = self.registry_settings();
        Ok(berth_registry::login(&settings, server, credentials).await?)
    }

    /// The registry part of the configuration snapshot (loaded once per pull, push or
    /// login; a reload applies to the next one).
    pub(crate) fn registry_settings(&self) -> berth_registry::RegistrySettings {
        let snapshot = self.config();
        let c = &snapshot.config;
        berth_registry::RegistrySettings {
            insecure: c.insecure_registries.clone(),
            mirrors: c.registry_mirrors.clone(),
            max_concurrent_downloads: c.max_concurrent_downloads as usize,
            max_concurrent_uploads: c.max_concurrent_uploads as usize,
            max_download_attempts: c.max_download_attempts,
            ..Default::default()
        }
    }

    /// `docker load`.
    pub async fn image_load(
        &self,
        body: impl AsyncRead + Send + Unpin + 'static,
    ) -> Result<Vec<LoadedImage>, DaemonError> {
        let store = self.images.clone();
        let reader = SyncIoBridge::new(body);
        let loaded = blocking(move || Ok(store.load(reader)?)).await?;
        for image in &loaded {
            for tag in &image.tags {
                self.image_event("tag", &image.id, Some(&tag.to_string()));
            }
            self.image_event("load", &image.id, Some(&image.id));
        }
        Ok(loaded)
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
        for (id, _) in &wanted {
            self.image_event("save", id, Some(id));
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

    /// `docker history`: one item per history entry (one per layer when the image has no
    /// history), newest first. As dockerd, the newest line carries the image's ID and tags,
    /// the next its parent's, and so on down the parent chain (one line per image, a build
    /// step's image having one entry more than its parent); the lines below the chain's end
    /// are `<missing>`.
    pub fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, DaemonError> {
        let r = self.image_get(name)?;
        let mut layers = r.config.rootfs.diff_ids.iter();
        let entries = if r.config.history.is_empty() {
            r.config
                .rootfs
                .diff_ids
                .iter()
                .map(|_| HistoryEntry::default())
                .collect()
        } else {
            r.config.history.clone()
        };
        let mut out: Vec<HistoryItem> = entries
            .into_iter()
            .map(|h| {
                let size = if h.empty_layer {
                    0
                } else {
                    layers.next().map_or(0, |l| self.image_layer_size(l))
                };
                let created = h
                    .created
                    .as_deref()
                    .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok())
                    .and_then(|t| t.duration_since(std::time::SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                HistoryItem {
                    id: None,
                    created,
                    created_by: h.created_by,
                    tags: None,
                    size,
                    comment: h.comment,
                }
            })
            .collect();
        out.reverse();
        let mut image = Some(r);
        for line in &mut out {
            let Some(i) = image.take() else {
                break;
            };
            // dockerd's `Tags` is null for an untagged image.
            line.tags = (!i.repo_tags.is_empty())
                .then(|| i.repo_tags.iter().map(|t| t.to_string()).collect());
            image = i.parent.as_deref().and_then(|p| self.images.get(p).ok());
            line.id = Some(i.id);
        }
        Ok(out)
    }

    /// `docker tag SOURCE TARGET`.
    pub fn image_tag(&self, name: &str, target: &str) -> Result<(), DaemonError> {
        let id = self.images.resolve(name)?;
        let r = Reference::parse(target)?;
        let name = r.to_string();
        self.images.tag(&id, r)?;
        self.image_event("tag", &id, Some(&name));
        Ok(())
    }

    /// Whether a container was created from the image.
    pub(crate) fn image_in_use(&self, id: &str) -> bool {
        self.containers_using_image(id)
    }

    /// `docker rmi`; `prune_parents` (unless `--no-prune`) deletes the untagged parents the
    /// image leaves unused.
    pub async fn image_delete(
        &self,
        name: &str,
        force: bool,
        prune_parents: bool,
    ) -> Result<Vec<DeleteResult>, DaemonError> {
        let id = self.images.resolve(name).unwrap_or_default();
        let results = self
            .images
            .delete(name, force, prune_parents, &|id| self.image_in_use(id))?;
        self.log_deletions(&id, &results);
        Ok(results)
    }

    /// The events of `rmi` or `prune`: a name untagged is the image deleted next after it,
    /// or `id` when none is.
    fn log_deletions(&self, id: &str, results: &[DeleteResult]) {
        let mut image = id;
        let mut events = Vec::new();
        for r in results.iter().rev() {
            match r {
                DeleteResult::Deleted(deleted) => {
                    image = deleted;
                    events.push(("delete", deleted.as_str(), deleted.as_str()));
                }
                DeleteResult::Untagged(name) => events.push(("untag", image, name.as_str())),
            }
        }
        for (action, id, name) in events.into_iter().rev() {
            self.image_event(action, id, Some(name));
        }
    }

    /// `docker image prune`: the dangling images, or with `all` (`-a`) every image without
    /// children that no container uses.
    pub fn image_prune(&self, all: bool) -> Result<(Vec<DeleteResult>, u64), DaemonError> {
        let (results, reclaimed) = self.images.prune(all, &|id| self.image_in_use(id))?;
        self.log_deletions("", &results);
        let attrs = [("reclaimed".to_string(), reclaimed.to_string())].into();
        self.events()
            .log(crate::events::Event::new("image", "prune", "", attrs));
        Ok((results, reclaimed))
    }
}

/// One line of `docker history`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryItem {
    /// The image's ID on the newest line, its ancestors' below it; unknown (`<missing>`)
    /// past the local parent chain.
    pub id: Option<ImageId>,
    /// Unix seconds (0 when the entry has no time).
    pub created: u64,
    pub created_by: String,
    /// The tags of the line's image (none when it has none, or `id` is unknown).
    pub tags: Option<Vec<String>>,
    pub size: u64,
    pub comment: String,
}

/// What `docker commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    pub container: String,
    pub reference: Option<Reference>,
    pub comment: String,
    pub author: String,
    pub changes: Vec<String>,
    pub pause: bool,
    /// Config fields given in the request body, over the container's.
    pub config: Option<berth_model::ContainerConfig>,
}

impl Daemon {
    /// `docker commit`: the container's changes become a new image (the container is paused
    /// meanwhile when it runs and `pause` is set).
    pub async fn container_commit(&self, req: CommitRequest) -> Result<ImageId, DaemonError> {
        let c = self.containers.get(&req.container)?;
        let record = c.record();
        let upper = c.dir().join("fs").join("upper");
        let paused_here = req.pause && record.state.running() && !record.state.paused();
        if paused_here {
            self.container_pause(&c.id).await?;
        }
        let mut config = record.config.clone();
        if let Some(over) = req.config {
            if over.cmd.is_some() {
                config.cmd = over.cmd;
            }
            if over.entrypoint.is_some() {
                config.entrypoint = over.entrypoint;
            }
            if !over.env.is_empty() {
                config.env = over.env;
            }
            if !over.working_dir.is_empty() {
                config.working_dir = over.working_dir;
            }
            if !over.user.is_empty() {
                config.user = over.user;
            }
            config.labels.extend(over.labels);
        }
        let image_config = berth_images::ContainerConfig {
            user: config.user.clone(),
            env: Some(config.env.clone()),
            entrypoint: config.entrypoint.clone(),
            cmd: config.cmd.clone(),
            working_dir: config.working_dir.clone(),
            labels: (!config.labels.is_empty()).then(|| config.labels.clone()),
            exposed_ports: config.exposed_ports.clone(),
            volumes: config.volumes.clone(),
            stop_signal: config.stop_signal.clone(),
            // The container's healthcheck stays the image's, as dockerd commits it.
            extra: config
                .healthcheck
                .as_ref()
                .and_then(|h| serde_json::to_value(h).ok())
                .map(|h| serde_json::Map::from_iter([("Healthcheck".to_string(), h)]))
                .unwrap_or_default(),
        };
        let opts = berth_images::CommitOptions {
            reference: req.reference,
            comment: req.comment,
            author: req.author,
            changes: req.changes,
            config: image_config,
            created_by: std::iter::once(record.path.clone())
                .chain(record.args.iter().cloned())
                .collect::<Vec<_>>()
                .join(" "),
            container_id: c.id.clone(),
        };
        let store = self.images.clone();
        let parent = record.image.clone();
        let comment = opts.comment.clone();
        let reference = opts.reference.as_ref().map(ToString::to_string);
        let result = blocking(move || Ok(store.commit(&parent, &upper, &opts)?)).await;
        if paused_here && let Err(e) = self.container_unpause(&c.id).await {
            tracing::warn!(container = %c.id, error = %e, "cannot unpause after commit");
        }
        if let Ok(id) = &result {
            let mut attrs = vec![("comment", comment), ("imageID", id.clone())];
            attrs.extend(reference.map(|r| ("imageRef", r)));
            self.container_event(&c, "commit", &attrs);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestEngine;

    #[tokio::test]
    async fn history_names_each_image_of_the_parent_chain() {
        let e = TestEngine::new();
        let base = e.import_image("acc/base:1").await;
        let mid = e.child_image(&base, "RUN a", None);
        let top = e.child_image(&mid, "RUN b", Some("acc/top:1"));
        let lines = e.daemon.image_history("acc/top:1").unwrap();
        let ids: Vec<Option<&str>> = lines.iter().map(|l| l.id.as_deref()).collect();
        assert_eq!(ids, vec![Some(top.as_str()), Some(&mid), Some(&base)]);
        let tags: Vec<Option<Vec<String>>> = lines.iter().map(|l| l.tags.clone()).collect();
        let named = |t: &str| Some(vec![t.to_string()]);
        assert_eq!(tags, vec![named("acc/top:1"), None, named("acc/base:1")]);
        let steps: Vec<&str> = lines.iter().map(|l| l.created_by.as_str()).collect();
        assert_eq!(steps, vec!["RUN b", "RUN a", ""]);
        assert_eq!(lines[2].size, 2, "the base's layer");
        // Past the local chain, the lines are `<missing>`.
        let mut config = e.daemon.image_get(&top).unwrap().config;
        config.history.insert(0, Default::default());
        let raw = serde_json::to_vec(&config).unwrap();
        let orphan = e.daemon.images.put_child_image(&raw, None, &[]).unwrap();
        let ids: Vec<Option<String>> = e
            .daemon
            .image_history(&orphan)
            .unwrap()
            .into_iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(ids, vec![Some(orphan), None, None, None]);
    }

    #[tokio::test]
    async fn pulls_take_the_registry_keys_from_the_snapshot() {
        let e = TestEngine::builder()
            .daemon_json(
                r#"{"insecure-registries": ["10.9.0.0/16"], "registry-mirrors": ["http://127.0.0.1:5000"],
                    "max-concurrent-downloads": 1, "max-download-attempts": 2}"#,
            )
            .build();
        let s = e.daemon.registry_settings();
        assert_eq!(s.insecure, vec!["10.9.0.0/16"]);
        assert_eq!(s.mirrors, vec!["http://127.0.0.1:5000/"]);
        assert_eq!(
            (
                s.max_concurrent_downloads,
                s.max_concurrent_uploads,
                s.max_download_attempts
            ),
            (1, 5, 2)
        );
        assert!(s.is_insecure("10.9.1.1:5000"));
    }
}
