//! `docker attach`: a client's ends of a container's output and stdin.

use std::sync::Arc;

use super::Container;
use crate::{Daemon, DaemonError};

/// An attached client's ends: the container, its output, and its stdin.
pub type Attached = (
    Arc<Container>,
    tokio::sync::mpsc::Receiver<super::OutputChunk>,
    tokio::sync::mpsc::Sender<super::StdinMsg>,
);

impl Daemon {
    /// Attaches a client: output chunks until the container's output ends, and a sender for
    /// its stdin. A stopped container that is not about to start cannot be attached.
    pub fn container_attach(
        &self,
        name: &str,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attached, DaemonError> {
        let c = self.containers.get(name)?;
        c.state().can_attach()?;
        let rx = c.io.attach(stdout, stderr);
        let tx = c.io.stdin_sender();
        self.container_event(&c, "attach", &[]);
        Ok((c, rx, tx))
    }
}

impl Container {
    pub fn tty(&self) -> bool {
        self.io.tty
    }
    pub fn open_stdin(&self) -> bool {
        self.lock().record.config.open_stdin
    }
}
