//! `docker build` with the classic builder (`POST /build`): the context received into a
//! folder of the builder's own, the Dockerfile parsed (berth-dockerfile), the stages the
//! target needs run in order, one image per instruction, each the child of the one before.
//!
//! A step is taken from the cache when an image was made before from the same parent by the
//! same instruction: the key is the parent's ID, the instruction as its history records it
//! (RUN with the build args it sees, COPY and ADD with the checksum of their sources) and the
//! config it leaves; keys live in `<data-root>/builder/cache/`, so they survive a restart.
//! RUN runs in a container made by the engine's own create and start (the build's network,
//! limits, the daemon's runtime and security defaults), its changes committed as a layer;
//! COPY, ADD and WORKDIR write through an overlay of the parent's layers mounted for the step
//! (paths resolved inside it); the other instructions change the config alone.

mod cache;
mod context;
mod copy;
mod steps;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use berth_dockerfile::{Command, Dockerfile, Instruction, Lexer};
use berth_images::{ImageConfig, Reference};
use berth_registry::{Credentials, Progress, ProgressSink};
use tokio::io::AsyncRead;

use crate::{Daemon, DaemonError};

pub use cache::{BuildCachePruned, BuildCacheRecord};

/// What `POST /build` asks for (dockerd's query parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path in the context (`Dockerfile` when empty).
    pub dockerfile: String,
    pub tags: Vec<Reference>,
    /// `--build-arg`: a name without a value (`None`) is unset.
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
    /// Remove intermediate containers (dockerd's default: true).
    pub rm: bool,
    pub force_rm: bool,
    pub quiet: bool,
    pub network_mode: String,
    pub extra_hosts: Vec<String>,
    pub shm_size: i64,
    pub memory: i64,
    pub memory_swap: i64,
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    pub platform: Option<String>,
    pub cache_from: Vec<String>,
    /// `X-Registry-Config`: credentials by registry, for the FROM images a build pulls.
    pub registry_auth: BTreeMap<String, Credentials>,
}

/// The build args every build knows without an ARG (dockerd's predefined proxy args); they
/// stay out of the history and the cache key unless the Dockerfile declares them.
const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Why a build failed, in dockerd's words.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile or the request is wrong (400 before the stream).
    #[error("{0}")]
    Invalid(String),
    /// A step failed (in the stream).
    #[error("{0}")]
    Step(String),
    /// A RUN command exited non-zero: dockerd's message and the command's code.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed { command: String, code: i64 },
}

/// One stage's state while it is built.
#[derive(Debug, Clone)]
struct StageState {
    /// The image the last step left ("" for `FROM scratch` before any step).
    image: String,
    config: ImageConfig,
    /// The stage's ARGs in effect, declared in order, with their values.
    args: Vec<(String, Option<String>)>,
    /// CMD was set in this stage (ENTRYPOINT then keeps it).
    cmd_set: bool,
}

/// A build in progress.
struct Build<'a> {
    d: &'a Daemon,
    opts: BuildOptions,
    sink: ProgressSink,
    /// The context, unpacked.
    context: context::Context,
    lexer: Lexer,
    step: usize,
    total: usize,
    /// The meta ARGs (before the first FROM) with their values.
    meta_args: Vec<(String, Option<String>)>,
    /// Each built stage's image, by index.
    stage_images: HashMap<usize, String>,
    stage_names: HashMap<String, usize>,
    used_args: BTreeSet<String>,
    /// Folder for this build's temporary files.
    tmp: PathBuf,
    /// The Dockerfile's escape character (ONBUILD triggers parse with it).
    escape: char,
    /// Numbers the steps' work folders.
    seq: usize,
}

