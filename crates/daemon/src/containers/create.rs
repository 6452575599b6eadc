//! `docker create`: validate, merge the image's defaults, reserve the name, persist.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_config::HostPaths;
use berth_images::ImageRecord;
use berth_model::{ContainerConfig, HostConfig, NetworkingConfig};

use berth_oci::HostFacts;

use berth_images::files::{create_with_mode, dir_with_mode};

use super::state::Conflict;
use super::validate::{self, InvalidConfig};
use super::{
    Container, DIR_MODE, LOG_MODE, MOUNTED_FILE_MODE, RECORD_SCHEMA, Record, State, now_rfc3339,
    random_hex, write_record,
};
use crate::{Daemon, DaemonError};

const ADJECTIVES: &[&str] = &[
    "admiring", "bold", "brave", "calm", "clever", "eager", "gallant", "happy", "jolly", "keen",
    "lucid", "modest", "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant",
    "zealous",
];
const NAMES: &[&str] = &[
    "agnesi", "babbage", "curie", "dijkstra", "euler", "fermat", "galois", "hopper", "hypatia",
    "kepler", "lamport", "lovelace", "noether", "pascal", "ritchie", "shannon", "tesla", "turing",
    "wozniak", "yalow",
];

fn generated_name(seed: &str) -> String {
    let n = u64::from_str_radix(&seed[..12], 16).unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        NAMES[(n / ADJECTIVES.len()) % NAMES.len()]
    )
}

/// Docker's container-name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The image's defaults under the container's settings, as dockerd merges them at create.
pub(crate) fn merge_image_config(c: &mut ContainerConfig, image: &ImageRecord) {
    let ic = &image.config.config;
    let mut env: Vec<String> = ic.env.clone().unwrap_or_default();
    for e in &c.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    c.env = env;
    if c.entrypoint.is_none() {
        c.entrypoint = ic.entrypoint.clone().filter(|e| !e.is_empty());
        if c.cmd.is_none() {
            c.cmd = ic.cmd.clone();
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = ic.working_dir.clone();
    }
    if c.user.is_empty() {
        c.user = ic.user.clone();
    }
    if c.stop_signal.is_none() {
        c.stop_signal = ic.stop_signal.clone();
    }
    let mut labels: BTreeMap<String, String> = ic.labels.clone().unwrap_or_default();
    labels.extend(std::mem::take(&mut c.labels));
    c.labels = labels;
    if c.exposed_ports.is_none() {
        c.exposed_ports = ic.exposed_ports.clone();
    }
    // The image's volumes and the request's, as dockerd merges them.
    if let Some(iv) = &ic.volumes {
        let v = c.volumes.get_or_insert_with(Default::default);
        for (k, val) in iv {
            v.entry(k.clone()).or_insert_with(|| val.clone());
        }
    }
    merge_healthcheck(c, ic.extra.get("Healthcheck"));
}

/// dockerd's merge of the image's `Healthcheck` (kept in the image config's unknown keys):
/// taken whole when the container has none, else each unset field from the image's. An
/// image healthcheck berth cannot read is ignored, as an unknown key.
fn merge_healthcheck(c: &mut ContainerConfig, image: Option<&serde_json::Value>) {
    let Some(image) = image.and_then(|v| {
        serde_json::from_value::<berth_model::HealthConfig>(v.clone())
            .inspect_err(|e| tracing::warn!(error = %e, "ignoring an unreadable image healthcheck"))
            .ok()
    }) else {
        return;
    };
    let Some(own) = &mut c.healthcheck else {
        c.healthcheck = Some(image);
        return;
    };
    if own.test.is_empty() {
        own.test = image.test;
    }
    for (mine, theirs) in [
        (&mut own.interval, image.interval),
        (&mut own.timeout, image.timeout),
        (&mut own.start_period, image.start_period),
        (&mut own.start_interval, image.start_interval),
        (&mut own.retries, image.retries),
    ] {
        if *mine == 0 {
            *mine = theirs;
        }
    }
}

/// The `/etc/hosts` a container without networking gets.
fn hosts_file(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
    )
}

