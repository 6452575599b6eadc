use std::future::Future;

use berth_daemon::{Daemon, SystemInfo, SystemVersion};

/// What the API needs from the engine. `berth_daemon::Daemon` is the real one; tests route
/// against fakes.
pub trait Backend: Send + Sync + 'static {
    fn version(&self) -> impl Future<Output = SystemVersion> + Send;
    fn info(&self) -> impl Future<Output = SystemInfo> + Send;
    /// containerd RPC counts by method, for the metrics endpoint.
    fn rpc_counts(&self) -> Vec<(String, u64)>;
}

impl Backend for Daemon {
    fn version(&self) -> impl Future<Output = SystemVersion> + Send {
        Daemon::version(self)
    }
    fn info(&self) -> impl Future<Output = SystemInfo> + Send {
        Daemon::info(self)
    }
    fn rpc_counts(&self) -> Vec<(String, u64)> {
        self.rpc_counter().snapshot()
    }
}
