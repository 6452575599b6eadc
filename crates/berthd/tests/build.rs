//! Tier 2: `docker build` (the classic builder, DOCKER_BUILDKIT=0) through a real berthd,
//! containerd and runc: the step cache (reused, keyed on sources and build args, kept over a
//! restart, dropped by `builder prune`), `.dockerignore` (the CLI's and the daemon's own), and
//! failures (the step, the exit code, nothing left behind). RUN steps use `--network none`
//! unless a test is about the network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TestDaemon, import_busybox_as};

const TOOLS: &[&str] = &["containerd", "runc", "docker", "busybox", "tar"];
const IMG: &str = "test/busybox:1";

fn daemon() -> TestDaemon {
    let d = TestDaemon::new().start(&[]);
    import_busybox_as(&d, IMG, |root| {
        for applet in ["ls", "false", "test", "touch"] {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
    });
    d
}

/// A context folder under the daemon's temporary folder, with `files` (path, contents).
fn context(d: &TestDaemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.path().join(name);
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// `docker build` with the classic builder: (exit code, stdout, stderr).
fn build(d: &TestDaemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new("docker")
        .arg("build")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A letter per step after FROM: `c` taken from the cache, `n` built anew.
fn cache_map(output: &str) -> String {
    let mut out = String::new();
    let mut current: Option<char> = None;
    for line in output.lines() {
        if line.starts_with("Step ") {
            if let Some(c) = current.take() {
                out.push(c);
            }
            current = Some(if line.contains(" : FROM ") { 'f' } else { 'n' });
        } else if line == " ---> Using cache" {
            current = Some('c');
        }
    }
    out.extend(current);
    out.replace('f', "")
}

fn image_id(d: &TestDaemon, name: &str) -> String {
    d.docker(&["image", "inspect", "-f", "{{.Id}}", name]).1
}

/// A raw `POST /build` with a tar body (what a client that does not filter sends):
/// (status, body).
fn post_build(socket: &Path, query: &str, dir: &Path) -> (u16, String) {
    let tar = Command::new("tar")
        .args(["-C", dir.to_str().unwrap(), "-c", "."])
        .output()
        .unwrap()
        .stdout;
    common::api_with(
        socket,
        "POST",
        &format!("/build?{query}"),
        "application/x-tar",
        &tar,
    )
}

const DOCKERFILE: &str = "FROM test/busybox:1
ARG WHO=world
ENV GREETING=hello
WORKDIR /app
COPY a.txt ./
COPY dir /app/dir/
RUN echo \"$GREETING $WHO\" > /app/out
CMD [\"cat\", \"/app/out\"]
";

#[test]
#[ignore = "needs root: builds run containers through containerd and runc"]
fn the_step_cache_is_reused_keyed_and_kept_over_a_restart() {
    common::require_root_tier("build cache", TOOLS);
    let mut d = daemon();
    let ctx = context(
        &d,
        "ctx",
        &[
            ("Dockerfile", DOCKERFILE),
            ("a.txt", "a"),
            ("dir/b.txt", "b"),
        ],
    );
    let ctx = ctx.to_str().unwrap();
    let base = ["--network", "none", "-t", "acc/cache:1"];
    let (code, out, err) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(cache_map(&out), "nnnnnnn", "{out}");
    let first = image_id(&d, "acc/cache:1");
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "acc/cache:1"])
            .1,
        "hello world"
    );

    let (_, out, _) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(cache_map(&out), "ccccccc", "{out}");
    assert_eq!(
        image_id(&d, "acc/cache:1"),
        first,
        "the same steps, the same image"
    );

    // The cache is on disk: a restarted daemon takes every step from it.
    d.stop();
    let mut d = d.start(&[]);
    let (_, out, _) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(cache_map(&out), "ccccccc", "after a restart: {out}");
    assert_eq!(image_id(&d, "acc/cache:1"), first);

    // A build arg the RUN sees is part of its key; the steps before it are not affected.
    let (_, out, _) = build(&d, &[&base[..], &["--build-arg", "WHO=you", ctx]].concat());
    assert_eq!(cache_map(&out), "cccccnn", "{out}");
    assert_eq!(
        d.docker(&["run", "--rm", "--network", "none", "acc/cache:1"])
            .1,
        "hello you"
    );

    // A changed file under a copied folder rebuilds from that COPY on.
    std::fs::write(Path::new(ctx).join("dir/b.txt"), "changed").unwrap();
    let (_, out, _) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(cache_map(&out), "ccccnnn", "{out}");
    // Only contents count, not times.
    let f = std::fs::File::options()
        .write(true)
        .open(Path::new(ctx).join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    let (_, out, _) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(cache_map(&out), "ccccccc", "{out}");

    let (_, out, _) = build(&d, &[&base[..], &["--no-cache", ctx]].concat());
    assert_eq!(cache_map(&out), "nnnnnnn", "{out}");

    // The cache shows in `system df`; `builder prune -a` forgets it all.
    let (code, df, err) = d.docker(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    assert_eq!(code, 0, "{err}");
    let count: usize = df
        .lines()
        .find_map(|l| l.strip_prefix("Build Cache "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(count >= 7, "build cache records in system df: {df}");
    let (code, _, err) = d.docker(&["builder", "prune", "-af"]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = build(&d, &[&base[..], &[ctx]].concat());
    assert_eq!(cache_map(&out), "nnnnnnn", "after builder prune: {out}");
    d.stop();
}

#[test]
#[ignore = "needs root: builds run containers through containerd and runc"]
fn dockerignore_keeps_files_out_of_the_context_and_the_cache_key() {
    common::require_root_tier("build dockerignore", TOOLS);
    let mut d = daemon();
    let ctx = context(
        &d,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM test/busybox:1\nCOPY . /ctx/\nCMD [\"ls\", \"-AR\", \"/ctx\"]\n",
            ),
            (
                ".dockerignore",
                "# comments are ignored\n*.log\n!keep.log\nsecret/\n**/tmp\n",
            ),
            ("app.txt", "app"),
            ("debug.log", "noise"),
            ("keep.log", "kept"),
            ("secret/key", "k"),
            ("src/tmp/x", "x"),
            ("src/main.txt", "main"),
        ],
    );
    let listing = |d: &TestDaemon, tag: &str| {
        let (code, out, err) = d.docker(&["run", "--rm", "--network", "none", tag]);
        assert_eq!(code, 0, "{err}");
        out
    };
    let has = |out: &str, name: &str| out.split_whitespace().any(|w| w == name);
    let (code, out, err) = build(&d, &["-t", "acc/ign:1", ctx.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let ls = listing(&d, "acc/ign:1");
    for kept in [
        "app.txt",
        "keep.log",
        "main.txt",
        "Dockerfile",
        ".dockerignore",
    ] {
        assert!(has(&ls, kept), "{kept} kept: {ls}");
    }
    for gone in ["debug.log", "secret", "key", "tmp"] {
        assert!(!has(&ls, gone), "{gone} ignored: {ls}");
    }

    // An ignored file that changes keeps the cache.
    std::fs::write(ctx.join("debug.log"), "more noise").unwrap();
    let (_, out, _) = build(&d, &["-t", "acc/ign:1", ctx.to_str().unwrap()]);
    assert_eq!(cache_map(&out), "cc", "{out}");

    // A client that sends everything (no filtering of its own): the daemon applies the
    // context's .dockerignore itself, so the image is the same.
    let (code, body) = post_build(&d.socket, "t=acc/raw:1", &ctx);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Successfully tagged acc/raw:1"), "{body}");
    assert_eq!(image_id(&d, "acc/raw:1"), image_id(&d, "acc/ign:1"));
    d.stop();
}

#[test]
#[ignore = "needs root: builds run containers through containerd and runc"]
fn failures_name_the_step_and_leave_nothing_behind() {
    common::require_root_tier("build failures", TOOLS);
    let mut d = daemon();
    let ctx = context(
        &d,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM test/busybox:1\nRUN echo before > /before\nRUN echo out; exit 3\n",
            ),
            ("bad.Dockerfile", "FROM test/busybox:1\nFROBNICATE now\n"),
            (
                "missing.Dockerfile",
                "FROM test/busybox:1\nCOPY nosuch /x\n",
            ),
            (
                "stages.Dockerfile",
                "FROM test/busybox:1 AS broken\nRUN false\nFROM test/busybox:1 AS fine\nRUN echo fine > /fine\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    let containers_before = d.docker(&["ps", "-aq"]).1;

    let (code, out, err) = build(&d, &["--network", "none", "-t", "acc/fail:1", c]);
    assert_ne!(code, 0);
    assert!(out.contains("out\n"), "the RUN's output is shown: {out}");
    assert!(
        err.contains("The command '/bin/sh -c echo out; exit 3' returned a non-zero code: 3"),
        "{err}"
    );
    assert_eq!(d.docker(&["images", "-q", "acc/fail:1"]).1, "", "no tag");
    assert_eq!(
        d.docker(&["ps", "-aq"]).1,
        containers_before,
        "no container left"
    );
    // The stream's error carries the command's exit code.
    let (status, body) = post_build(&d.socket, "t=acc/fail:1&networkmode=none", &ctx);
    assert_eq!(status, 200);
    let last: serde_json::Value =
        serde_json::from_str(body.trim().lines().last().unwrap()).unwrap();
    assert_eq!(last["errorDetail"]["code"], 3, "{body}");
    // The steps that worked stay cached.
    let (_, out, _) = build(&d, &["--network", "none", "-t", "acc/fail:1", c]);
    assert!(
        out.contains("Step 2/3 : RUN echo before > /before\n ---> Using cache"),
        "{out}"
    );

    // A Dockerfile that does not parse is refused before any step (a 400).
    let (status, body) = post_build(&d.socket, "dockerfile=bad.Dockerfile", &ctx);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown instruction: FROBNICATE"), "{body}");

    let (code, _, err) = build(&d, &["-f", &format!("{c}/missing.Dockerfile"), c]);
    assert_ne!(code, 0);
    assert!(
        err.contains("COPY failed: file not found in build context or excluded by .dockerignore: stat nosuch: file does not exist"),
        "{err}"
    );

    // Unused stages are skipped: the broken one is never built for --target fine.
    let (code, out, err) = build(
        &d,
        &[
            "--network",
            "none",
            "-f",
            &format!("{c}/stages.Dockerfile"),
            "--target",
            "fine",
            "-t",
            "acc/fine:1",
            c,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(!out.contains("RUN false"), "{out}");
    let (code, _, err) = build(
        &d,
        &[
            "-f",
            &format!("{c}/stages.Dockerfile"),
            "--target",
            "nosuch",
            c,
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("failed to reach build target nosuch in Dockerfile"),
        "{err}"
    );
    d.stop();
}

#[test]
#[ignore = "needs root: builds run containers through containerd and runc"]
fn instructions_beyond_the_common_ones() {
    common::require_root_tier("build instructions", TOOLS);
    let mut d = daemon();
    let tgz = {
        let src = d.dir.path().join("arc");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/inner.txt"), "inner").unwrap();
        let out = d.dir.path().join("arc.tgz");
        let ok = Command::new("tar")
            .args([
                "-C",
                src.to_str().unwrap(),
                "-czf",
                out.to_str().unwrap(),
                "sub",
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::fs::read(out).unwrap()
    };
    let dockerfile = r#"FROM test/busybox:1
RUN <<EOF
echo one > /one
EOF
COPY <<FILE /etc/made.conf
made
FILE
COPY --chown=1234:2345 --chmod=0640 a.txt /owned
ADD arc.tgz /arc/
ONBUILD RUN echo triggered > /triggered
CMD ["sh", "-c", "cat /one /etc/made.conf /arc/sub/inner.txt; echo; stat -c '%u:%g %a' /owned"]
"#;
    let ctx = context(
        &d,
        "ctx",
        &[
            ("Dockerfile", dockerfile),
            ("a.txt", "a"),
            (
                "child.Dockerfile",
                "FROM acc/parent:1\nRUN cat /triggered\n",
            ),
        ],
    );
    std::fs::write(ctx.join("arc.tgz"), tgz).unwrap();
    let c = ctx.to_str().unwrap();
    let (code, out, err) = build(
        &d,
        &[
            "--network",
            "none",
            "--label",
            "from=cli",
            "-t",
            "acc/parent:1",
            c,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, run, err) = d.docker(&["run", "--rm", "--network", "none", "acc/parent:1"]);
    assert_eq!(run, "one\nmade\ninner\n1234:2345 640", "{err}");
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.Labels}} {{.Config.OnBuild}}",
            "acc/parent:1"
        ])
        .1,
        "map[from:cli] [RUN echo triggered > /triggered]"
    );
    // A child build runs the trigger first, and keeps no trigger of its own.
    let child = format!("{c}/child.Dockerfile");
    let (code, out, err) = build(
        &d,
        &[
            "--network",
            "none",
            "-q",
            "-f",
            &child,
            "-t",
            "acc/child:1",
            c,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        image_id(&d, "acc/child:1"),
        "-q prints the ID alone"
    );
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{.Config.OnBuild}}",
            "acc/child:1"
        ])
        .1,
        "[]"
    );
    d.stop();
}
