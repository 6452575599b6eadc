//! The one place logging is set up: level, format and output.

use std::io::IsTerminal;

use berth_config::LogLevel;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// Changes the log level of the running daemon (on reload).
#[derive(Debug, Clone)]
pub struct LogHandle {
    handle: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

impl LogHandle {
    pub fn set_level(&self, level: LogLevel) {
        if let Err(e) = self.handle.modify(|f| *f = filter(level)) {
            tracing::error!(error = %e, "cannot change the log level");
        }
    }
}

/// berth's own crates log at `level`; the HTTP and gRPC libraries stay at info even in debug
/// mode, where they would drown the one-line-per-request log.
fn filter(level: LogLevel) -> EnvFilter {
    let l = level.as_filter();
    EnvFilter::new(format!(
        "{l},h2=info,hyper=info,hyper_util=info,tower=info,tonic=info,axum=info"
    ))
}

/// Logs go to stderr as text lines with a timestamp, the level, the span path and fields.
pub fn init(level: LogLevel) -> LogHandle {
    let (layer, handle) = reload::Layer::new(filter(level));
    tracing_subscriber::registry()
        .with(layer)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .init();
    LogHandle { handle }
}
