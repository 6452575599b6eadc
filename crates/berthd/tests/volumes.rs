//! Tier 2: volumes through a real berthd, containerd and runc, driven by the docker CLI:
//! copy-up through links, driver options mounted for the life of their users, `docker cp`
//! through volumes, subpaths, events, `system df`, and volumes' users across a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{TestDaemon, import_busybox_as};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox", "tar"];

/// busybox with the applets these tests use, and an image folder `/data` holding a file,
/// a link out of the image and a link to a folder, owned by 1000 with mode 0750.
fn image(d: &TestDaemon) {
    import_busybox_as(d, "test/vol:1", |root| {
        for applet in ["ls", "stat", "readlink", "mkdir", "touch"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let data = root.join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("seed"), "seeded\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", data.join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        for p in [data.join("seed"), data.clone()] {
            nix::unistd::chown(
                &p,
                Some(nix::unistd::Uid::from_raw(1000)),
                Some(nix::unistd::Gid::from_raw(1000)),
            )
            .unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    });
}

fn ok(d: &TestDaemon, args: &[&str]) -> String {
    let (code, out, err) = d.docker(args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn run(d: &TestDaemon, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm", "--network", "none"];
    all.extend_from_slice(args);
    ok(d, &all)
}

fn mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn copy_up_keeps_links_owners_and_modes_and_never_follows_out() {
    common::require_root_tier("volumes_copy_up", TOOLS);
    let d = TestDaemon::new().start(&[]);
    image(&d);
    assert_eq!(
        run(
            &d,
            &[
                "-v",
                "cu:/data",
                "test/vol:1",
                "sh",
                "-c",
                "echo $(cat /data/seed) $(readlink /data/abs) $(stat -c '%u %a' /data)",
            ],
        ),
        "seeded /etc/shadow 1000 750"
    );
    let mp = ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "cu"]);
    assert_eq!(
        std::fs::read_link(Path::new(&mp).join("abs")).unwrap(),
        Path::new("/etc/shadow"),
        "a link, not the host's file"
    );
    // The image's /etclink points at its /etc: the copy is the image's passwd, never the host's.
    run(&d, &["-v", "etcv:/etclink", "test/vol:1", "true"]);
    let mp = ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "etcv"]);
    assert_eq!(
        std::fs::read_to_string(Path::new(&mp).join("passwd")).unwrap(),
        "root:x:0:0:root:/root:/bin/sh\n"
    );
    // nocopy, both spellings.
    assert_eq!(
        run(
            &d,
            &["-v", "nc1:/data:nocopy", "test/vol:1", "ls", "-A", "/data"]
        ),
        ""
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,src=nc2,dst=/data,volume-nocopy",
                "test/vol:1",
                "ls",
                "-A",
                "/data"
            ]
        ),
        ""
    );
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn driver_options_are_mounted_while_used_and_events_say_so() {
    common::require_root_tier("volumes_driver_options", TOOLS);
    let d = TestDaemon::new().start(&[]);
    image(&d);
    let since = common::a_second_ago().to_string();
    ok(
        &d,
        &[
            "volume",
            "create",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            "o=size=1m",
            "tv",
        ],
    );
    let mp = ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "tv"]);
    assert!(!mounted(&mp), "not mounted before its first user");
    ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "u1",
            "--network",
            "none",
            "-v",
            "tv:/t",
            "test/vol:1",
            "sleep",
            "600",
        ],
    );
    assert!(mounted(&mp), "mounted for its user");
    assert_eq!(
        ok(
            &d,
            &[
                "exec",
                "u1",
                "sh",
                "-c",
                "grep ' /t ' /proc/mounts | cut -d' ' -f3"
            ]
        ),
        "tmpfs"
    );
    ok(&d, &["rm", "-f", "u1"]);
    assert!(!mounted(&mp), "unmounted with its last user");
    ok(&d, &["volume", "rm", "tv"]);
    let until = (common::a_second_ago() + 3).to_string();
    let ev = ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}}",
        ],
    );
    let actions: Vec<&str> = ev.lines().collect();
    assert_eq!(actions, ["create", "mount", "unmount", "destroy"], "{ev}");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn cp_reads_and_writes_through_volumes_and_subpaths_stay_inside() {
    common::require_root_tier("volumes_cp_subpath", TOOLS);
    let d = TestDaemon::new().start(&[]);
    image(&d);
    ok(
        &d,
        &[
            "create",
            "--name",
            "cpc",
            "--network",
            "none",
            "-v",
            "cpv:/data",
            "test/vol:1",
            "true",
        ],
    );
    let host = d.data_root().join("cp-in");
    std::fs::write(&host, "in\n").unwrap();
    ok(&d, &["cp", host.to_str().unwrap(), "cpc:/data/in"]);
    let mp = ok(&d, &["volume", "inspect", "-f", "{{.Mountpoint}}", "cpv"]);
    assert_eq!(
        std::fs::read_to_string(Path::new(&mp).join("in")).unwrap(),
        "in\n"
    );
    std::fs::write(Path::new(&mp).join("out"), "out\n").unwrap();
    let back = d.data_root().join("cp-out");
    ok(&d, &["cp", "cpc:/data/out", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "out\n");

    run(
        &d,
        &[
            "-v",
            "sp:/v",
            "test/vol:1",
            "sh",
            "-c",
            "mkdir -p /v/sub && echo deep >/v/sub/f",
        ],
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,src=sp,dst=/s,volume-subpath=sub",
                "test/vol:1",
                "cat",
                "/s/f"
            ]
        ),
        "deep"
    );
    // A link inside the volume that points out resolves inside it.
    run(
        &d,
        &["-v", "sp:/v", "test/vol:1", "sh", "-c", "ln -s / /v/escape"],
    );
    assert_eq!(
        run(
            &d,
            &[
                "--mount",
                "type=volume,src=sp,dst=/s,volume-subpath=escape",
                "test/vol:1",
                "ls",
                "/s"
            ]
        ),
        "escape\nsub",
        "the volume's root, not the host's"
    );
    let (code, _, err) = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,src=sp,dst=/s,volume-subpath=nosuch",
        "test/vol:1",
        "true",
    ]);
    assert_ne!(code, 0, "{err}");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn inspect_df_and_users_across_a_restart() {
    common::require_root_tier("volumes_inspect_restart", TOOLS);
    let mut d = TestDaemon::new().start(&[]);
    image(&d);
    let bind = d.data_root().join("bindsrc");
    std::fs::create_dir_all(&bind).unwrap();
    let bind_arg = format!("{}:/b:ro", bind.display());
    ok(
        &d,
        &[
            "create",
            "--name",
            "mm",
            "--network",
            "none",
            "-v",
            "iv:/data",
            "-v",
            &bind_arg,
            "test/vol:1",
            "true",
        ],
    );
    let mounts = ok(
        &d,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Type}},{{.Name}},{{.Destination}},{{.Driver}},{{.RW}},{{.Propagation}};{{end}}",
            "mm",
        ],
    );
    assert!(mounts.contains("volume,iv,/data,local,true,;"), "{mounts}");
    assert!(mounts.contains("bind,,/b,,false,rprivate;"), "{mounts}");
    let df = ok(
        &d,
        &[
            "system",
            "df",
            "-v",
            "--format",
            "{{range .Volumes}}{{.Name}}:{{.Links}} {{end}}",
        ],
    );
    assert!(df.contains("iv:1"), "{df}");

    // A `-v` bind's missing host folder is made, as dockerd's.
    let made = d.data_root().join("made/by/run");
    run(
        &d,
        &[
            "-v",
            &format!("{}:/n", made.display()),
            "test/vol:1",
            "true",
        ],
    );
    assert!(made.is_dir());

    d.stop();
    let d = d.start(&[]);
    let (code, _, err) = d.docker(&["volume", "rm", "iv"]);
    assert_ne!(code, 0);
    assert!(err.contains("volume is in use"), "{err}");
    ok(&d, &["rm", "mm"]);
    ok(&d, &["volume", "rm", "iv"]);
}
