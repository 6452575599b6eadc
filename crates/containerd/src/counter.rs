use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use containerd_client::tonic::body::Body;
use containerd_client::tonic::transport::Channel;
use tower::Service;

/// Counts containerd RPCs by gRPC method path (`/containerd.services.tasks.v1.Tasks/Create`).
/// Cheap to clone; all clones share one table.
#[derive(Debug, Clone, Default)]
pub struct RpcCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl RpcCounter {
    pub fn new() -> RpcCounter {
        RpcCounter::default()
    }

    pub fn record(&self, method: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(method) {
            Some(n) => *n += 1,
            None => {
                counts.insert(method.to_string(), 1);
            }
        }
    }

    /// How many calls of `method` were made.
    pub fn get(&self, method: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(method).copied().unwrap_or(0)
    }

    /// Every method with its count, sorted by method.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// The sum over all methods.
    pub fn total(&self) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.values().sum()
    }
}

/// The tower layer every containerd call goes through: it records the call's method, then
/// hands the request to the channel.
#[derive(Debug, Clone)]
pub struct Counted<S = Channel> {
    inner: S,
    counter: RpcCounter,
}

impl<S> Counted<S> {
    pub fn new(inner: S, counter: RpcCounter) -> Counted<S> {
        Counted { inner, counter }
    }
}

impl<S> Service<http::Request<Body>> for Counted<S>
where
    S: Service<http::Request<Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        self.counter.record(req.uri().path());
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{Ready, ready};

    #[derive(Clone)]
    struct Echo;
    impl Service<http::Request<Body>> for Echo {
        type Response = String;
        type Error = std::convert::Infallible;
        type Future = Ready<Result<String, Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: http::Request<Body>) -> Self::Future {
            ready(Ok(req.uri().path().to_string()))
        }
    }

    #[tokio::test]
    async fn every_call_is_counted_by_method() {
        use tower::ServiceExt;
        let counter = RpcCounter::new();
        let svc = Counted::new(Echo, counter.clone());
        for path in [
            "/containerd.services.tasks.v1.Tasks/Create",
            "/containerd.services.tasks.v1.Tasks/Create",
            "/containerd.services.version.v1.Version/Version",
        ] {
            let req = http::Request::builder()
                .uri(format!("http://[::]{path}"))
                .body(Body::empty())
                .unwrap();
            assert_eq!(svc.clone().oneshot(req).await.unwrap(), path);
        }
        assert_eq!(counter.get("/containerd.services.tasks.v1.Tasks/Create"), 2);
        assert_eq!(counter.total(), 3);
        assert_eq!(counter.snapshot().len(), 2);
    }
}
