use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http::header::CONTENT_TYPE;

use berth_daemon::Daemon;

/// Prometheus text exposition of berthd's counters.
pub fn render_metrics(rpc_counts: &[(String, u64)]) -> String {
    let mut out = String::new();
    out.push_str("# HELP berth_engine_info The berth engine.\n# TYPE berth_engine_info gauge\n");
    let _ = writeln!(
        out,
        "berth_engine_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(
        "# HELP berth_containerd_rpc_total containerd RPCs made by berthd, by gRPC method.\n\
         # TYPE berth_containerd_rpc_total counter\n",
    );
    for (method, n) in rpc_counts {
        let method = method.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(out, "berth_containerd_rpc_total{{method=\"{method}\"}} {n}");
    }
    out
}

async fn metrics(State(d): State<Arc<Daemon>>) -> impl axum::response::IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render_metrics(&d.rpc_counter().snapshot()),
    )
}

/// Serves `GET /metrics` on a TCP address until `shutdown` resolves.
pub async fn serve_metrics<F>(
    addr: SocketAddr,
    daemon: Arc<Daemon>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .with_state(daemon);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let text = render_metrics(&[("/containerd.services.tasks.v1.Tasks/Create".to_string(), 3)]);
        assert!(text.contains("# TYPE berth_containerd_rpc_total counter\n"));
        assert!(text.contains(
            "berth_containerd_rpc_total{method=\"/containerd.services.tasks.v1.Tasks/Create\"} 3\n"
        ));
    }
}
