//! Tier 2 (root): what an attacker with only an image or a container can try against the host
//! through berthd — symlinks out of the root for `docker cp` and the archive API (running,
//! stopped and never-started containers), an image's `/etc/passwd` as a FIFO, a device or a
//! link to a host folder — must reach nothing outside the container's root and must not
//! block the daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use common::{TestDaemon, import_busybox, import_busybox_as as import_with};

/// A file on the host that no container has: its text must never come back.
struct Sentinel {
    dir: tempfile::TempDir,
    text: String,
}

fn sentinel() -> Sentinel {
    let dir = tempfile::Builder::new()
        .prefix("berth-host-secret.")
        .tempdir_in("/tmp")
        .unwrap();
    let text = format!("host-only-{}", std::process::id());
    std::fs::write(dir.path().join("secret"), &text).unwrap();
    std::fs::write(
        dir.path().join("passwd"),
        "hostonly:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    Sentinel { dir, text }
}

/// `docker cp NAME:PATH -`: (exit code, the tar's bytes as text, stderr).
fn cp_out(d: &TestDaemon, name: &str, path: &str) -> (i32, String, String) {
    d.docker(&["cp", &format!("{name}:{path}"), "-"])
}

fn assert_no_escape(d: &TestDaemon, name: &str, s: &Sentinel) {
    let host_dir = s.dir.path().display().to_string();
    for path in [
        format!("/escape{host_dir}/secret"),
        format!("/escape/..{host_dir}/secret"),
        format!("/up{host_dir}/secret"),
        format!("/escape{host_dir}"),
    ] {
        let (code, out, err) = cp_out(d, name, &path);
        assert!(
            !out.contains(&s.text),
            "{name}: {path} returned the host's file"
        );
        assert_ne!(code, 0, "{name}: {path} exists only on the host: {out}");
        assert!(
            err.contains("Could not find the file"),
            "{name}: {path}: {err}"
        );
    }
    // The container's own file through its own link.
    let (code, out, err) = cp_out(d, name, "/etclink/passwd");
    assert_eq!(code, 0, "{name}: {err}");
    assert!(
        out.contains("root:x:0:0:root:/root:/bin/sh"),
        "{name}: {out}"
    );
    let (code, out, err) = cp_out(d, name, "/escape/etc/passwd");
    assert_eq!(code, 0, "{name}: {err}");
    assert!(out.contains("root:x:0:0:root"), "{name}: {out}");
    // The link itself, as dockerd answers the stat.
    let (code, body) = d
        .request("HEAD", &format!("/containers/{name}/archive?path=/escape"))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    // A whole folder holding a link to / archives the link, not the host.
    let (code, out, err) = cp_out(d, name, "/");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&s.text));
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn cp_out_and_archive_never_follow_a_containers_links_to_the_host() {
    let s = sentinel();
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    // Running: the links are made by the container itself.
    d.run_d(&["--name", "run1", "test/busybox:1", "sleep", "1000"]);
    for link in [
        ["/", "/escape"],
        ["/etc", "/etclink"],
        ["../../../..", "/up"],
    ] {
        let (code, _, err) = d.docker(&["exec", "run1", "busybox", "ln", "-s", link[0], link[1]]);
        assert_eq!(code, 0, "{err}");
    }
    assert_no_escape(&d, "run1", &s);
    // Stopped: the same links in its upper folder.
    let (code, _, err) = d.docker(&["stop", "-t", "0", "run1"]);
    assert_eq!(code, 0, "{err}");
    assert_no_escape(&d, "run1", &s);
    // Never started: the links come from the image.
    import_with(&d, "test/escape:1", |root| {
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etclink")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("up")).unwrap();
    });
    let (code, _, err) = d.docker(&["create", "--name", "new1", "test/escape:1", "true"]);
    assert_eq!(code, 0, "{err}");
    assert_no_escape(&d, "new1", &s);
    let (code, out, err) = d.docker(&["export", "new1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(&s.text));
    let (code, out, err) = d.docker(&["diff", "run1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("A /escape"), "{out}");
}

/// `/_ping` still answers (the request gives up after 10 s without an answer).
fn ping_stays_up(d: &TestDaemon, what: &str) {
    let r = d.request("GET", "/_ping");
    assert_eq!(r.map(|r| r.0), Some(200), "{what}: /_ping did not answer");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc, mknod"]
fn an_images_passwd_cannot_block_the_daemon_or_name_host_users() {
    let s = sentinel();
    let d = TestDaemon::new().start(&[]);
    // /etc/passwd a FIFO in the image itself.
    import_with(&d, "test/fifo:1", |root| {
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(
            &root.join("etc/passwd"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
    });
    // /etc/passwd a link to the image's own /dev/zero (a device node the image carries).
    import_with(&d, "test/zero:1", |root| {
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", root.join("etc/passwd")).unwrap();
        nix::sys::stat::mknod(
            &root.join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
    });
    // /etc a link to a host folder that has a user the image does not.
    let host_etc = s.dir.path().display().to_string();
    import_with(&d, "test/hostetc:1", |root| {
        std::fs::remove_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(&host_etc, root.join("etc")).unwrap();
    });
    for image in ["test/fifo:1", "test/zero:1"] {
        let (code, _, err) = d.docker(&["run", "--rm", "--network", "none", image, "true"]);
        assert_ne!(code, 0, "{image}: ran with an unreadable passwd");
        assert!(err.contains("not a regular file"), "{image}: {err}");
        ping_stays_up(&d, image);
    }
    let (code, _, err) = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "hostonly",
        "test/hostetc:1",
        "true",
    ]);
    assert_ne!(code, 0, "a host-only user resolved");
    assert!(err.contains("unable to find user hostonly"), "{err}");
    // A running container turning its passwd into a FIFO: exec -u still answers.
    import_busybox(&d);
    d.run_d(&["--name", "c1", "test/busybox:1", "sleep", "1000"]);
    let (code, _, err) = d.docker(&[
        "exec",
        "c1",
        "sh",
        "-c",
        "rm /etc/passwd && busybox mkfifo /etc/passwd",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.docker(&["exec", "-u", "root", "c1", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a regular file"), "{err}");
    ping_stays_up(&d, "exec");
}

#[test]
#[ignore = "needs root: a berthd with containerd and runc"]
fn a_folder_nested_thousands_deep_cannot_crash_the_daemon() {
    let d = TestDaemon::new().start(&[]);
    import_busybox(&d);
    d.run_d(&["--name", "deep", "test/busybox:1", "sleep", "1000"]);
    // 3000 levels, past PATH_MAX, one `mv` at a time (no path is ever long).
    let (code, _, err) = d.docker(&[
        "exec",
        "deep",
        "sh",
        "-c",
        "cd /tmp && busybox mkdir d && for i in $(busybox seq 3000); do \
         busybox mkdir n && busybox mv d n/d && busybox mv n d || exit 1; done",
    ]);
    assert_eq!(code, 0, "{err}");
    // Each walked the tree by recursion and overflowed berthd's stack (the daemon aborted).
    let (code, out, err) = d.docker(&["export", "deep"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.len() > 3000 * 512, "{}", out.len());
    ping_stays_up(&d, "export");
    let (code, out, err) = d.docker(&["diff", "deep"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().count() > 3000, "{out}");
    ping_stays_up(&d, "diff");
    let (code, _, err) = cp_out(&d, "deep", "/tmp");
    assert_eq!(code, 0, "{err}");
    ping_stays_up(&d, "cp");
    let (code, _, err) = d.docker(&["ps", "-a", "-s"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = d.docker(&["rm", "-f", "deep"]);
    assert_eq!(code, 0, "{err}");
    ping_stays_up(&d, "rm");
}

/// `docker build`: a context's links to host paths (absolute, `..` past the context's root,
/// a folder link), an image whose folder is a link to `/`, and an ADDed tar that plants a
/// link to a host folder then writes through it: nothing is read from the host and nothing
/// is written outside the image.
#[test]
#[ignore = "needs root: builds run containers through containerd and runc"]
fn a_build_context_or_an_added_tar_cannot_reach_the_host() {
    common::require_root_tier(
        "escapes",
        &["containerd", "runc", "docker", "busybox", "tar"],
    );
    let s = sentinel();
    let mut d = TestDaemon::new().start(&[]);
    import_with(&d, "test/busybox:1", |root| {
        std::os::unix::fs::symlink("busybox", root.join("bin/ls")).unwrap();
        // A folder of the image that is a link to its own root.
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
    });
    let host = s.dir.path();
    let ctx = d.dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("t")).unwrap();
    std::os::unix::fs::symlink(host.join("secret"), ctx.join("abs")).unwrap();
    std::os::unix::fs::symlink(host, ctx.join("dir")).unwrap();
    let depth = ctx.components().count();
    let up = "../".repeat(depth + 2);
    let rel = format!("{up}{}", host.join("secret").display());
    std::os::unix::fs::symlink(&rel, ctx.join("rel")).unwrap();
    // The tar: `hostdir -> <host folder>`, then `hostdir/planted`.
    std::os::unix::fs::symlink(host, ctx.join("t/hostdir")).unwrap();
    let tar = ctx.join("evil.tar");
    let ok = std::process::Command::new("tar")
        .args([
            "-C",
            ctx.join("t").to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            "hostdir",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::write(ctx.join("t/planted"), "planted").unwrap();
    let ok = std::process::Command::new("tar")
        .args([
            "-C",
            ctx.join("t").to_str().unwrap(),
            "--transform",
            "s,^planted,hostdir/planted,",
            "-rf",
            tar.to_str().unwrap(),
            "planted",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    std::fs::remove_dir_all(ctx.join("t")).unwrap();

    let build = |dockerfile: &str| {
        std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
        let out = std::process::Command::new("docker")
            .args([
                "build",
                "--network",
                "none",
                "-t",
                "acc/escape:1",
                ctx.to_str().unwrap(),
            ])
            .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for src in ["abs", "rel", "dir/secret"] {
        let (ok, out) = build(&format!("FROM test/busybox:1\nCOPY {src} /got\n"));
        assert!(!ok, "COPY {src} must find nothing: {out}");
        assert!(out.contains("file does not exist"), "{out}");
        assert!(!out.contains(&s.text), "{out}");
    }
    // Written through the image's own link: inside the image.
    std::fs::write(ctx.join("note"), "note").unwrap();
    let (ok, out) = build("FROM test/busybox:1\nCOPY note /up/tmp/\nRUN cat /tmp/note\n");
    assert!(ok, "{out}");
    assert!(out.contains("note"), "{out}");
    // The tar's link names a folder the image lacks: the write through it fails or stays in
    // the image; the host never sees it.
    let (_, out) = build("FROM test/busybox:1\nADD evil.tar /a/\n");
    assert!(
        !host.join("planted").exists(),
        "the added tar wrote on the host: {out}"
    );
    ping_stays_up(&d, "build");
    d.stop();
}
