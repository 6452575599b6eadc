//! Containers on the wire: `docker ps` rows, inspect, stats, top, diff, wait, prune, the
//! path stat header of `docker cp`, and log lines.

use std::time::{Duration, SystemTime};

use berth_daemon::{
    CgroupStats, Change, ContainerInspect, DaemonError, LogLine, PathStat, Record, StatsSample,
    Status, Summary,
};
use berth_model::NetworkSettings;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::hijack::frame_header;

/// `POST /containers/create`.
pub(crate) fn created(id: &str) -> Value {
    json!({"Id": id, "Warnings": []})
}

/// `POST /containers/{id}/update`.
pub(crate) fn updated() -> Value {
    json!({"Warnings": []})
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
        Status::Running => format!("Up {}", human_duration(since(s.started_at()))),
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
    let mut command = r.path.clone();
    for a in &r.args {
        command.push(' ');
        command.push_str(a);
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
    }
    let mut v = json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": r.state,
        "Image": r.image,
        "ResolvConfPath": r.resolv_conf_path,
        "HostnamePath": r.hostname_path,
        "HostsPath": r.hosts_path,
        "LogPath": r.log_path,
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
        "Config": r.config,
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

/// `GET /containers/{id}/top`.
pub(crate) fn top(titles: &[String], processes: &[Vec<String>]) -> Value {
    json!({"Titles": titles, "Processes": processes})
}

/// One `docker stats` sample, with the previous one's CPU time (zero for the first).
pub(crate) fn stats(s: &StatsSample, pre: &CgroupStats) -> Value {
    let now = humantime::format_rfc3339_nanos(s.read).to_string();
    let c = &s.cgroup;
    let ncpu = s.online_cpus;
    json!({
        "read": now,
        "preread": now,
        "id": s.id,
        "name": format!("/{}", s.name),
        "num_procs": 0,
        "pids_stats": {"current": c.pids},
        "memory_stats": {"usage": c.memory_usage, "limit": c.memory_limit, "stats": c.memory_stats},
        "cpu_stats": {"cpu_usage": {"total_usage": c.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                      "system_cpu_usage": s.system_cpu_ns, "online_cpus": ncpu, "throttling_data": {}},
        "precpu_stats": {"cpu_usage": {"total_usage": pre.cpu_total_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                         "system_cpu_usage": 0, "online_cpus": ncpu, "throttling_data": {}},
        "blkio_stats": {},
        "storage_stats": {},
        "networks": s.networks.iter().map(|(name, n)| (name.clone(), json!({
            "rx_bytes": n.rx_bytes, "rx_packets": n.rx_packets, "rx_errors": n.rx_errors,
            "rx_dropped": n.rx_dropped, "tx_bytes": n.tx_bytes, "tx_packets": n.tx_packets,
            "tx_errors": n.tx_errors, "tx_dropped": n.tx_dropped,
        }))).collect::<serde_json::Map<String, Value>>(),
    })
}

/// `GET /containers/{id}/changes` (`docker diff`).
pub(crate) fn changes(changes: &[Change]) -> Value {
    changes
        .iter()
        .map(|c| json!({"Path": c.path, "Kind": c.kind}))
        .collect()
}

/// The body `POST /containers/{id}/wait` ends with.
pub(crate) fn wait_result(result: Result<i64, DaemonError>) -> Value {
    match result {
        Ok(code) => json!({"StatusCode": code, "Error": null}),
        Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
    }
}

/// `POST /containers/prune`.
pub(crate) fn pruned(deleted: &[String]) -> Value {
    json!({"ContainersDeleted": deleted, "SpaceReclaimed": 0})
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