/// A container's `/etc/hosts` and `/etc/resolv.conf`. `--network host` gets the host's
/// hosts file, `none` one of its own; both get the host's resolv.conf (dockerd's, with no
/// bridge to filter localhost name servers for). A host file that cannot be read gives the
/// container's own hosts file and an empty resolv.conf.
/// `--add-host` entries (`extra`, resolved) follow, one `IP\tNAME` line each, as dockerd's.
fn etc_files(
    host: &HostPaths,
    network_mode: &str,
    hostname: &str,
    extra: &[(String, String)],
) -> (String, String) {
    let extra: String = extra
        .iter()
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect();
    let own = || {
        let mut h = hosts_file(hostname);
        // Before the container's own name, as dockerd's sandbox writes them.
        let at = h.rfind("127.0.1.1\t").unwrap_or(h.len());
        h.insert_str(at, &extra);
        h
    };
    let hosts = if network_mode == "host" {
        match std::fs::read_to_string(&host.etc_hosts) {
            Ok(mut h) => {
                if !h.is_empty() && !h.ends_with('\n') {
                    h.push('\n');
                }
                h.push_str(&extra);
                h
            }
            Err(_) => own(),
        }
    } else {
        own()
    };
    let resolv = std::fs::read_to_string(&host.etc_resolv_conf).unwrap_or_default();
    (hosts, resolv)
}

