//! One instruction at a time: what it does to the config, the line its history records, the
//! cache, and the work (a RUN container, a COPY through an overlay) when the cache has no
//! image for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_dockerfile::{Command, Healthcheck, Instruction, ShellOrExec};
use berth_images::{ContainerConfig, HistoryEntry, ImageConfig, Reference, RootFs};

use super::copy::{self, CopyRequest, SourceTree};
use super::{Build, BuildError, PROXY_ARGS, StageState, cache, go_quoted_list, short_id};
use crate::containers::wait::WaitCondition;
use crate::images::blocking;
use crate::{DaemonError, Progress};

/// The work a step does besides changing the config.
enum Action {
    None,
    Run { cmd: Vec<String>, env: Vec<String> },
    Copy(copy::Gathered),
    Workdir(String),
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn step_err(e: impl std::fmt::Display) -> DaemonError {
    BuildError::Step(e.to_string()).into()
}

fn env_pairs(env: &[String]) -> Vec<(String, String)> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect()
}

fn set_env(cfg: &mut ContainerConfig, key: &str, value: &str) {
    let env = cfg.env.get_or_insert_with(Vec::new);
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// `/a/b/../c` → `/a/c`, as Go's `path.Clean` of an absolute path.
pub(super) fn clean_abs(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

impl Build<'_> {
    /// The words of an instruction expand in the stage's ARGs and ENV (ENV wins).
    fn env(&self, state: &StageState) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = state
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect();
        for p in PROXY_ARGS {
            if let Some(v) = self.given(p)
                && !env.iter().any(|(k, _)| k == p)
            {
                env.push((p.to_string(), v));
            }
        }
        env.extend(env_pairs(state.config.config.env.as_deref().unwrap_or(&[])));
        env
    }

    fn shell(cfg: &ContainerConfig) -> Vec<String> {
        cfg.extra
            .get("Shell")
            .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect())
    }

    fn command_of(cfg: &ContainerConfig, c: &ShellOrExec) -> Vec<String> {
        match c {
            ShellOrExec::Exec(v) => v.clone(),
            ShellOrExec::Shell(s) => {
                let mut v = Self::shell(cfg);
                v.push(s.clone());
                v
            }
        }
    }

    /// FROM: the base image (a stage before, `scratch`, or an image, pulled when missing or
    /// when `pull` is set).
    pub(super) async fn from(&mut self, inst: &Instruction) -> Result<StageState, DaemonError> {
        self.next_step(inst);
        let Command::From {
            image, platform, ..
        } = &inst.command
        else {
            return Err(step_err("a stage must start with FROM"));
        };
        let env = self.meta_env();
        let name = self.lexer.process_word(image, &env).map_err(step_err)?;
        let platform = platform
            .as_deref()
            .map(|p| self.lexer.process_word(p, &env))
            .transpose()
            .map_err(step_err)?
            .or_else(|| self.opts.platform.clone());
        let fresh = |mut config: ImageConfig, image: String| {
            // dockerd gives a stage the default PATH when its image has none.
            let env = config.config.env.get_or_insert_with(Vec::new);
            if !env.iter().any(|e| e.starts_with("PATH=")) {
                env.insert(0, DEFAULT_PATH.to_string());
            }
            StageState {
                image,
                config,
                args: Vec::new(),
                cmd_set: false,
            }
        };
        if name.eq_ignore_ascii_case("scratch") {
            self.say(" ---> \n");
            let config = ImageConfig {
                architecture: go_arch().to_string(),
                os: "linux".into(),
                rootfs: RootFs {
                    typ: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..Default::default()
            };
            return Ok(fresh(config, String::new()));
        }
        if let Some(&i) = self.stage_names.get(&name.to_lowercase())
            && let Some(id) = self.stage_images.get(&i)
        {
            let r = self.d.image_get(id)?;
            self.say_base(&r);
            return Ok(fresh(r.config, r.id));
        }
        let record = match self.d.image_get(&name) {
            Ok(r) if !self.opts.pull => r,
            _ => {
                self.pull(&name, platform.as_deref()).await?;
                self.d.image_get(&name)?
            }
        };
        self.say_base(&record);
        Ok(fresh(record.config, record.id))
    }

    /// The base image's ID, unless its ONBUILD triggers run first (their image follows).
    fn say_base(&self, r: &berth_images::ImageRecord) {
        let triggers = r
            .config
            .config
            .extra
            .get("OnBuild")
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty());
        if !triggers {
            self.say(format!(" ---> {}\n", short_id(&r.id)));
        }
    }

    async fn pull(&self, name: &str, platform: Option<&str>) -> Result<(), DaemonError> {
        let reference = Reference::parse(name)?;
        let host = reference.full_name();
        let host = host.split('/').next().unwrap_or_default().to_string();
        let creds = self
            .opts
            .registry_auth
            .iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                let k = k.split('/').next().unwrap_or_default();
                k == host || (host == "docker.io" && k.contains("docker.io"))
            })
            .map(|(_, c)| c.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sink = self.sink.clone();
        let quiet = self.opts.quiet;
        let forward = async move {
            while let Some(m) = rx.recv().await {
                if !quiet {
                    let _ = sink.send(m);
                }
            }
        };
        let (result, ()) = tokio::join!(self.d.image_pull(reference, platform, creds, tx), forward);
        result
    }

    /// The base image's ONBUILD triggers, run as the stage's first instructions.
    pub(super) async fn onbuild_triggers(
        &mut self,
        mut state: StageState,
    ) -> Result<StageState, DaemonError> {
        let triggers: Vec<String> = state
            .config
            .config
            .extra
            .remove("OnBuild")
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if triggers.is_empty() {
            return Ok(state);
        }
        let n = triggers.len();
        self.say(format!(
            "# Executing {n} build trigger{}\n",
            if n == 1 { "" } else { "s" }
        ));
        for t in triggers {
            let inst = berth_dockerfile::parse_instruction(&t, self.escape).map_err(step_err)?;
            state = self.instruction(state, &inst, false).await?;
        }
        Ok(state)
    }

    /// One instruction of a stage.
    pub(super) async fn instruction(
        &mut self,
        mut state: StageState,
        inst: &Instruction,
        numbered: bool,
    ) -> Result<StageState, DaemonError> {
        if numbered {
            self.next_step(inst);
        }
        let env = self.env(&state);
        let word = |w: &str| self.lexer.process_word(w, &env).map_err(step_err);
        let words = |w: &str| self.lexer.process_words(w, &env).map_err(step_err);
        let mut cfg = state.config.config.clone();
        let mut action = Action::None;
        let mut key_extra = String::new();
        let message = match &inst.command {
            Command::From { .. } => return Err(step_err("FROM inside a stage")),
            Command::Env(pairs) => {
                let mut parts = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (word(k)?, word(v)?);
                    if k.is_empty() {
                        return Err(step_err("ENV names can not be blank"));
                    }
                    set_env(&mut cfg, &k, &v);
                    parts.push(format!("{k}={v}"));
                }
                format!("ENV {}", parts.join(" "))
            }
            Command::Arg(args) => {
                let mut parts = Vec::new();
                for (name, default) in args {
                    let default = default.as_deref().map(word).transpose()?;
                    let value = self.given(name).or_else(|| default.clone()).or_else(|| {
                        self.meta_args
                            .iter()
                            .find(|(n, _)| n == name)
                            .and_then(|(_, v)| v.clone())
                    });
                    self.used_args.insert(name.clone());
                    state.args.retain(|(n, _)| n != name);
                    state.args.push((name.clone(), value));
                    parts.push(match default {
                        Some(d) => format!("{name}={d}"),
                        None => name.clone(),
                    });
                }
                format!("ARG {}", parts.join(" "))
            }
            Command::Label(pairs) => {
                let mut parts = Vec::new();
                let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
                for (k, v) in pairs {
                    let (k, v) = (word(k)?, word(v)?);
                    labels.insert(k.clone(), v.clone());
                    parts.push(format!("{k}={v}"));
                }
                format!("LABEL {}", parts.join(" "))
            }
            Command::Workdir(p) => {
                let p = word(p)?;
                let base = if cfg.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    cfg.working_dir.clone()
                };
                let full = if p.starts_with('/') {
                    clean_abs(&p)
                } else {
                    clean_abs(&format!("{base}/{p}"))
                };
                cfg.working_dir = full.clone();
                action = Action::Workdir(full.clone());
                format!("WORKDIR {full}")
            }
            Command::User(u) => {
                cfg.user = word(u)?;
                format!("USER {}", cfg.user)
            }
            Command::Expose(ports) => {
                let mut all = Vec::new();
                for p in ports {
                    all.extend(words(p)?);
                }
                let exposed = cfg.exposed_ports.get_or_insert_with(BTreeMap::new);
                for p in &all {
                    for port in expand_port(p).map_err(step_err)? {
                        exposed.insert(port, serde_json::json!({}));
                    }
                }
                all.sort();
                format!("EXPOSE {}", all.join(" "))
            }
            Command::Volume(vols) => {
                let mut all = Vec::new();
                for v in vols {
                    for v in words(v)? {
                        if v.trim().is_empty() {
                            return Err(step_err("VOLUME specified can not be an empty string"));
                        }
                        all.push(v);
                    }
                }
                let volumes = cfg.volumes.get_or_insert_with(BTreeMap::new);
                for v in &all {
                    volumes.insert(v.clone(), serde_json::json!({}));
                }
                format!("VOLUME [{}]", all.join(" "))
            }
            Command::StopSignal(s) => {
                let s = word(s)?;
                crate::parse_signal(&s).map_err(step_err)?;
                cfg.stop_signal = Some(s.clone());
                format!("STOPSIGNAL {s}")
            }
            Command::Healthcheck(h) => {
                let value = match h {
                    Healthcheck::None => serde_json::json!({ "Test": ["NONE"] }),
                    Healthcheck::Check {
                        test,
                        interval_ns,
                        timeout_ns,
                        start_period_ns,
                        start_interval_ns,
                        retries,
                    } => {
                        let mut m = serde_json::Map::new();
                        m.insert("Test".into(), serde_json::json!(test));
                        for (k, v) in [
                            ("Interval", *interval_ns),
                            ("Timeout", *timeout_ns),
                            ("StartPeriod", *start_period_ns),
                            ("StartInterval", *start_interval_ns),
                            ("Retries", *retries),
                        ] {
                            if v != 0 {
                                m.insert(k.into(), serde_json::json!(v));
                            }
                        }
                        serde_json::Value::Object(m)
                    }
                };
                let test: Vec<String> = value["Test"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let ns = |k: &str| value[k].as_i64().unwrap_or(0);
                // dockerd 20.10's `%q` of its HealthConfig (which has no StartInterval).
                let message = format!(
                    "HEALTHCHECK &{{{} \"{}\" \"{}\" \"{}\" '\\x{:02x}'}}",
                    go_quoted_list(&test),
                    go_duration(ns("Interval")),
                    go_duration(ns("Timeout")),
                    go_duration(ns("StartPeriod")),
                    ns("Retries"),
                );
                cfg.extra.insert("Healthcheck".into(), value);
                message
            }
            Command::Shell(sh) => {
                if sh.is_empty() {
                    return Err(step_err("SHELL requires at least one argument"));
                }
                cfg.extra.insert("Shell".into(), serde_json::json!(sh));
                format!("SHELL [{}]", sh.join(" "))
            }
            Command::Onbuild(trigger) => {
                let mut list: Vec<String> = cfg
                    .extra
                    .get("OnBuild")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                    .unwrap_or_default();
                list.push(trigger.clone());
                cfg.extra.insert("OnBuild".into(), serde_json::json!(list));
                format!("ONBUILD {trigger}")
            }
            Command::Maintainer(m) => {
                state.config.author = word(m)?;
                key_extra = format!("author={}", state.config.author);
                format!("MAINTAINER {}", state.config.author)
            }
            Command::Cmd(c) => {
                let v = Self::command_of(&cfg, c);
                cfg.cmd = Some(v.clone());
                state.cmd_set = true;
                format!("CMD {}", go_quoted_list(&v))
            }
            Command::Entrypoint(c) => {
                let v = Self::command_of(&cfg, c);
                cfg.entrypoint = Some(v.clone());
                if !state.cmd_set {
                    cfg.cmd = None;
                }
                format!("ENTRYPOINT {}", go_quoted_list(&v))
            }
            Command::Run { command, heredocs } => {
                let command = match (command, heredocs.as_slice()) {
                    (c, []) => c.clone(),
                    // `RUN <<EOF` alone: the heredoc is the script.
                    (ShellOrExec::Shell(s), [h]) if !s.trim().contains(char::is_whitespace) => {
                        ShellOrExec::Shell(h.text())
                    }
                    // Otherwise the shell reads its heredocs itself: the command, then each
                    // body and its delimiter, as they were written.
                    (ShellOrExec::Shell(s), hs) => {
                        let mut text = s.clone();
                        for h in hs {
                            text.push('\n');
                            text.push_str(&h.content);
                            text.push_str(&h.name);
                        }
                        ShellOrExec::Shell(text)
                    }
                    (ShellOrExec::Exec(_), _) => {
                        return Err(step_err("heredocs need the shell form of RUN"));
                    }
                };
                let cmd = Self::command_of(&cfg, &command);
                // The build args the command sees (not those ENV overrides), in history and
                // in the cache key, as dockerd's `|N K=V` prefix.
                let env_keys: Vec<String> = env_pairs(cfg.env.as_deref().unwrap_or(&[]))
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                let mut visible: Vec<String> = state
                    .args
                    .iter()
                    .filter(|(k, _)| !env_keys.contains(k))
                    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                    .collect();
                visible.sort();
                let mut run_env = cfg.env.clone().unwrap_or_default();
                run_env.extend(visible.iter().cloned());
                for p in PROXY_ARGS {
                    if let Some(v) = self.given(p)
                        && !state.args.iter().any(|(k, _)| k == p)
                    {
                        run_env.push(format!("{p}={v}"));
                    }
                }
                let created_by = if visible.is_empty() {
                    cmd.join(" ")
                } else {
                    format!("|{} {} {}", visible.len(), visible.join(" "), cmd.join(" "))
                };
                action = Action::Run { cmd, env: run_env };
                return self.step(state, cfg, created_by, action, key_extra).await;
            }
            Command::Copy(a) | Command::Add(a) => {
                let is_add = matches!(inst.command, Command::Add(_));
                let name = if is_add { "ADD" } else { "COPY" };
                let mut sources = Vec::new();
                for s in &a.sources {
                    sources.push(word(s)?);
                }
                let dest = word(&a.dest)?;
                let workdir = if cfg.working_dir.is_empty() {
                    "/".to_string()
                } else {
                    cfg.working_dir.clone()
                };
                let mut dest_abs = if dest.starts_with('/') {
                    clean_abs(&dest)
                } else {
                    clean_abs(&format!("{workdir}/{dest}"))
                };
                if (dest.ends_with('/') || dest.ends_with("/.") || dest == ".") && dest_abs != "/" {
                    dest_abs.push('/');
                }
                let from = a.from.as_deref().map(word).transpose()?;
                let tree = match &from {
                    None => SourceTree::Context,
                    Some(f) => self.source_image(f).await?,
                };
                let chown = a.chown.as_deref().map(word).transpose()?;
                let chmod = a.chmod.as_deref().map(word).transpose()?;
                let tmp = self.step_dir();
                let mut fetched = if is_add {
                    self.fetch_urls(&sources, &tmp).await?
                } else {
                    BTreeMap::new()
                };
                // `COPY <<EOF /dest`: each heredoc a file named by its delimiter.
                for h in &a.heredocs {
                    let i = sources.len();
                    let folder = tmp.join(format!("heredoc-{i}"));
                    write_heredoc(&folder, &h.name, &h.text())?;
                    sources.push(format!("<<{}", h.name));
                    fetched.insert(i, (folder, h.name.clone()));
                }
                let req = CopyRequest {
                    name,
                    is_add,
                    sources,
                    fetched,
                    dest: dest_abs.clone(),
                    chown,
                    chmod,
                    tree,
                };
                let gathered = {
                    let ctx = self.context.dir.clone();
                    let ignore = self.context.ignore.clone();
                    blocking(move || copy::gather(req, &ctx, &ignore, &tmp)).await?
                };
                let hash = gathered.hash.clone();
                key_extra = format!(
                    "chown={:?} chmod={:?} from={:?}",
                    gathered.req.chown, gathered.req.chmod, from
                );
                let by = match &from {
                    Some(f) => format!("{name} from:{f} {hash} in {dest_abs} "),
                    None => format!("{name} {hash} in {dest_abs} "),
                };
                action = Action::Copy(gathered);
                by
            }
        };
        let mut nop = Self::shell(&cfg);
        let sep = if matches!(action, Action::Copy(_) | Action::Workdir(_)) {
            "#(nop)"
        } else {
            "#(nop) "
        };
        nop.push(format!("{sep} {message}"));
        let created_by = nop.join(" ");
        self.step(state, cfg, created_by, action, key_extra).await
    }

    /// A fresh folder for a step's work.
    fn step_dir(&mut self) -> PathBuf {
        self.seq += 1;
        self.tmp.join(format!("step-{}", self.seq))
    }

    /// ADD's URL sources, each downloaded into a folder of its own under `dir`: the file
    /// named as the URL's last path element, 0600, with the answer's Last-Modified time.
    async fn fetch_urls(
        &self,
        sources: &[String],
        dir: &std::path::Path,
    ) -> Result<BTreeMap<usize, (PathBuf, String)>, DaemonError> {
        let mut out = BTreeMap::new();
        for (i, src) in sources.iter().enumerate() {
            if !(src.starts_with("http://") || src.starts_with("https://")) {
                continue;
            }
            let path = src.split(['?', '#']).next().unwrap_or_default();
            let name = path
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('/'))
                .and_then(|(_, p)| p.rsplit('/').next())
                .filter(|n| !n.is_empty() && *n != "." && *n != "..")
                .map(str::to_string)
                .ok_or_else(|| {
                    step_err(format!(
                        "ADD failed: cannot determine filename from url: {src}"
                    ))
                })?;
            let folder = dir.join(format!("url-{i}"));
            std::fs::create_dir_all(&folder).map_err(|source| DaemonError::Io {
                path: folder.clone(),
                source,
            })?;
            let file = folder.join(&name);
            self.say(format!("Downloading {src}\n"));
            let settings = self.d.registry_settings();
            let fetched = berth_registry::fetch_url(&settings, src, &file)
                .await
                .map_err(|e| {
                    step_err(format!(
                        "ADD failed: {}",
                        DaemonError::from(e).user_message()
                    ))
                })?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            if let Some(t) = fetched.last_modified
                && let Ok(f) = std::fs::File::options().write(true).open(&file)
            {
                let _ = f.set_modified(t);
            }
            out.insert(i, (folder, name));
        }
        Ok(out)
    }

    /// The tree `COPY --from` reads: a stage built before (by name or index) or an image.
    async fn source_image(&self, from: &str) -> Result<SourceTree, DaemonError> {
        let stage = match from.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => self.stage_names.get(&from.to_lowercase()).copied(),
        };
        let id = match stage.and_then(|i| self.stage_images.get(&i)) {
            Some(id) => id.clone(),
            None => match self.d.image_get(from) {
                Ok(r) => r.id,
                Err(_) => {
                    let pulled = match self.pull(from, self.opts.platform.as_deref()).await {
                        Ok(()) => self.d.image_get(from).map(|r| r.id),
                        Err(e) => Err(e),
                    };
                    pulled.map_err(|e| {
                        step_err(format!(
                            "invalid from flag value {from}: {}",
                            e.user_message()
                        ))
                    })?
                }
            },
        };
        let record = self.d.image_get(&id)?;
        Ok(SourceTree::Layers(record.layer_dirs))
    }

    /// A step with no work beyond its config (the `--label` image, `FROM scratch` alone).
    pub(super) async fn commit_config_only(
        &mut self,
        state: StageState,
        message: &str,
    ) -> Result<StageState, DaemonError> {
        let cfg = state.config.config.clone();
        let created_by = if message.is_empty() {
            String::new()
        } else {
            let mut nop = Self::shell(&cfg);
            nop.push(format!("#(nop)  {message}"));
            nop.join(" ")
        };
        self.step(state, cfg, created_by, Action::None, String::new())
            .await
    }

    /// The step's image: from the cache, or made now.
    async fn step(
        &mut self,
        mut state: StageState,
        cfg: ContainerConfig,
        created_by: String,
        action: Action,
        key_extra: String,
    ) -> Result<StageState, DaemonError> {
        let cfg_json = serde_json::to_value(&cfg).map_err(step_err)?;
        let key = cache::key(&state.image, &created_by, &cfg_json, &key_extra);
        let builder = self.d.paths().builder_dir();
        if !self.opts.no_cache
            && let Some(id) = self.cached(&state, &key, &created_by, &cfg).await?
        {
            self.say(" ---> Using cache\n");
            self.say(format!(" ---> {}\n", short_id(&id)));
            let r = self.d.image_get(&id)?;
            state.image = r.id;
            state.config = r.config;
            return Ok(state);
        }

        let parent_layers = if state.image.is_empty() {
            Vec::new()
        } else {
            self.d.image_get(&state.image)?.layer_dirs
        };
        let mut container = String::new();
        let mut container_cmd: Option<Vec<String>> = None;
        let diff = match action {
            Action::None => None,
            Action::Run { cmd, env } => {
                let (diff, id) = self.run_step(&state, &cfg, cmd.clone(), env).await?;
                container = id;
                container_cmd = Some(cmd);
                Some(diff)
            }
            Action::Copy(g) => {
                let store = self.d.images.clone();
                let dir = self.step_dir();
                Some(blocking(move || copy::apply(g, &parent_layers, &dir, &store)).await?)
            }
            Action::Workdir(path) => {
                let store = self.d.images.clone();
                let dir = self.step_dir();
                blocking(move || copy::workdir(&path, &parent_layers, &dir, &store)).await?
            }
        };

        let mut config = state.config.clone();
        let now = now_rfc3339();
        let mut container_config = cfg.clone();
        container_config.cmd = Some(match container_cmd {
            Some(c) => c,
            None => {
                // dockerd's run config of a step without a command: the shell, then
                // `#(nop) ` and the instruction as one more word (COPY, ADD and WORKDIR: one).
                let mut nop = Self::shell(&cfg);
                match created_by.split_once("#(nop)") {
                    Some((_, m)) if m.starts_with("  ") => {
                        nop.push("#(nop) ".into());
                        nop.push(m[2..].to_string());
                    }
                    Some((_, m)) => nop.push(format!("#(nop) {}", m.trim_start())),
                    None => {}
                }
                nop
            }
        });
        config.config = cfg;
        // The image a step ran on, as dockerd's config names it.
        config.config.extra.insert(
            "Image".into(),
            serde_json::Value::String(state.image.clone()),
        );
        config.created = Some(now.clone());
        config.history.push(HistoryEntry {
            created: Some(now),
            created_by: created_by.clone(),
            empty_layer: diff.is_none(),
            ..Default::default()
        });
        let size = diff.as_ref().map_or(0, |d| self.d.image_layer_size(d));
        if let Some(d) = diff {
            config.rootfs.diff_ids.push(d);
        }
        config.extra.insert(
            "container_config".into(),
            serde_json::to_value(&container_config).map_err(step_err)?,
        );
        config
            .extra
            .insert("container".into(), serde_json::Value::String(container));
        let id = self.put_image(&config, &state.image)?;
        cache::store(&builder, &key, &id, &created_by, size);
        self.say(format!(" ---> {}\n", short_id(&id)));
        state.image = id;
        state.config = config;
        Ok(state)
    }

    fn put_image(&self, config: &ImageConfig, parent: &str) -> Result<String, DaemonError> {
        let raw = serde_json::to_vec(config).map_err(step_err)?;
        let parent = (!parent.is_empty()).then_some(parent);
        Ok(self.d.images.put_child_image(&raw, parent, &[])?)
    }

    /// The cached image for a step: the local cache's (with `--cache-from`, only when it is
    /// one of those images or an ancestor of one), else a `--cache-from` image whose history
    /// goes on from the parent's with this very step (its prefix made an image of its own).
    async fn cached(
        &self,
        state: &StageState,
        key: &str,
        created_by: &str,
        cfg: &ContainerConfig,
    ) -> Result<Option<String>, DaemonError> {
        let builder = self.d.paths().builder_dir();
        let local = cache::lookup(&builder, key).filter(|id| self.d.image_get(id).is_ok());
        if self.opts.cache_from.is_empty() {
            return Ok(local);
        }
        let sources: Vec<berth_images::ImageRecord> = self
            .opts
            .cache_from
            .iter()
            .filter_map(|n| self.d.image_get(n).ok())
            .collect();
        if let Some(id) = local
            && sources.iter().any(|s| self.is_ancestor(&id, &s.id))
        {
            return Ok(Some(id));
        }
        let parent_history = &state.config.history;
        let n = parent_history.len();
        for s in &sources {
            let h = &s.config.history;
            if h.len() <= n || h[..n] != parent_history[..] || h[n].created_by != created_by {
                continue;
            }
            let layers_before = state.config.rootfs.diff_ids.len();
            let layers_after = h[..=n].iter().filter(|e| !e.empty_layer).count();
            let ids = &s.config.rootfs.diff_ids;
            if ids.len() < layers_after || ids[..layers_before] != state.config.rootfs.diff_ids[..]
            {
                continue;
            }
            let mut config = state.config.clone();
            config.config = cfg.clone();
            config.history = h[..=n].to_vec();
            config.rootfs.diff_ids = ids[..layers_after].to_vec();
            config.created = h[n].created.clone();
            let id = self.put_image(&config, &state.image)?;
            cache::store(&builder, key, &id, created_by, 0);
            return Ok(Some(id));
        }
        Ok(None)
    }

    fn is_ancestor(&self, id: &str, of: &str) -> bool {
        let mut at = Some(of.to_string());
        let mut hops = 0;
        while let Some(cur) = at {
            if cur == id {
                return true;
            }
            hops += 1;
            if hops > 10_000 {
                return false;
            }
            at = self.d.images.parent(&cur);
        }
        false
    }

    /// RUN: a container of the parent image with the command, made and started by the
    /// engine; its output to the client; its changes a layer. Returns the diff ID and the
    /// container's ID.
    async fn run_step(
        &mut self,
        state: &StageState,
        cfg: &ContainerConfig,
        cmd: Vec<String>,
        env: Vec<String>,
    ) -> Result<(String, String), DaemonError> {
        let o = &self.opts;
        let config = berth_model::ContainerConfig {
            image: state.image.clone(),
            cmd: Some(cmd.clone()),
            // Not the image's entrypoint: RUN runs its command alone.
            entrypoint: Some(Vec::new()),
            env,
            user: cfg.user.clone(),
            working_dir: cfg.working_dir.clone(),
            attach_stdout: true,
            attach_stderr: true,
            healthcheck: Some(berth_model::HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut host = berth_model::HostConfig {
            network_mode: match o.network_mode.as_str() {
                "default" => String::new(),
                m => m.to_string(),
            },
            extra_hosts: o.extra_hosts.clone(),
            shm_size: o.shm_size,
            memory: o.memory,
            memory_swap: o.memory_swap,
            cpu_shares: o.cpu_shares,
            cpu_period: o.cpu_period,
            cpu_quota: o.cpu_quota,
            cpuset_cpus: o.cpuset_cpus.clone(),
            cpuset_mems: o.cpuset_mems.clone(),
            ..Default::default()
        };
        host.log_config.typ = "none".into();
        if state.image.is_empty() {
            return Err(step_err(
                "RUN needs an image to run in: FROM scratch has no shell",
            ));
        }
        let id = self.d.container_create(None, config, host).await?;
        self.say(format!(" ---> Running in {}\n", short_id(&id)));
        let outcome = self.run_container(&id).await;
        let code = match outcome {
            Ok(code) => code,
            Err(e) => {
                self.remove_container(&id).await;
                return Err(e);
            }
        };
        if code != 0 {
            if self.opts.rm || self.opts.force_rm {
                self.remove_container(&id).await;
            }
            return Err(BuildError::RunFailed {
                command: cmd.join(" "),
                code,
            }
            .into());
        }
        let upper: PathBuf = self.d.paths().container_dir(&id).join("fs").join("upper");
        let store = self.d.images.clone();
        let diff = blocking(move || Ok(store.layer_from_upper(&upper)?)).await;
        if self.opts.rm || self.opts.force_rm {
            self.say(format!(
                "Removing intermediate container {}\n",
                short_id(&id)
            ));
            self.remove_container(&id).await;
        }
        Ok((diff?, id))
    }

    async fn remove_container(&self, id: &str) {
        if let Err(e) = self.d.container_remove_with(id, true, true).await {
            tracing::warn!(container = %id, error = %e, "cannot remove an intermediate container");
        }
    }

    /// Starts the container, forwards its output, and waits for its exit code.
    async fn run_container(&self, id: &str) -> Result<i64, DaemonError> {
        let (_c, mut rx, _stdin) = self.d.container_attach(id, true, true)?;
        self.d.container_start(id).await?;
        let sink = self.sink.clone();
        let quiet = self.opts.quiet;
        let forward = async move {
            while let Some((kind, bytes)) = rx.recv().await {
                if quiet {
                    continue;
                }
                let text = String::from_utf8_lossy(&bytes);
                // dockerd shows a RUN's stderr in red.
                let text = match kind {
                    crate::containers::StreamKind::Stderr => format!("\x1b[91m{text}\x1b[0m"),
                    crate::containers::StreamKind::Stdout => text.into_owned(),
                };
                let _ = sink.send(Progress::text(text));
            }
        };
        let (code, ()) = tokio::join!(
            self.d.container_wait(id, WaitCondition::NotRunning),
            forward
        );
        code
    }
}

/// A COPY heredoc's file (0644, as BuildKit makes it) in a folder of its own.
fn write_heredoc(folder: &std::path::Path, name: &str, text: &str) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let file = folder.join(name);
    let io = |source| DaemonError::Io {
        path: file.clone(),
        source,
    };
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(step_err(format!("invalid heredoc name {name:?}")));
    }
    std::fs::create_dir_all(folder).map_err(io)?;
    std::fs::write(&file, text).map_err(io)?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).map_err(io)
}

