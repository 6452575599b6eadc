//! `docker rename`.

use crate::{Daemon, DaemonError};

impl Daemon {
    /// `docker rename`, with dockerd's checks and words. The store reserves the new name and
    /// releases the old one under the container's record lock, so concurrent renames of one
    /// container, or of two to one name, leave exactly one winner and no name held in vain.
    pub fn container_rename(&self, name: &str, new_name: &str) -> Result<(), DaemonError> {
        let (name, new_name) = (name.trim(), new_name.trim());
        if name.trim_start_matches('/').is_empty() || new_name.trim_start_matches('/').is_empty() {
            return Err(DaemonError::InvalidParameter(
                "Neither old nor new names may be empty".into(),
            ));
        }
        let c = self.containers.get(name)?;
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !super::create::valid_name(new_name) {
            return Err(DaemonError::InvalidParameter(format!(
                "Error when allocating new name: Invalid container name (/{new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let old = self.containers.rename(&c, new_name)?;
        self.network_rename(&c, new_name);
        self.container_event(&c, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }
}
