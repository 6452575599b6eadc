//! Containers on the wire: `docker ps` rows, inspect, stats, top, diff, wait, prune, the
//! path stat header of `docker cp`, and log lines.

use std::time::{Duration, SystemTime};

use berth_daemon::{
    CgroupStats, Change, ContainerInspect, DaemonError, HealthStatus, LogLine, PathStat, Record,
    StatsSample, Status, Summary,
};
use berth_model::NetworkSettings;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::hijack::frame_header;

/// `POST /containers/create`.
pub(crate) fn created(id: &str) -> Value {
    json!({"Id": id, "Warnings": []})
}

/// `POST /containers/{id}/update` (no warnings: Go's nil list).
pub(crate) fn updated() -> Value {
    json!({"Warnings": null})
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".into(),
        7200..172_800 => format!("{} hours", s / 3600),
        172_800..1_209_600 => format!("{} days", s / 86_400),
        1_209_600..5_259_600 => format!("{} weeks", s / 604_800),
        5_259_600..63_115_200 => format!("{} months", s / 2_629_800),
        _ => format!("{} years", s / 31_557_600),
    }
}

fn since(t: &str) -> Duration {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// `docker ps`'s STATUS column.
fn status_text(r: &Record) -> String {
    let s = &r.state;
    match s.status() {
        Status::Running => match s.health() {
            Some(h) => format!(
                "Up {} ({})",
                human_duration(since(s.started_at())),
                match h.status() {
                    HealthStatus::Starting => "health: starting",
                    other => other.as_str(),
                }
            ),
            None => format!("Up {}", human_duration(since(s.started_at()))),
        },
        Status::Paused => format!("Up {} (Paused)", human_duration(since(s.started_at()))),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code(),
            human_duration(since(s.finished_at()))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if !r.has_been_started => "Created".into(),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code(),
            human_duration(since(s.finished_at()))
        ),
    }
}

fn unix_secs(t: &str) -> i64 {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A container as `docker ps` lists it; `size` is (bytes written, with the image's).
pub(crate) fn summary(s: &Summary, size: Option<(u64, u64)>) -> Value {
    let r = &s.record;
    // dockerd quotes the arguments that hold a space.
    let mut command = r.path.clone();
    for a in &r.args {
        command.push(' ');
        if a.contains(' ') {
            command.push('\'');
            command.push_str(a);
            command.push('\'');
        } else {
            command.push_str(a);
        }
    }
    let mut v = json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": s.image_name,
        "ImageID": r.image,
        "Command": command,
        "Created": unix_secs(&r.created),
        "Ports": port_list(&r.network_settings),
        "Labels": r.config.labels,
        "State": r.state.status().as_str(),
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": r.host_config.network_mode},
        "NetworkSettings": {"Networks": r.network_settings.networks},
        "Mounts": s.mounts,
    });
    if let Some((rw, root)) = size {
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = root.into();
    }
    v
}

/// `GET /containers/{id}/json`.
pub(crate) fn inspect(i: &ContainerInspect) -> Value {
    let r = &i.record;
    let mut host_config = serde_json::to_value(&r.host_config).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut host_config {
        m.insert("Ulimits".into(), json!(i.ulimits));
        host_config_as_dockerd(m);
    }
    let started = |p: &str| {
        if r.has_been_started {
            p.to_string()
        } else {
            String::new()
        }
    };
    let mut config = serde_json::to_value(&r.config).unwrap_or_else(|_| json!({}));
    // An empty map or list is Go's nil after dockerd's create.
    for k in ["Volumes", "Env"] {
        let empty = match &config[k] {
            Value::Object(o) => o.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if empty {
            config[k] = Value::Null;
        }
    }
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": r.state,
        "Image": r.image,
        // dockerd sets these at the first start.
        "ResolvConfPath": started(&r.resolv_conf_path),
        "HostnamePath": started(&r.hostname_path),
        "HostsPath": started(&r.hosts_path),
        "LogPath": started(&r.log_path),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if i.exec_ids.is_empty() { Value::Null } else { json!(i.exec_ids) },
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": i.upper_dir, "WorkDir": i.work_dir}},
        "Mounts": i.mounts,
        "Config": config,
        "NetworkSettings": network_settings(&r.network_settings),
    });
    if let Some((rw, root)) = i.size {
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = root.into();
    }
    v
}