/// `8080`, `8080/udp`, `8000-8002/tcp` → Docker's `port/proto` keys.
fn expand_port(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("Invalid containerPort: {ports}");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Go's `time.Duration` text for whole units ("5s", "1m30s", "0s").
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns % 1_000_000_000 != 0 {
        if ns % 1_000_000 == 0 {
            return format!("{}ms", ns / 1_000_000);
        }
        return format!("{ns}ns");
    }
    let s = ns / 1_000_000_000;
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m{s}s"),
        (h, m) => format!("{h}h{m}m{s}s"),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_expand_as_docker_keys() {
        assert_eq!(expand_port("8080").unwrap(), ["8080/tcp"]);
        assert_eq!(expand_port("53/UDP").unwrap(), ["53/udp"]);
        assert_eq!(
            expand_port("8000-8002").unwrap(),
            ["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(expand_port("x").is_err());
        assert!(expand_port("9-8").is_err());
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(go_duration(5_000_000_000), "5s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(100_000_000), "100ms");
    }

    #[test]
    fn paths_clean_as_go() {
        assert_eq!(clean_abs("/app/../srv/./x/"), "/srv/x");
        assert_eq!(clean_abs("/.."), "/");
        let mut c = ContainerConfig::default();
        set_env(&mut c, "A", "1");
        set_env(&mut c, "B", "2");
        set_env(&mut c, "A", "3");
        assert_eq!(c.env.unwrap(), ["A=3", "B=2"]);
    }
}
