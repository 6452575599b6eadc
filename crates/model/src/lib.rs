//! berth-model owns Docker's container data model as clients send it and as berth stores
//! it: `Config`, `HostConfig` and friends, with Docker's JSON names. Clients send `null` for
//! many collections; every collection here reads `null` as empty. Unknown fields are ignored
//! (newer clients send more).
//!
//! It must not depend on any berth crate but berth-config, nor on I/O.

mod config;
mod nullable;

pub use config::{
    BindOptions, ContainerConfig, DeviceMapping, DriverConfig, EndpointIpamConfig,
    EndpointSettings, HealthConfig, HostConfig, LogConfig, Mount, MountPoint, NetworkSettings,
    NetworkingConfig, PortBinding, RestartPolicy, TmpfsOptions, VolumeOptions,
};
pub use nullable::nullable;