/// `docker ps`'s `Ports`: each binding, and exposed ports without one.
fn port_list(ns: &NetworkSettings) -> Value {
    let mut out = Vec::new();
    for (key, bindings) in &ns.ports {
        let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let private: u64 = port.parse().unwrap_or(0);
        match bindings.as_deref() {
            None | Some([]) => out.push(json!({"PrivatePort": private, "Type": proto})),
            Some(list) => {
                for b in list {
                    out.push(json!({
                        "IP": b.host_ip,
                        "PrivatePort": private,
                        "PublicPort": b.host_port.parse::<u64>().unwrap_or(0),
                        "Type": proto,
                    }));
                }
            }
        }
    }
    Value::Array(out)
}

/// Inspect's `NetworkSettings`: the networks and ports, and the deprecated top-level copies
/// of the default bridge's endpoint that clients still read.
fn network_settings(ns: &NetworkSettings) -> Value {
    let bridge = ns.networks.get("bridge").cloned().unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": ns.sandbox_id,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ns.ports,
        "SandboxKey": ns.sandbox_key,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": bridge.endpoint_id,
        "Gateway": bridge.gateway,
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.ip_address,
        "IPPrefixLen": bridge.ip_prefix_len,
        "IPv6Gateway": "",
        "MacAddress": bridge.mac_address,
        "Networks": ns.networks,
    })
}

/// The HostConfig keys dockerd 20.10 always shows, with Go's zero values (nil lists are
/// `null`), for those the request did not send.
const HOST_CONFIG_ZEROS: &[(&str, &str)] = &[
    ("ContainerIDFile", "\"\""),
    ("VolumeDriver", "\"\""),
    ("VolumesFrom", "null"),
    ("Cgroup", "\"\""),
    ("Links", "null"),
    ("UTSMode", "\"\""),
    ("UsernsMode", "\"\""),
    ("ConsoleSize", "[0,0]"),
    ("Isolation", "\"\""),
    ("BlkioWeightDevice", "null"),
    ("BlkioDeviceReadBps", "null"),
    ("BlkioDeviceWriteBps", "null"),
    ("BlkioDeviceReadIOps", "null"),
    ("BlkioDeviceWriteIOps", "null"),
    ("CpuRealtimePeriod", "0"),
    ("CpuRealtimeRuntime", "0"),
    ("DeviceCgroupRules", "null"),
    ("DeviceRequests", "null"),
    ("KernelMemory", "0"),
    ("KernelMemoryTCP", "0"),
    ("CpuCount", "0"),
    ("CpuPercent", "0"),
    ("IOMaximumIOps", "0"),
    ("IOMaximumBandwidth", "0"),
    ("MaskedPaths", "null"),
    ("ReadonlyPaths", "null"),
];