impl Daemon {
    /// `POST /build`: builds the context `body` (a tar, plain or gzip) as `opts` says,
    /// dockerd's JSON messages into `sink`. An error before the first message (a bad
    /// Dockerfile, no such file) is the request's; after it, the stream's.
    pub async fn image_build(
        &self,
        opts: BuildOptions,
        body: impl AsyncRead + Send + Unpin + 'static,
        sink: ProgressSink,
    ) -> Result<(), DaemonError> {
        let tmp_root = self.paths().builder_dir().join("tmp");
        let tmp = tmp_root.join(crate::containers::random_hex(8));
        let context = context::Context::receive(body, &tmp).await?;
        let result = self.build_in(opts, context, sink, tmp.clone()).await;
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&tmp)).await;
        result
    }

    async fn build_in(
        &self,
        opts: BuildOptions,
        context: context::Context,
        sink: ProgressSink,
        tmp: PathBuf,
    ) -> Result<(), DaemonError> {
        let text = context.dockerfile(&opts.dockerfile)?;
        let name = if opts.dockerfile.is_empty() {
            "Dockerfile"
        } else {
            opts.dockerfile.as_str()
        };
        let file = berth_dockerfile::parse(&text)
            .map_err(|e| BuildError::Invalid(parse_message(&e, name)))?;
        let mut b = Build {
            d: self,
            lexer: Lexer::new(file.escape),
            opts,
            sink,
            context,
            step: 0,
            total: 0,
            meta_args: Vec::new(),
            stage_images: HashMap::new(),
            stage_names: HashMap::new(),
            used_args: BTreeSet::new(),
            tmp,
            escape: file.escape,
            seq: 0,
        };
        b.run(&file).await
    }
}

