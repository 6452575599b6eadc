//! `/volumes`: create, inspect, list, remove and prune volumes of the local driver (the
//! store is berth-volumes'), with their events.

use std::collections::BTreeMap;

use berth_volumes::{CreateOptions, ListFilter, Pruned, Volume};

use crate::{Daemon, DaemonError};

impl Daemon {
    /// Logs a volume event: its driver, and `extra`, as attributes.
    pub(crate) fn volume_event(
        &self,
        action: &str,
        name: &str,
        driver: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs = BTreeMap::from([("driver".to_string(), driver.to_string())]);
        attrs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        self.events
            .log(crate::events::Event::new("volume", action, name, attrs));
    }

    /// `docker volume create`: a new volume, or the one of that name.
    pub fn volume_create(
        &self,
        name: &str,
        driver: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<Volume, DaemonError> {
        let (v, created) = self.volumes.create(CreateOptions {
            name: Some(name.to_string()),
            driver: driver.to_string(),
            labels,
            options,
            user: None,
        })?;
        if created {
            self.volume_event("create", &v.name, &v.driver, &[]);
        }
        Ok(v)
    }

    /// `docker volume inspect`.
    pub fn volume_get(&self, name: &str) -> Result<Volume, DaemonError> {
        Ok(self.volumes.get(name)?)
    }

    /// `docker volume ls`.
    pub fn volume_list(&self, filter: &ListFilter) -> Vec<Volume> {
        self.volumes.list(filter)
    }

    /// `docker volume rm`: refused (409, naming them) while containers use it.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<(), DaemonError> {
        let driver = self.volumes.get(name).map(|v| v.driver).ok();
        self.volumes.remove(name, force)?;
        if let Some(driver) = driver {
            self.volume_event("destroy", name, &driver, &[]);
        }
        Ok(())
    }

    /// `docker volume prune`: removes the volumes no container uses and `keep` does not
    /// keep (the API decides, by its version and filters, which those are).
    pub fn volume_prune(&self, keep: &dyn Fn(&Volume) -> bool) -> Pruned {
        let drivers: BTreeMap<String, String> = self
            .volumes
            .list(&ListFilter::default())
            .into_iter()
            .map(|v| (v.name, v.driver))
            .collect();
        let pruned = self.volumes.prune(keep);
        for n in &pruned.names {
            let driver = drivers.get(n).map(String::as_str).unwrap_or("local");
            self.volume_event("destroy", n, driver, &[]);
        }
        pruned
    }

    /// Bytes in a volume and how many containers use it.
    pub fn volume_usage(&self, name: &str) -> (u64, usize) {
        self.volumes.usage(name)
    }
}