impl Daemon {
    /// Creates a container from `config` and `host` on the default network. Returns its ID.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        config: ContainerConfig,
        host: HostConfig,
    ) -> Result<String, DaemonError> {
        self.container_create_on(name, config, host, &NetworkingConfig::default())
            .await
    }

    /// Creates a container from `config` and `host` on the networks `networking` and
    /// `host.network_mode` name. Returns its ID.
    pub async fn container_create_on(
        &self,
        name: Option<&str>,
        mut config: ContainerConfig,
        mut host: HostConfig,
        networking: &NetworkingConfig,
    ) -> Result<String, DaemonError> {
        let snapshot = self.config();
        if config.image.is_empty() {
            return Err(DaemonError::InvalidParameter("no image specified".into()));
        }
        // dockerd's order: the request's own settings, then the image.
        self.validate_create(&config, &mut host)?;
        let image = self.image_get(&config.image)?;

        // Validate everything the start will need, so a bad request fails here with 400.
        let runtime = if host.runtime.is_empty() {
            snapshot.runtimes.default_name().to_string()
        } else {
            host.runtime.clone()
        };
        snapshot.runtimes.get(&runtime)?;
        host.runtime = runtime;
        let network_settings = self.plan_networks(&mut host, networking)?;
        self.fill_host_defaults(&mut host);
        berth_oci::parse_security_opts(&host.security_opt)?;
        berth_oci::merged_rlimits(&host.ulimits, &snapshot.config.default_ulimits)?;
        if host.init == Some(true) && super::start::init_binary().is_none() {
            return Err(berth_oci::SpecError::NoInit.into());
        }
        super::restart::validate_policy(&host.restart_policy, host.auto_remove)?;
        if host.restart_policy.name.is_empty() {
            host.restart_policy.name = "no".into();
        }

        merge_image_config(&mut config, &image);
        let cmd = berth_oci::command(&config);
        if cmd.is_empty() {
            return Err(DaemonError::InvalidParameter("No command specified".into()));
        }
        let mut mount_points = self.plan_mounts(&config, &host)?;

        let id = random_hex(32);
        let name = match name
            .map(|n| n.trim_start_matches('/'))
            .filter(|n| !n.is_empty())
        {
            Some(n) if !valid_name(n) => {
                return Err(DaemonError::InvalidParameter(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
            Some(n) => {
                self.containers
                    .reserve_name(n, &id)
                    .map_err(|holder| Conflict::NameInUse {
                        name: n.to_string(),
                        holder,
                    })?;
                n.to_string()
            }
            None => {
                let mut n = generated_name(&id);
                let mut i = 0;
                while self.containers.reserve_name(&n, &id).is_err() {
                    i += 1;
                    n = format!("{}{i}", generated_name(&id));
                }
                n
            }
        };

        if let Err(e) = self.claim_volumes(&id, &mut mount_points) {
            self.containers.release_name(&name, &id);
            return Err(e);
        }
        let result = self.create_files(
            &id,
            &name,
            (config, host, network_settings),
            &image,
            cmd,
            mount_points.clone(),
        );
        if result.is_err() {
            self.unclaim_volumes(&id, &mount_points, true);
        }
        match result {
            Ok(c) => {
                self.container_event(&c, "create", &[]);
                self.containers.insert(c);
                Ok(id)
            }
            Err(e) => {
                self.containers.release_name(&name, &id);
                let dir = self.paths().container_dir(&id);
                match std::fs::remove_dir_all(&dir) {
                    Err(ce) if ce.kind() != std::io::ErrorKind::NotFound => Err(e.with_cleanup(
                        &id,
                        Some(DaemonError::Io {
                            path: dir,
                            source: ce,
                        }),
                    )),
                    Ok(()) | Err(_) => Err(e),
                }
            }
        }
    }

    /// What dockerd records for what the request left at its zero value, so inspect shows
    /// the same: the IPC mode, `/dev/shm`'s size, the cgroup namespace mode, the masked and
    /// read-only paths; a zero pids limit and a swappiness of -1 become unset.
    fn fill_host_defaults(&self, host: &mut HostConfig) {
        if host.ipc_mode.is_empty() {
            host.ipc_mode = "private".into();
        }
        if host.shm_size == 0 {
            host.shm_size = 64 << 20;
        }
        if host.pids_limit == Some(0) {
            host.pids_limit = None;
        }
        if host.memory_swappiness == Some(-1) {
            host.memory_swappiness = None;
        }
        if host.oom_kill_disable.is_none() {
            host.oom_kill_disable = Some(false);
        }
        let unset = |v: Option<&serde_json::Value>| v.is_none_or(|v| v.is_null() || v == "");
        if unset(host.extra.get("CgroupnsMode")) {
            let mode = if self.host_facts().cgroup_v2() {
                "private"
            } else {
                "host"
            };
            host.extra.insert("CgroupnsMode".into(), mode.into());
        }
        for (key, list) in [
            ("MaskedPaths", berth_oci::MASKED_PATHS),
            ("ReadonlyPaths", berth_oci::READONLY_PATHS),
        ] {
            if unset(host.extra.get(key)) {
                let value = if host.privileged {
                    serde_json::Value::Null
                } else {
                    serde_json::json!(list)
                };
                host.extra.insert(key.into(), value);
            }
        }
    }

    /// The checks dockerd makes before it looks at the image: the container's settings and
    /// limits, the containers it shares namespaces with (named by ID from here on), devices
    /// and the log driver.
    fn validate_create(
        &self,
        config: &ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<(), DaemonError> {
        validate::container_config(config)?;
        if let Some(s) = config.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            super::kill::parse_signal(s)?;
        }
        validate::host_config(host, &self.host_facts().cpu)?;
        for mode in [&mut host.ipc_mode, &mut host.pid_mode] {
            if let Some(name) = validate::mode_container(mode).filter(|n| !n.is_empty()) {
                let target = self.containers.get(name).map_err(|e| match e {
                    DaemonError::NoSuchContainer(n) => InvalidConfig::NoSuchContainer(n).into(),
                    other => other,
                })?;
                *mode = format!("container:{}", target.id);
            }
        }
        for d in &host.devices {
            validate::device(&d.path_on_host)?;
        }
        let snapshot = self.config();
        validate::log_config(
            &mut host.log_config,
            &snapshot.config.log_driver,
            &snapshot.config.log_opts,
        )?;
        Ok(())
    }

    fn create_files(
        &self,
        id: &str,
        name: &str,
        (mut config, host, network_settings): (
            ContainerConfig,
            HostConfig,
            berth_model::NetworkSettings,
        ),
        image: &ImageRecord,
        cmd: Vec<String>,
        mount_points: Vec<berth_volumes::MountPoint>,
    ) -> Result<Arc<Container>, DaemonError> {
        if config.hostname.is_empty() {
            config.hostname = if host.network_mode == "host" {
                self.host_facts().hostname()
            } else {
                id[..12].to_string()
            };
        }
        let dir = self.paths().container_dir(id);
        let io = |p: &std::path::Path| {
            let p = p.to_path_buf();
            move |source| DaemonError::Io { path: p, source }
        };
        dir_with_mode(&dir, DIR_MODE).map_err(io(&dir))?;
        let hostname_path = dir.join("hostname");
        let hosts_path = dir.join("hosts");
        let resolv_path = dir.join("resolv.conf");
        let mounted = |path: &std::path::Path, text: &str| {
            create_with_mode(path, text.as_bytes(), MOUNTED_FILE_MODE).map_err(io(path))
        };
        mounted(&hostname_path, &format!("{}\n", config.hostname))?;
        let extra = super::networks::extra_hosts(&host, self.net().ok().map(|n| &**n))?;
        let (hosts, resolv) = etc_files(
            &self.paths().host,
            &host.network_mode,
            &config.hostname,
            &extra,
        );
        mounted(&hosts_path, &hosts)?;
        mounted(&resolv_path, &resolv)?;
        // dockerd shows a LogPath for json-file only (the local driver's files are private).
        let log_path = match host.log_config.typ.as_str() {
            "json-file" => {
                let p = super::logs::json_log_path(&dir, id);
                create_with_mode(&p, b"", LOG_MODE).map_err(io(&p))?;
                p.display().to_string()
            }
            _ => String::new(),
        };

        let record = Record {
            schema: RECORD_SCHEMA,
            id: id.to_string(),
            name: name.to_string(),
            created: now_rfc3339(),
            path: cmd[0].clone(),
            args: cmd[1..].to_vec(),
            config,
            host_config: host,
            image: image.id.clone(),
            state: State::new(),
            restart_count: 0,
            has_been_started: false,
            has_been_manually_stopped: false,
            log_path,
            hostname_path: hostname_path.display().to_string(),
            hosts_path: hosts_path.display().to_string(),
            resolv_conf_path: resolv_path.display().to_string(),
            process: None,
            cgroups_path: None,
            network_settings,
            mount_points,
        };
        write_record(&dir, &record)?;
        Ok(Arc::new(Container::new(record, dir)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_files_come_from_the_host_paths() {
        let d = tempfile::tempdir().unwrap();
        let host = HostPaths::under(d.path());
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(&host.etc_hosts, "10.0.0.1\thost-box\n").unwrap();
        std::fs::write(&host.etc_resolv_conf, "nameserver 10.0.0.53\nsearch lan\n").unwrap();
        let (hosts, resolv) = etc_files(&host, "host", "host-box", &[]);
        assert_eq!(hosts, "10.0.0.1\thost-box\n", "--network host: the host's");
        assert_eq!(resolv, "nameserver 10.0.0.53\nsearch lan\n");
        let (hosts, resolv) = etc_files(
            &host,
            "none",
            "abc123",
            &[("db.test".into(), "10.1.2.3".into())],
        );
        assert_eq!(
            hosts,
            hosts_file("abc123").replace("127.0.1.1", "10.1.2.3\tdb.test\n127.0.1.1"),
            "--network none: its own, and --add-host's"
        );
        assert!(hosts.ends_with("127.0.1.1\tabc123\n"), "{hosts}");
        assert_eq!(
            resolv, "nameserver 10.0.0.53\nsearch lan\n",
            "the host's, as dockerd"
        );
        std::fs::remove_file(&host.etc_hosts).unwrap();
        std::fs::remove_file(&host.etc_resolv_conf).unwrap();
        let (hosts, resolv) = etc_files(&host, "host", "h", &[]);
        assert_eq!(
            (hosts, resolv),
            (hosts_file("h"), String::new()),
            "no host files"
        );
    }

    #[test]
    fn names() {
        assert!(
            valid_name("s1")
                && valid_name("a.b-c_d")
                && !valid_name("a")
                && !valid_name("-x")
                && !valid_name("a b")
        );
        let n = generated_name(&"ab".repeat(32));
        assert!(n.contains('_') && valid_name(&n), "{n}");
    }

    #[test]
    fn image_defaults_merge_under_the_containers_settings() {
        let mut image_cfg = berth_images::ContainerConfig {
            env: Some(vec!["PATH=/bin".into(), "A=image".into()]),
            cmd: Some(vec!["sh".into()]),
            working_dir: "/srv".into(),
            user: "app".into(),
            ..Default::default()
        };
        image_cfg.labels = Some([("l".to_string(), "image".to_string())].into());
        let image = ImageRecord {
            id: "sha256:x".into(),
            config: berth_images::ImageConfig {
                config: image_cfg,
                ..Default::default()
            },
            repo_tags: vec![],
            repo_digests: vec![],
            size: 0,
            created: 0,
            layer_dirs: vec![],
            parent: None,
            has_children: false,
            last_tag_time: None,
        };
        let mut c = ContainerConfig {
            env: vec!["A=mine".into()],
            labels: [("m".to_string(), "mine".to_string())].into(),
            ..Default::default()
        };
        merge_image_config(&mut c, &image);
        assert_eq!(c.env, vec!["PATH=/bin", "A=mine"]);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!((c.working_dir.as_str(), c.user.as_str()), ("/srv", "app"));
        assert_eq!(c.labels.len(), 2);

        let mut with_entrypoint = ContainerConfig {
            entrypoint: Some(vec!["/bin/tini".into()]),
            ..Default::default()
        };
        merge_image_config(&mut with_entrypoint, &image);
        assert_eq!(
            with_entrypoint.cmd, None,
            "an own entrypoint drops the image's cmd"
        );
    }

    #[test]
    fn the_images_healthcheck_fills_what_the_container_left_unset() {
        use berth_model::HealthConfig;
        let image = serde_json::json!({"Test": ["CMD-SHELL", "test -e /etc/passwd"], "Interval": 1_000_000_000i64, "Retries": 1});
        let mut none = ContainerConfig::default();
        merge_healthcheck(&mut none, Some(&image));
        assert_eq!(
            none.healthcheck,
            Some(HealthConfig {
                test: vec!["CMD-SHELL".into(), "test -e /etc/passwd".into()],
                interval: 1_000_000_000,
                retries: 1,
                ..Default::default()
            })
        );
        let mut some = ContainerConfig {
            healthcheck: Some(HealthConfig {
                retries: 5,
                timeout: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        merge_healthcheck(&mut some, Some(&image));
        let h = some.healthcheck.unwrap();
        assert_eq!(
            (h.test.len(), h.interval, h.retries, h.timeout),
            (2, 1_000_000_000, 5, 2)
        );
        let off = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        let mut disabled = ContainerConfig {
            healthcheck: Some(off),
            ..Default::default()
        };
        merge_healthcheck(&mut disabled, Some(&image));
        assert_eq!(disabled.healthcheck.unwrap().test, ["NONE"]);
        let mut untouched = ContainerConfig::default();
        merge_healthcheck(&mut untouched, None);
        merge_healthcheck(&mut untouched, Some(&serde_json::json!("nonsense")));
        assert_eq!(untouched.healthcheck, None);
    }
}