impl Build<'_> {
    fn say(&self, text: impl Into<String>) {
        if !self.opts.quiet {
            let _ = self.sink.send(Progress::text(text));
        }
    }

    /// The value a build arg was given (`--build-arg`), if any.
    fn given(&self, name: &str) -> Option<String> {
        self.opts.build_args.get(name).cloned().flatten()
    }

    async fn run(&mut self, file: &Dockerfile) -> Result<(), DaemonError> {
        // The meta ARGs: a default expanded against those before it, a given value over it.
        for inst in &file.meta_args {
            if let Command::Arg(args) = &inst.command {
                for (name, default) in args {
                    let env = self.meta_env();
                    let value = match self.given(name) {
                        Some(v) => Some(v),
                        None => default
                            .as_deref()
                            .map(|d| self.lexer.process_word(d, &env))
                            .transpose()
                            .map_err(|e| BuildError::Invalid(e.to_string()))?,
                    };
                    self.used_args.insert(name.clone());
                    self.meta_args.retain(|(n, _)| n != name);
                    self.meta_args.push((name.clone(), value));
                }
            }
        }
        if file.stages.is_empty() {
            return Err(BuildError::Invalid(
                "No image was generated. Is your Dockerfile empty?".into(),
            )
            .into());
        }
        for (i, s) in file.stages.iter().enumerate() {
            if let Some(n) = &s.name {
                self.stage_names.insert(n.clone(), i);
            }
        }
        let last = match &self.opts.target {
            Some(t) if !t.is_empty() => {
                *self.stage_names.get(&t.to_lowercase()).ok_or_else(|| {
                    BuildError::Invalid(format!("failed to reach build target {t} in Dockerfile"))
                })?
            }
            _ => file.stages.len() - 1,
        };
        let needed = self.needed_stages(file, last);
        self.total = file.meta_args.len()
            + self.opts.labels.len()
            + needed
                .iter()
                .map(|&i| 1 + file.stages[i].instructions.len())
                .sum::<usize>();
        // The ARGs before the first FROM are steps too, with nothing to commit.
        for inst in &file.meta_args {
            self.next_step(inst);
        }

        let mut final_image = String::new();
        for &i in &needed {
            let stage = &file.stages[i];
            let mut state = self.from(&stage.from).await?;
            state = self.onbuild_triggers(state).await?;
            for inst in &stage.instructions {
                state = self.instruction(state, inst, true).await?;
            }
            if i == last {
                // `--label`: one LABEL step per label at the end of the target, as dockerd
                // appends them to the Dockerfile (sorted by key).
                for (k, v) in self.opts.labels.clone() {
                    let original = format!("LABEL {k}={v}");
                    self.next_step(&Instruction {
                        original: original.clone(),
                        line: 0,
                        command: Command::Label(Vec::new()),
                    });
                    state
                        .config
                        .config
                        .labels
                        .get_or_insert_with(BTreeMap::new)
                        .insert(k, v);
                    state = self.commit_config_only(state, &original).await?;
                }
            }
            if state.image.is_empty() {
                // `FROM scratch` and nothing after it: an image of no layers.
                state = self.commit_config_only(state, "").await?;
            }
            self.stage_images.insert(i, state.image.clone());
            final_image = state.image;
        }
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.say(format!(
                "[Warning] One or more build-args [{}] were not consumed\n",
                names.join(" ")
            ));
        }
        // The ID for `--iidfile`; with `q` dockerd sends only the ID as text, at the end.
        if !self.opts.quiet {
            let _ = self.sink.send(Progress {
                aux: Some(serde_json::json!({ "ID": final_image })),
                ..Default::default()
            });
        }
        let short = short_id(&final_image);
        self.say(format!("Successfully built {short}\n"));
        for t in &self.opts.tags {
            self.d.image_tag(&final_image, &t.to_string())?;
            self.say(format!("Successfully tagged {}\n", t));
        }
        if self.opts.quiet {
            let _ = self.sink.send(Progress::text(format!("{final_image}\n")));
        }
        Ok(())
    }

    /// The stages the target needs, in order: the target, the stages its FROM names and the
    /// ones `COPY --from` names, and theirs.
    fn needed_stages(&self, file: &Dockerfile, last: usize) -> Vec<usize> {
        let env = self.meta_env();
        let mut need = BTreeSet::new();
        let mut todo = vec![last];
        while let Some(i) = todo.pop() {
            if !need.insert(i) {
                continue;
            }
            let stage = &file.stages[i];
            let mut refs = Vec::new();
            if let Command::From { image, .. } = &stage.from.command {
                refs.push(self.lexer.process_word(image, &env).unwrap_or_default());
            }
            for inst in &stage.instructions {
                if let Command::Copy(a) | Command::Add(a) = &inst.command
                    && let Some(f) = &a.from
                {
                    refs.push(self.lexer.process_word(f, &env).unwrap_or_default());
                }
            }
            for r in refs {
                let dep = match r.parse::<usize>() {
                    Ok(n) => Some(n),
                    Err(_) => self.stage_names.get(&r.to_lowercase()).copied(),
                };
                if let Some(dep) = dep.filter(|&d| d < i) {
                    todo.push(dep);
                }
            }
        }
        need.into_iter().collect()
    }

    /// The environment FROM lines expand in: the meta ARGs with values.
    fn meta_env(&self) -> Vec<(String, String)> {
        self.meta_args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect()
    }

    fn next_step(&mut self, inst: &Instruction) {
        self.step += 1;
        self.say(format!(
            "Step {}/{} : {}",
            self.step, self.total, inst.original
        ));
        self.say("\n");
    }
}

/// A parse error in dockerd's words: the file's name when it is empty; errors of the line
/// parser (not of an instruction's arguments) as "failed to parse Dockerfile".
fn parse_message(e: &berth_dockerfile::DockerfileError, name: &str) -> String {
    use berth_dockerfile::{DockerfileError as E, InstructionError as I};
    match e {
        E::Empty => format!("the Dockerfile ({name}) cannot be empty"),
        E::NoInstructions => format!("failed to parse Dockerfile: {e}"),
        E::Line {
            error: error @ I::NoBuildStage,
            ..
        } => error.to_string(),
        E::Line {
            error: error @ I::TwoArguments(_),
            ..
        } => format!("failed to parse Dockerfile: {error}"),
        e => e.to_string(),
    }
}

