//! The daemon's life: locks, containerd, the engine, the sockets, signals, shutdown.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_config::{DaemonConfig, Flags, HostAddr};
use berth_containerd::{Client, ManagedContainerd, ManagedOptions, RpcCounter};
use berth_daemon::{ConfigStore, Daemon};
use berth_runtimes::DeriveContext;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::locks::DaemonLocks;
use crate::observability::LogHandle;

/// How long requests in flight get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(flags: Flags, config: DaemonConfig, log: LogHandle) -> anyhow::Result<()> {
    let paths = config.paths();
    let sockets = unix_sockets(&config)?;

    // dockerd's data-root ends 0710 without user-namespace remapping: `setupDaemonRoot`
    // makes it 0711, then `MkdirAllAndChown(root, 0o710)` sets 0710 on it (0711 is left only
    // on the parent of a remapped root).
    for (dir, mode) in [(&paths.data_root, 0o710), (&paths.exec_root, 0o700)] {
        fs::create_dir_all(dir)
            .and_then(|()| fs::set_permissions(dir, fs::Permissions::from_mode(mode)))
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let locks = DaemonLocks::acquire(&paths.data_root, &paths.data_root_lock(), &config.pidfile)?;
    tracing::info!(pid = std::process::id(), data_root = %paths.data_root.display(), "starting berthd");

    berth_runtimes::reset_runtimes_dir(&paths.runtimes_dir())?;
    let ctx = DeriveContext::new(paths.runtimes_dir(), paths.runc_root());

    let counter = RpcCounter::new();
    let (managed, address) = match &config.containerd {
        Some(address) => (None, address.clone()),
        None => {
            let mut opts = ManagedOptions::new(paths.clone());
            opts.debug = config.debug;
            let m = ManagedContainerd::start(opts, counter.clone())
                .await
                .context("cannot start containerd")?;
            let socket = m.socket().display().to_string();
            (Some(m), socket)
        }
    };
    let client = Client::new(&address, &config.containerd_namespace, counter)?;
    if managed.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), client.version()).await {
            Ok(Ok(v)) => tracing::info!(%address, version = %v.version, "using containerd"),
            _ => tracing::warn!(%address, "containerd does not answer yet; carrying on"),
        }
    }

    let store = ConfigStore::new(config.clone(), flags, ctx)?;
    let daemon = Arc::new(Daemon::new(store, client, "/")?);
    daemon.load_default_apparmor();
    daemon
        .open_networks()
        .await
        .context("cannot set up networking (the default bridge, nftables)")?;
    daemon.spawn_event_loop();
    if let Err(e) = daemon.restore().await {
        tracing::error!("cannot restore containers: {:#}", anyhow::Error::new(e));
    }
    daemon.network_reconcile().await;
    daemon.start_by_policy().await;
    let signals = Signals::take()?;
    let router = berth_api::router(daemon.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut servers = JoinSet::new();
    let mut bound: Vec<PathBuf> = Vec::new();
    for path in &sockets {
        let listener = berth_api::bind_unix(path, &config.group)?;
        bound.push(path.clone());
        tracing::info!(socket = %path.display(), "API listening");
        servers.spawn(berth_api::serve(listener, router.clone(), stopped()));
    }
    if let Some(addr) = config.metrics_addr {
        tracing::info!(%addr, "metrics listening");
        servers.spawn(berth_api::serve_metrics(addr, daemon.clone(), stopped()));
    }
    tracing::info!("berthd is ready");

    let why = wait_for_stop(&daemon, &log, &mut servers, signals).await?;
    tracing::info!(%why, "shutting down");

    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(r) = servers.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "API server failed"),
                Err(e) => tracing::error!(error = %e, "API server task failed"),
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing them");
        servers.abort_all();
    }
    daemon.shutdown_containers().await;
    if let Some(m) = managed {
        m.stop().await;
    }
    for path in bound {
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(socket = %path.display(), error = %e, "cannot remove the socket");
        }
    }
    locks.release();
    tracing::info!("berthd stopped");
    Ok(())
}

/// The unix socket paths to serve. tcp hosts are refused: without TLS they would hand root to
/// the network, and berth does not serve TLS yet.
fn unix_sockets(config: &DaemonConfig) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for host in config.host_addrs()? {
        match host {
            HostAddr::Unix(p) => out.push(p),
            HostAddr::Tcp(addr) if config.tls.requested() => bail!(
                "cannot listen on tcp://{addr}: TLS listeners are not supported by this berthd \
                 yet; use a unix socket (-H unix:///path)"
            ),
            HostAddr::Tcp(addr) => bail!(
                "refusing to listen on tcp://{addr} without TLS: anyone who can reach it would \
                 control the machine; use a unix socket, or --tlsverify with --tlscacert, \
                 --tlscert and --tlskey"
            ),
        }
    }
    if out.is_empty() {
        bail!("no host to listen on: give -H unix:///path");
    }
    Ok(out)
}

/// Runs until SIGTERM or SIGINT (or a server dies), reloading on SIGHUP.
/// The signals berthd answers, taken over before the API serves: a SIGHUP sent as soon as
/// `/_ping` answers reloads instead of killing berthd (SIGHUP's default).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn take() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }
}

async fn wait_for_stop(
    daemon: &Daemon,
    log: &LogHandle,
    servers: &mut JoinSet<std::io::Result<()>>,
    signals: Signals,
) -> anyhow::Result<&'static str> {
    let Signals {
        mut term,
        mut int,
        mut hup,
    } = signals;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            _ = hup.recv() => reload(daemon, log),
            Some(r) = servers.join_next() => {
                match r {
                    Ok(Ok(())) => tracing::error!("an API server stopped by itself"),
                    Ok(Err(e)) => tracing::error!(error = %e, "an API server failed"),
                    Err(e) => tracing::error!(error = %e, "an API server task failed"),
                }
                return Ok("a server stopped");
            }
        }
    }
}

fn reload(daemon: &Daemon, log: &LogHandle) {
    let file = daemon.config().config.config_file.clone();
    tracing::info!(file = %file.display(), "Got signal to reload configuration");
    match daemon.reload() {
        Ok(snapshot) => {
            log.set_level(snapshot.config.effective_log_level());
            let json = serde_json::to_string(&snapshot.config).unwrap_or_default();
            tracing::info!(
                generation = snapshot.generation,
                "Reloaded configuration: {json}"
            );
        }
        Err(e) => {
            let e = anyhow::Error::new(e);
            tracing::error!("Error reconfiguring the daemon: {e:#}");
        }
    }
}
