//! One real engine for tests (feature `test-support`, and this crate's own tests): a `Daemon`
//! on temporary folders with a prepared host root, and behind it either no containerd at all
//! (a socket nobody listens on: everything local works, anything that reaches containerd
//! fails) or the fake containerd, which answers like containerd and records its calls.
//!
//! Test support only: it panics on set-up failures so that a broken set-up fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod arbitrary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_config::{DaemonConfig, FileConfig, Flags};
pub use berth_containerd::fake::FakeContainerd;
use berth_containerd::{Client, RpcCounter};
use berth_images::{ImportOptions, Reference};
use berth_runtimes::DeriveContext;

use crate::{ConfigStore, Daemon};

/// The files of the default prepared host root: a 6.1 kernel named `box`, 1 GiB of memory,
/// two CPUs, cgroup v2 with the cpuset, cpu, memory and pids controllers.
const HOST_FILES: &[(&str, &str)] = &[
    ("proc/sys/kernel/osrelease", "6.1.0-test\n"),
    ("proc/sys/kernel/hostname", "box\n"),
    ("proc/meminfo", "MemTotal: 1048576 kB\n"),
    ("proc/self/status", "Cpus_allowed_list:\t0-1\n"),
    (
        "sys/fs/cgroup/cgroup.controllers",
        "cpuset cpu memory pids\n",
    ),
    ("sys/fs/cgroup/cpuset.cpus.effective", "0-1\n"),
    ("sys/fs/cgroup/cpuset.mems.effective", "0\n"),
];

/// How to build a [`TestEngine`].
#[derive(Debug, Default)]
pub struct TestEngineBuilder {
    daemon_json: Option<String>,
    host_root: Option<PathBuf>,
    fake: bool,
}

impl TestEngineBuilder {
    /// The daemon.json the engine starts with (`{}` when not given).
    pub fn daemon_json(mut self, json: &str) -> TestEngineBuilder {
        self.daemon_json = Some(json.to_string());
        self
    }

    /// Reads host facts under `root` instead of the default prepared root.
    pub fn host_root(mut self, root: impl Into<PathBuf>) -> TestEngineBuilder {
        self.host_root = Some(root.into());
        self
    }

    /// Puts the fake containerd behind the engine and starts its event loop. Needs a tokio
    /// runtime.
    pub fn fake_containerd(mut self) -> TestEngineBuilder {
        self.fake = true;
        self
    }

    pub fn build(self) -> TestEngine {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("data");
        let flags = Flags {
            data_root: Some(data.clone()),
            exec_root: Some(dir.path().join("exec")),
            ..Flags::default()
        };
        let file = FileConfig::parse(self.daemon_json.as_deref().unwrap_or("{}").as_bytes())
            .expect("a valid daemon.json");
        let config = DaemonConfig::build(&flags, &file).expect("a valid configuration");
        let rt = data.join("runtimes");
        berth_runtimes::reset_runtimes_dir(&rt).expect("the runtimes folder");
        let store = ConfigStore::new(
            config,
            flags,
            DeriveContext::new(rt, dir.path().join("runc")),
        )
        .expect("the config store");
        let host = match self.host_root {
            Some(root) => root,
            None => {
                let root = dir.path().join("host");
                for (p, text) in HOST_FILES {
                    let p = root.join(p);
                    std::fs::create_dir_all(p.parent().expect("a parent")).unwrap();
                    std::fs::write(p, text).unwrap();
                }
                root
            }
        };
        let (socket, fake) = if self.fake {
            let socket = dir.path().join("fake.sock");
            let fake = FakeContainerd::start(&socket).expect("the fake containerd");
            (socket, Some(fake))
        } else {
            (dir.path().join("no-containerd.sock"), None)
        };
        let client = Client::new(
            socket.to_str().expect("a UTF-8 path"),
            "berth-test",
            RpcCounter::new(),
        )
        .expect("a containerd client");
        let daemon = Arc::new(Daemon::new(store, client, host).expect("the engine"));
        if fake.is_some() {
            daemon.spawn_event_loop();
        }
        TestEngine { daemon, fake, dir }
    }
}

/// A real engine on temporary folders; see the module's documentation.
#[derive(Debug)]
pub struct TestEngine {
    pub daemon: Arc<Daemon>,
    fake: Option<FakeContainerd>,
    dir: tempfile::TempDir,
}

impl TestEngine {
    pub fn builder() -> TestEngineBuilder {
        TestEngineBuilder::default()
    }

    /// An engine with the default daemon.json and host, and no containerd.
    pub fn new() -> TestEngine {
        TestEngine::builder().build()
    }

    /// The engine's temporary folder: `data/` is its data-root, `exec/` its exec-root,
    /// `host/` the default prepared host root.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The fake containerd; panics for an engine built without it.
    pub fn fake(&self) -> &FakeContainerd {
        self.fake
            .as_ref()
            .expect("an engine built with fake_containerd()")
    }

    /// Imports a one-file image (`bin/true`) as `reference`; returns its ID. With the fake
    /// containerd, waits for the event subscription to settle and forgets the calls so far.
    pub async fn import_image(&self, reference: &str) -> String {
        let opts = ImportOptions {
            reference: Some(Reference::parse(reference).expect("a valid reference")),
            ..Default::default()
        };
        let layer = layer_tar("bin/true", b"#!");
        let id = self
            .daemon
            .image_import(std::io::Cursor::new(layer), opts)
            .await
            .expect("the import");
        if let Some(fake) = &self.fake {
            tokio::time::sleep(Duration::from_millis(50)).await;
            fake.take_calls();
        }
        id.to_string()
    }
}

impl TestEngine {
    /// A build step's image: `parent`'s config (an image ID) with one more history entry,
    /// `step`, and no new layer, stored as its child (named `reference` when given); returns
    /// its ID.
    pub fn child_image(&self, parent: &str, step: &str, reference: Option<&str>) -> String {
        let images = &self.daemon.images;
        let mut config = images.get(parent).expect("the parent image").config;
        config.history.push(berth_images::HistoryEntry {
            created_by: step.to_string(),
            empty_layer: true,
            ..Default::default()
        });
        let raw = serde_json::to_vec(&config).unwrap();
        let tags: Vec<Reference> = reference
            .map(|r| Reference::parse(r).expect("a valid reference"))
            .into_iter()
            .collect();
        images
            .put_child_image(&raw, Some(parent), &tags)
            .expect("the child image")
    }
}

impl Default for TestEngine {
    fn default() -> TestEngine {
        TestEngine::new()
    }
}

/// A layer holding one executable file owned by root.
pub fn layer_tar(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data).unwrap();
    b.into_inner().unwrap()
}