/// Inspect's HostConfig with dockerd's keys: the zero values of what was not sent, and
/// without the keys dockerd leaves out when empty (`Init`, `Sysctls`, `Tmpfs`).
fn host_config_as_dockerd(m: &mut serde_json::Map<String, Value>) {
    // Empty lists the client did not send as `[]` are Go's nil.
    let sent_empty: Vec<String> = m
        .remove("BerthEmptyLists")
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    for (k, v) in m.iter_mut() {
        let empty = v.as_array().is_some_and(Vec::is_empty)
            || (k == "PortBindings" && v.as_object().is_some_and(|o| o.is_empty()));
        if empty && !sent_empty.contains(k) && k != "ConsoleSize" {
            *v = Value::Null;
        }
    }
    for (k, zero) in HOST_CONFIG_ZEROS {
        if !m.contains_key(*k) {
            m.insert(
                (*k).to_string(),
                serde_json::from_str(zero).unwrap_or(Value::Null),
            );
        }
    }
    for k in ["Init", "Sysctls", "Tmpfs"] {
        let empty = match m.get(k) {
            Some(Value::Null) => true,
            Some(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
        if empty {
            m.remove(k);
        }
    }
}

/// `GET /containers/{id}/top`.
pub(crate) fn top(titles: &[String], processes: &[Vec<String>]) -> Value {
    json!({"Titles": titles, "Processes": processes})
}

/// One `docker stats` sample, with the previous one's CPU times and the machine's CPU time
/// then (zero for the first): clients compute the CPU share from the two.
pub(crate) fn stats(s: &StatsSample, pre: &CgroupStats, pre_system: u64) -> Value {
    let now = humantime::format_rfc3339_nanos(s.read).to_string();
    let c = &s.cgroup;
    let ncpu = s.online_cpus;
    let cpu = |c: &CgroupStats, system: u64| {
        let mut usage = json!({"total_usage": c.cpu_total_ns,
            "usage_in_kernelmode": c.cpu_kernel_ns, "usage_in_usermode": c.cpu_user_ns});
        if let Some(per) = &c.cpu_percpu_ns {
            usage["percpu_usage"] = json!(per);
        }
        let (periods, throttled, time) = c.throttling;
        json!({"cpu_usage": usage, "system_cpu_usage": system, "online_cpus": ncpu,
               "throttling_data": {"periods": periods, "throttled_periods": throttled,
                                   "throttled_time": time}})
    };
    let mut memory =
        json!({"usage": c.memory_usage, "limit": c.memory_limit, "stats": c.memory_stats});
    if let Some(max) = c.memory_max_usage {
        memory["max_usage"] = max.into();
    }
    let mut v = json!({
        "read": now,
        "preread": now,
        "id": s.id,
        "name": format!("/{}", s.name),
        "num_procs": 0,
        "pids_stats": {"current": c.pids},
        "memory_stats": memory,
        "cpu_stats": cpu(c, s.system_cpu_ns),
        "precpu_stats": cpu(pre, pre_system),
        "blkio_stats": {},
        "storage_stats": {},
    });
    // No interfaces (`none`, `host`): no key, as dockerd.
    if !s.networks.is_empty() {
        v["networks"] = s.networks.iter().map(|(name, n)| (name.clone(), json!({
            "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors,
            "rx_dropped": n.rx_dropped, "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
            "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
        }))).collect::<serde_json::Map<String, Value>>().into();
    }
    v
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub(crate) fn changes(changes: &[Change]) -> Value {
    changes
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind}))
        .collect()
}

/// The body `POST /containers/{id}/wait` ends with.
pub(crate) fn wait_result(result: Result<(i64, String), DaemonError>) -> Value {
    match result {
        Ok((code, error)) if !error.is_empty() => {
            json!({"StatusCode": code, "Error": {"Message": error}})
        }
        Ok((code, _)) => json!({"StatusCode": code, "Error": null}),
        Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
    }
}

/// `POST /containers/prune`.
pub(crate) fn pruned(deleted: &[String], reclaimed: u64) -> Value {
    // Nothing deleted is Go's nil list.
    let deleted = if deleted.is_empty() {
        Value::Null
    } else {
        json!(deleted)
    };
    json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed})
}

/// `X-Docker-Container-Path-Stat`: the stat of a path as base64 JSON.
pub(crate) fn path_stat_header(stat: &PathStat) -> (http::HeaderName, String) {
    use base64::Engine;
    let json = serde_json::to_vec(stat).unwrap_or_default();
    (
        http::HeaderName::from_static("x-docker-container-path-stat"),
        base64::engine::general_purpose::STANDARD.encode(json),
    )
}

/// One log line: raw with a terminal, else in an 8-byte frame naming its stream.
pub(crate) fn log_line(line: &LogLine, timestamps: bool, tty: bool) -> Bytes {
    let mut text = String::new();
    if timestamps {
        text.push_str(&line.time);
        text.push(' ');
    }
    text.push_str(&line.text);
    if tty {
        Bytes::from(text)
    } else {
        let mut b = frame_header(line.stream as u8, text.len()).to_vec();
        b.extend_from_slice(text.as_bytes());
        Bytes::from(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(90)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }
}
