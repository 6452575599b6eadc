use std::sync::Arc;

use arc_swap::ArcSwap;
use berth_config::{DaemonConfig, FileConfig, Flags};
use berth_runtimes::{DeriveContext, Runtimes};

use crate::DaemonError;

/// One immutable generation of the daemon's configuration: the user's config and the state
/// derived from it, always built together and never changed after it is stored.
#[derive(Debug)]
pub struct Snapshot {
    pub config: DaemonConfig,
    pub runtimes: Runtimes,
    /// Counts reloads: 0 at start, +1 per successful reload.
    pub generation: u64,
}

/// The read-copy-update cell that holds the current `Snapshot`. Readers call `load` once per
/// operation and pass the `Arc` down; they take no lock. Reloads are serialised by their own
/// mutex, build a whole new snapshot, and swap it in one store; a failed reload changes
/// nothing.
#[derive(Debug)]
pub struct ConfigStore {
    current: ArcSwap<Snapshot>,
    reload_lock: std::sync::Mutex<()>,
    flags: Flags,
    ctx: DeriveContext,
}

impl ConfigStore {
    /// Derives the first snapshot from the start-up configuration.
    pub fn new(
        config: DaemonConfig,
        flags: Flags,
        ctx: DeriveContext,
    ) -> Result<ConfigStore, DaemonError> {
        let runtimes = Runtimes::derive(&config, &ctx)?;
        // dockerd refuses to start with a default log driver or options it would refuse
        // for a container.
        berth_logdriver::LogSettings::parse(&config.log_driver, &config.log_opts).map_err(|e| {
            let key = match e {
                berth_logdriver::OptError::UnknownDriver(_)
                | berth_logdriver::OptError::Unsupported(_) => "log-driver",
                _ => "log-opts",
            };
            berth_config::ConfigError::InvalidValue {
                key: key.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(ConfigStore {
            current: ArcSwap::from_pointee(Snapshot {
                config,
                runtimes,
                generation: 0,
            }),
            reload_lock: std::sync::Mutex::new(()),
            flags,
            ctx,
        })
    }

    /// The current snapshot. Load it once per operation.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Reads the configuration file again and, if it is valid, swaps in the new snapshot.
    pub fn reload(&self) -> Result<Arc<Snapshot>, DaemonError> {
        let _serialised = self
            .reload_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.load();
        let file = berth_config::read_config_file(
            &current.config.config_file,
            current.config.config_file_explicit,
        )?
        .unwrap_or_default();
        self.apply(&current, &file)
    }

    /// Builds the next snapshot from `file` over `current` and stores it.
    fn apply(&self, current: &Snapshot, file: &FileConfig) -> Result<Arc<Snapshot>, DaemonError> {
        let config = current.config.reloaded(&self.flags, file)?;
        let runtimes = Runtimes::derive(&config, &self.ctx)?;
        let next = Arc::new(Snapshot {
            config,
            runtimes,
            generation: current.generation + 1,
        });
        self.current.store(next.clone());
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn store(dir: &std::path::Path, json: &str) -> ConfigStore {
        let file = dir.join("daemon.json");
        std::fs::write(&file, json).unwrap();
        let flags =
            Flags::try_parse_from(["berthd", "--config-file", file.to_str().unwrap()]).unwrap();
        let config = DaemonConfig::load(&flags).unwrap();
        let rt = dir.join("runtimes");
        berth_runtimes::reset_runtimes_dir(&rt).unwrap();
        ConfigStore::new(config, flags, DeriveContext::new(rt, dir.join("runc"))).unwrap()
    }

    #[test]
    fn reload_swaps_a_whole_new_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), r#"{"runtimes": {"a": {"path": "/bin/true"}}}"#);
        let before = s.load();
        std::fs::write(
            dir.path().join("daemon.json"),
            r#"{"runtimes": {"b": {"path": "/bin/true"}}, "debug": true}"#,
        )
        .unwrap();
        let after = s.reload().unwrap();
        assert_eq!(after.generation, 1);
        assert!(after.runtimes.resolves("b") && !after.runtimes.info().contains_key("a"));
        assert!(after.config.debug);
        // A reader holding the old snapshot still sees it whole.
        assert!(before.runtimes.info().contains_key("a") && !before.config.debug);
    }

    #[test]
    fn a_failed_reload_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), r#"{"debug": true}"#);
        for broken in [
            r#"{ "runtimes": "#,
            r#"{"no-such-key": 1}"#,
            r#"{"runtimes": {"x": {}}}"#,
            r#"{"default-runtime": "nope"}"#,
        ] {
            std::fs::write(dir.path().join("daemon.json"), broken).unwrap();
            assert!(s.reload().is_err(), "{broken}");
            assert_eq!(s.load().generation, 0);
            assert!(s.load().config.debug);
        }
    }
}
