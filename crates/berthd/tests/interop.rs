//! Tier 2, optional peer: images saved by berth load into dockerd and the reverse. Runs when
//! dockerd is installed (`apt-get install docker.io`), on private paths, with its own
//! containerd; skipped loudly otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestDaemon, wait_until};

struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    exec_root: String,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("dk-it.")
            .tempdir_in("/tmp")
            .unwrap();
        let exec_root = format!("/run/dk-{}", std::process::id());
        let sock = dir.path().join("d.sock");
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--data-root", dir.path().join("data").to_str().unwrap()])
            .args(["--exec-root", &exec_root])
            .args(["-H", &format!("unix://{}", sock.display())])
            .args(["--pidfile", dir.path().join("p.pid").to_str().unwrap()])
            .args(["--iptables=false", "--bridge=none"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let d = Dockerd {
            child,
            dir,
            exec_root,
        };
        wait_until("dockerd answering", Duration::from_secs(60), || {
            d.docker(&["version"]).0 == 0
        });
        d
    }

    fn docker(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new("docker")
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.path().join("d.sock").display()),
            )
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in common::processes_mentioning(&format!("{}/", self.exec_root)) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        common::unmount_under(&[std::path::Path::new(&self.exec_root), self.dir.path()]);
        let _ = std::fs::remove_dir_all(&self.exec_root);
    }
}

#[test]
#[ignore = "needs root: berthd and dockerd (apt-get install docker.io) side by side"]
fn images_move_between_berth_and_dockerd_with_the_same_id() {
    common::require_root_tier(
        "interop",
        &["containerd", "runc", "docker", "tar", "dockerd"],
    );
    let berth = TestDaemon::new().start(&[]);
    let dockerd = Dockerd::start();
    let root = berth.dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/hello"), "from berth\n").unwrap();
    let tar = berth.dir.path().join("rootfs.tar");
    assert!(
        Command::new("tar")
            .args([
                "-C",
                root.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                "."
            ])
            .status()
            .unwrap()
            .success()
    );

    // berth → dockerd
    let (code, id, err) = berth.docker(&[
        "import",
        "-c",
        "ENV A=1",
        tar.to_str().unwrap(),
        "inter/op:1",
    ]);
    assert_eq!(code, 0, "{err}");
    let saved = berth.dir.path().join("saved.tar");
    assert_eq!(
        berth
            .docker(&["save", "-o", saved.to_str().unwrap(), "inter/op:1"])
            .0,
        0
    );
    let (code, out, err) = dockerd.docker(&["load", "-i", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "dockerd load: {out} {err}");
    assert_eq!(
        dockerd
            .docker(&["image", "inspect", "-f", "{{.Id}}", "inter/op:1"])
            .1,
        id
    );

    // dockerd → berth
    let (code, id2, err) = dockerd.docker(&[
        "import",
        "-c",
        "ENV B=2",
        tar.to_str().unwrap(),
        "inter/back:2",
    ]);
    assert_eq!(code, 0, "{err}");
    let saved2 = berth.dir.path().join("saved2.tar");
    assert_eq!(
        dockerd
            .docker(&["save", "-o", saved2.to_str().unwrap(), "inter/back:2"])
            .0,
        0
    );
    let (code, _, err) = berth.docker(&["load", "-i", saved2.to_str().unwrap()]);
    assert_eq!(code, 0, "berth load: {err}");
    assert_eq!(
        berth
            .docker(&["image", "inspect", "-f", "{{.Id}}", "inter/back:2"])
            .1,
        id2
    );
    assert_eq!(
        berth
            .docker(&[
                "image",
                "inspect",
                "-f",
                "{{index .Config.Env 0}}",
                "inter/back:2"
            ])
            .1,
        "B=2"
    );
}