/// An image ID's first 12 hex digits.
pub(crate) fn short_id(id: &str) -> String {
    id.strip_prefix("sha256:")
        .unwrap_or(id)
        .chars()
        .take(12)
        .collect()
}

/// Go's `%q` of a string list (`["a" "b"]`), as dockerd writes CMD and friends in history.
fn go_quoted_list(items: &[String]) -> String {
    let inner: Vec<String> = items
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", inner.join(" "))
}

impl Daemon {
    /// What a berthd that died mid-build left under `<data-root>/builder/tmp`: the steps'
    /// overlay mounts unmounted (never walked into), then the folders removed.
    pub(crate) fn remove_stale_builds(&self) {
        let tmp = self.paths().builder_dir().join("tmp");
        let Ok(builds) = std::fs::read_dir(&tmp) else {
            return;
        };
        for build in builds.flatten() {
            for step in std::fs::read_dir(build.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                for view in ["merged", "source"] {
                    let p = step.path().join(view);
                    match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
                        Ok(()) => {
                            tracing::info!(view = %p.display(), "unmounted a build step's view left by a crash")
                        }
                        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
                        Err(e) => {
                            tracing::warn!(view = %p.display(), error = %e, "cannot unmount a stale build view");
                            // Never walk into what may still be mounted.
                            return;
                        }
                    }
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            tracing::warn!(path = %tmp.display(), error = %e, "cannot remove stale build folders");
        }
    }

    /// The image an image was built on (a build step's parent), if it is here.
    fn parent_of(&self, id: &str) -> Option<String> {
        self.images.parent(id)
    }

    /// Every image a tagged image is built on, and the tagged images themselves.
    fn tagged_chains(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for r in self.image_list() {
            if r.repo_tags.is_empty() {
                continue;
            }
            let mut at = Some(r.id.clone());
            while let Some(id) = at {
                if !out.insert(id.clone()) {
                    break;
                }
                at = self.parent_of(&id);
            }
        }
        out
    }

    /// The build cache as `docker system df` shows it: a record per cached step.
    pub fn build_cache(&self) -> Vec<BuildCacheRecord> {
        let builder = self.paths().builder_dir();
        let chains = self.tagged_chains();
        cache::list(&builder)
            .into_iter()
            .filter(|r| self.image_get(&r.image).is_ok())
            .map(|mut r| {
                r.shared = chains.contains(&r.image);
                r
            })
            .collect()
    }

    /// `docker builder prune`: forgets the steps no tagged image is built on (`all`: every
    /// step) and removes their images when nothing else needs them.
    pub async fn build_cache_prune(&self, all: bool) -> Result<BuildCachePruned, DaemonError> {
        let builder = self.paths().builder_dir();
        let chains = self.tagged_chains();
        let bytes = |d: &Daemon| -> u64 {
            let layers: BTreeSet<String> = d
                .image_list()
                .into_iter()
                .flat_map(|r| r.config.rootfs.diff_ids)
                .collect();
            layers.iter().map(|l| d.image_layer_size(l)).sum()
        };
        let before = bytes(self);
        let mut out = BuildCachePruned::default();
        for r in cache::list(&builder) {
            let exists = self.image_get(&r.image).is_ok();
            if exists && !all && chains.contains(&r.image) {
                continue;
            }
            cache::forget(&builder, &r.id);
            out.deleted.push(r.id.clone());
            if exists && !chains.contains(&r.image) && !self.image_in_use(&r.image) {
                // An image with children or tags stays; its own removal is not an error.
                if let Err(e) = self.image_delete(&r.image, false, true).await {
                    tracing::debug!(image = %r.image, error = %e, "build cache image kept");
                }
            }
        }
        out.reclaimed = before.saturating_sub(bytes(self));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_lists_are_go_quoted() {
        assert_eq!(
            go_quoted_list(&["cat".into(), "/app/hello.txt".into()]),
            r#"["cat" "/app/hello.txt"]"#
        );
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
