use berth_model::HostConfig;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

use crate::SpecError;

fn dev(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    Ok(b.build()?)
}

/// Docker's device cgroup: deny everything, then allow mknod of any device and use of the
/// standard ones (null, zero, full, random, urandom, tty, console, ptmx, pts, tun).
/// Privileged containers may use every device.
fn device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    use LinuxDeviceType::{A, B, C};
    if privileged {
        return Ok(vec![dev(true, A, None, None, "rwm")?]);
    }
    let mut rules = vec![
        dev(false, A, None, None, "rwm")?,
        dev(true, C, None, None, "m")?,
        dev(true, B, None, None, "m")?,
    ];
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(dev(true, C, Some(major), minor, "rwm")?);
    }
    Ok(rules)
}

/// The cgroup resources a container asks for. Unset values are left out of the spec, never
/// written as zero.
pub fn resources(h: &HostConfig) -> Result<LinuxResources, SpecError> {
    let mut r = LinuxResourcesBuilder::default().devices(device_rules(h.privileged)?);

    let mut mem = LinuxMemoryBuilder::default();
    let mut any_mem = false;
    if h.memory > 0 {
        mem = mem.limit(h.memory);
        any_mem = true;
        // Docker's default: as much swap as memory (swap limit = 2 × memory).
        match h.memory_swap {
            0 => mem = mem.swap(h.memory * 2),
            s if s > 0 || s == -1 => mem = mem.swap(s),
            _ => {}
        }
    }
    if h.memory_reservation > 0 {
        mem = mem.reservation(h.memory_reservation);
        any_mem = true;
    }
    if let Some(s) = h.memory_swappiness.filter(|s| *s >= 0) {
        mem = mem.swappiness(s as u64);
        any_mem = true;
    }
    if let Some(true) = h.oom_kill_disable {
        mem = mem.disable_oom_killer(true);
        any_mem = true;
    }
    if any_mem {
        r = r.memory(mem.build()?);
    }

    let mut cpu = LinuxCpuBuilder::default();
    let mut any_cpu = false;
    if h.cpu_shares > 0 {
        cpu = cpu.shares(h.cpu_shares as u64);
        any_cpu = true;
    }
    if h.nano_cpus > 0 {
        let period: u64 = 100_000;
        cpu = cpu
            .period(period)
            .quota(h.nano_cpus * period as i64 / 1_000_000_000);
        any_cpu = true;
    } else {
        if h.cpu_period > 0 {
            cpu = cpu.period(h.cpu_period as u64);
            any_cpu = true;
        }
        if h.cpu_quota > 0 {
            cpu = cpu.quota(h.cpu_quota);
            any_cpu = true;
        }
    }
    if !h.cpuset_cpus.is_empty() {
        cpu = cpu.cpus(h.cpuset_cpus.clone());
        any_cpu = true;
    }
    if !h.cpuset_mems.is_empty() {
        cpu = cpu.mems(h.cpuset_mems.clone());
        any_cpu = true;
    }
    if any_cpu {
        r = r.cpu(cpu.build()?);
    }
    if let Some(p) = h.pids_limit.filter(|p| *p > 0) {
        r = r.pids(LinuxPidsBuilder::default().limit(p).build()?);
    }
    if h.blkio_weight > 0 {
        r = r.block_io(
            LinuxBlockIoBuilder::default()
                .weight(h.blkio_weight)
                .build()?,
        );
    }
    Ok(r.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_resources_are_omitted() {
        let r = resources(&HostConfig::default()).unwrap();
        assert!(
            r.memory().is_none()
                && r.cpu().is_none()
                && r.pids().is_none()
                && r.block_io().is_none()
        );
        assert_eq!(r.devices().as_ref().unwrap().len(), 13);
    }

    #[test]
    fn memory_cpu_pids() {
        let h = HostConfig {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(20),
            blkio_weight: 300,
            ..Default::default()
        };
        let r = resources(&h).unwrap();
        let m = r.memory().as_ref().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        let c = r.cpu().as_ref().unwrap();
        assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
        assert_eq!(r.pids().as_ref().unwrap().limit(), 20);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
        let unlimited = resources(&HostConfig {
            pids_limit: Some(-1),
            ..Default::default()
        })
        .unwrap();
        assert!(unlimited.pids().is_none());
    }

    #[test]
    fn privileged_may_use_every_device() {
        let r = resources(&HostConfig {
            privileged: true,
            ..Default::default()
        })
        .unwrap();
        let d = r.devices().as_ref().unwrap();
        assert_eq!(d.len(), 1);
        assert!(d[0].allow());
    }
}
