//! berth-oci will own the OCI runtime spec as a pure function:
//! `(container config, host config, image config, config snapshot, host facts) -> Spec`,
//! with Docker's default security (capabilities, masked paths, seccomp, AppArmor) and rlimits
//! merged from container ulimits over daemon defaults.
//!
//! It must not depend on an async runtime, on containerd or on any berth crate but
//! berth-config; host facts come in through a trait so every rule is unit-tested without root.
//! (Filled by the OCI spec issue; the crate exists now so the layering is fixed.)
