use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::version_client::VersionClient;
use containerd_client::tonic::metadata::AsciiMetadataValue;
use containerd_client::tonic::service::Interceptor;
use containerd_client::tonic::service::interceptor::InterceptedService;
use containerd_client::tonic::transport::{Channel, Endpoint};
use containerd_client::tonic::{Request, Status};
use hyper_util::rt::TokioIo;

use crate::{ContainerdError, Counted, RpcCounter};

/// The service stack every generated containerd client is built on: the namespace header
/// over the counting layer over one shared channel.
pub type Service = InterceptedService<Counted<Channel>, Namespace>;

/// Adds `containerd-namespace` to every call.
#[derive(Debug, Clone)]
pub struct Namespace {
    value: AsciiMetadataValue,
}

impl Interceptor for Namespace {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut()
            .insert("containerd-namespace", self.value.clone());
        Ok(req)
    }
}

/// containerd's answer to Version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdVersion {
    pub version: String,
    pub revision: String,
}

/// A connection to one containerd, in one namespace. Cheap to clone: every clone shares the
/// channel (which reconnects by itself after containerd restarts) and the RPC counter.
#[derive(Debug, Clone)]
pub struct Client {
    service: Service,
    socket: PathBuf,
    namespace: String,
    counter: RpcCounter,
}

impl Client {
    /// A client for the containerd at `address` (`unix:///path` or a path). The connection is
    /// made lazily, on the first call, so the client can exist before containerd answers.
    pub fn new(
        address: &str,
        namespace: &str,
        counter: RpcCounter,
    ) -> Result<Client, ContainerdError> {
        let socket = PathBuf::from(address.strip_prefix("unix://").unwrap_or(address));
        let value = namespace
            .parse::<AsciiMetadataValue>()
            .map_err(|_| ContainerdError::Namespace(namespace.to_string()))?;
        let path = socket.clone();
        let channel = Endpoint::from_static("http://[::]")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Client {
            service: InterceptedService::new(
                Counted::new(channel, counter.clone()),
                Namespace { value },
            ),
            socket,
            namespace: namespace.to_string(),
            counter,
        })
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn counter(&self) -> &RpcCounter {
        &self.counter
    }

    /// The service stack, for building generated clients (`TasksClient::new(c.service())`).
    pub fn service(&self) -> Service {
        self.service.clone()
    }

    /// containerd's version: one `Version/Version` RPC.
    pub async fn version(&self) -> Result<ContainerdVersion, ContainerdError> {
        let resp = VersionClient::new(self.service())
            .version(())
            .await
            .map_err(|s| ContainerdError::rpc("Version", s))?
            .into_inner();
        Ok(ContainerdVersion {
            version: resp.version,
            revision: resp.revision,
        })
    }
}
