//! berth-model owns Docker's container data model as clients send it and as berth stores
//! it: `Config`, `HostConfig` and friends, with Docker's JSON names. Clients send `null` for
//! many collections; every collection here reads `null` as empty. Unknown fields are ignored
//! (newer clients send more).
//!
//! It must not depend on any berth crate but berth-config, nor on I/O.

mod config;
mod nullable;

pub use config::{
    ContainerConfig, DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig,
    LogConfig, MountPoint, NetworkSettings, NetworkingConfig, PortBinding, RestartPolicy,
};
pub use nullable::nullable;
