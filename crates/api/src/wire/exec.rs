//! Exec instances on the wire.

use berth_daemon::ExecInspect;
use serde_json::{Value, json};

/// `GET /exec/{id}/json`.
pub(crate) fn inspect(e: &ExecInspect) -> Value {
    let (entry, args) = match e.config.cmd.split_first() {
        Some((a, rest)) => (a.clone(), rest.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let mut process = json!({"tty": e.config.tty, "entrypoint": entry, "arguments": args,
                             "privileged": e.config.privileged});
    if !e.config.user.is_empty() {
        // dockerd leaves an empty user out.
        process["user"] = e.config.user.clone().into();
    }
    json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": process,
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "Pid": e.pid,
    })
}
