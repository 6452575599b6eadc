//! berth-oci owns the OCI runtime spec of a container as a pure function:
//! `build_spec(SpecInput) -> oci_spec::runtime::Spec`, from the container's config and host
//! config (image defaults already merged in), the daemon's config snapshot (default
//! ulimits), the resolved user and the host facts. It holds Docker's defaults: the 14 default
//! capabilities, masked and read-only paths, default mounts and devices, the default seccomp
//! profile (its own data, `seccomp_default.json`), AppArmor selection, rlimits merged from
//! container ulimits over daemon defaults, and the resources a container asks for (unset ones
//! omitted, never zero). Exec processes derive from the container's stored process.
//!
//! No I/O: the host comes in through `HostFacts`, so every rule is unit-tested without root.
//! It must not depend on an async runtime, containerd, or berth crates other than
//! berth-config and berth-model.

mod caps;
mod error;
mod exec;
mod host;
mod mounts;
mod resources;
mod rlimits;
mod seccomp;
mod security;
mod spec;
mod user;

pub use caps::{DEFAULT_CAPS, cap_name, caps_from_mask, parse_cap};
pub use error::SpecError;
pub use exec::{ExecInput, exec_process};
pub use host::{HostFacts, StaticHost};
pub use mounts::UserMount;
pub use resources::resources;
pub use rlimits::{merge_ulimits, merged_rlimits};
pub use security::{SecurityOpts, parse_security_opts};
pub use spec::{
    DEFAULT_PATH, MASKED_PATHS, READONLY_PATHS, SpecInput, build_spec, cgroups_path, command,
    spec_process,
};
pub use user::{ResolvedUser, resolve_user};
