//! Tier 2, optional peer: images saved by berth load into dockerd and the reverse. Runs when
//! dockerd is installed (`apt-get install docker.io`), on private paths, with its own
//! containerd; skipped loudly otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::process::Command;

use common::{Dockerd, TestDaemon};

#[test]
#[ignore = "needs root: berthd and dockerd (apt-get install docker.io) side by side"]
fn images_move_between_berth_and_dockerd_with_the_same_id() {
    common::require_root_tier(
        "interop",
        &["containerd", "runc", "docker", "tar", "dockerd"],
    );
    let berth = TestDaemon::new().start(&[]);
    let dockerd = Dockerd::start(&["--iptables=false", "--bridge=none"]);
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
