"""berth vs dockerd, side by side: each operation is measured alternately on both daemons,
and the report gives medians, min/max and berth/dockerd ratios. Writes bench/report.md."""

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

RUNS = int(os.environ.get("RUNS", "20"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BERTHD = os.path.join(ROOT, "target/release/berthd")
DOCKER = shutil.which("docker")
IMAGE = "bench/busybox:1"
# ONLY=build (or core): measure only those operations (daemon start and idle memory always).
ONLY = set(filter(None, os.environ.get("ONLY", "").split(",")))


def want(group):
    return not ONLY or group in ONLY


def sh(*args, env=None, check=True, capture=True):
    r = subprocess.run(args, env=env, capture_output=capture, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{args}: {r.stderr.strip()}")
    return r.stdout.strip()


class Daemon:
    def __init__(self, name, argv_fn, sock, pidfile, exec_root, data):
        self.name, self.sock, self.pidfile = name, sock, pidfile
        self.exec_root, self.data, self.argv_fn = exec_root, data, argv_fn
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
        self.proc = None
        self.log = open(os.path.join(os.path.dirname(sock), f"{name}.log"), "ab")

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv_fn(), stdout=self.log, stderr=self.log)
        while time.monotonic() - t0 < 60:
            if os.path.exists(self.sock):
                try:
                    out = subprocess.run(["curl", "-sf", "--unix-socket", self.sock, "http://x/_ping"],
                                         capture_output=True, text=True, timeout=2)
                    if out.stdout == "OK":
                        return time.monotonic() - t0
                except subprocess.TimeoutExpired:
                    pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def docker(self, *args, check=True):
        return sh(DOCKER, *args, env=self.env, check=check)

    def pids(self):
        """The daemon and the containerd it runs (found by exec-root on the command line)."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if self.exec_root in cmd and "containerd-shim" not in cmd:
                out.append(int(p))
        return out

    def memory(self):
        """(daemon RSS, daemon PSS, daemon+containerd RSS) in KiB."""
        def rollup(pid):
            rss = pss = 0
            try:
                for line in open(f"/proc/{pid}/smaps_rollup"):
                    if line.startswith("Rss:"):
                        rss = int(line.split()[1])
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
            except OSError:
                pass
            return rss, pss
        own_rss, own_pss = rollup(self.proc.pid)
        total = sum(rollup(p)[0] for p in set(self.pids() + [self.proc.pid]))
        return own_rss, own_pss, total


def cleanup(d):
    """What a stopped daemon left: processes naming its exec-root (shims, containers of
    the floor measurement), their mounts, its folders."""
    for pid in d.pids() + [int(p) for p in os.listdir("/proc") if p.isdigit() and
                           d.exec_root in open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace")]:
        for child in sh("pgrep", "-P", str(pid), check=False).split():
            try:
                os.kill(int(child), signal.SIGKILL)
            except OSError:
                pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    mounts = [l.split()[1] for l in open("/proc/mounts")]
    for m in sorted((m for m in mounts if m.startswith(d.exec_root) or m.startswith(d.data)), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)
    shutil.rmtree(d.exec_root, ignore_errors=True)


def timed(fn):
    t0 = time.monotonic()
    fn()
    return (time.monotonic() - t0) * 1000


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def make_rootfs(work):
    r = os.path.join(work, "rootfs")
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "sbin"]:
        os.makedirs(os.path.join(r, d), exist_ok=True)
    bb = shutil.which("busybox")
    shutil.copy(bb, os.path.join(r, "bin/busybox"))
    for a in sh(bb, "--list").split():
        if a != "busybox":
            os.symlink("busybox", os.path.join(r, "bin", a))
    open(os.path.join(r, "etc/passwd"), "w").write("root:x:0:0:root:/root:/bin/sh\n")
    tar = os.path.join(work, "rootfs.tar")
    sh("tar", "-C", r, "-cf", tar, ".")
    return tar


def main():
    if os.geteuid() != 0:
        sys.exit("bench: needs root")
    links = sh("ip", "-o", "link", "show").splitlines()
    if any(": lo:" not in l for l in links):
        sys.exit("bench: run it through bench/run, in a network namespace of its own (this one has more than lo)")
    work = tempfile.mkdtemp(prefix="bench.", dir="/tmp")
    tar = make_rootfs(work)
    port = 19400 + os.getpid() % 500
    daemons = []
    b = os.path.join(work, "berth")
    os.makedirs(b)
    daemons.append(Daemon(
        "berth",
        lambda: [BERTHD, "--data-root", f"{b}/data", "--exec-root", f"/run/bench-b-{os.getpid()}",
                 "-H", f"unix://{b}/d.sock", "--pidfile", f"{b}/p.pid", "--config-file", f"{b}/daemon.json",
                 "--metrics-addr", f"127.0.0.1:{port}"],
        f"{b}/d.sock", f"{b}/p.pid", f"/run/bench-b-{os.getpid()}", f"{b}/data"))
    open(f"{b}/daemon.json", "w").write('{"labels": ["gen=0"]}')
    dockerd = shutil.which("dockerd")
    if dockerd:
        k = os.path.join(work, "dockerd")
        os.makedirs(k)
        open(f"{k}/daemon.json", "w").write('{"labels": ["gen=0"]}')
        daemons.append(Daemon(
            "dockerd",
            lambda: [dockerd, "--data-root", f"{k}/data", "--exec-root", f"/run/bench-d-{os.getpid()}",
                     "-H", f"unix://{k}/d.sock", "--pidfile", f"{k}/p.pid", "--config-file", f"{k}/daemon.json"],
            f"{k}/d.sock", f"{k}/p.pid", f"/run/bench-d-{os.getpid()}", f"{k}/data"))
    results = {}

    def record(op, name, xs):
        results.setdefault(op, {})[name] = stats(xs)

    def alternate(op, fn, runs=RUNS, setup=None):
        samples = {d.name: [] for d in daemons}
        for _ in range(runs):
            for d in daemons:
                arg = setup(d) if setup else None
                samples[d.name].append(timed(lambda: fn(d, arg)))
        for n, xs in samples.items():
            record(op, n, xs)

    try:
        starts = {d.name: [] for d in daemons}
        for _ in range(5):
            for d in daemons:
                starts[d.name].append(d.start() * 1000)
                d.stop()
        for n, xs in starts.items():
            record("daemon start to first /_ping (ms)", n, xs)
        for d in daemons:
            d.start()
            d.docker("import", tar, IMAGE)
            d.docker("run", "--rm", "--network", "none", IMAGE, "true")  # warm up
        time.sleep(2)
        for d in daemons:
            rss, pss, total = d.memory()
            results.setdefault("idle RSS, daemon (KiB)", {})[d.name] = {"median": rss, "min": rss, "max": rss, "n": 1}
            results.setdefault("idle PSS, daemon (KiB)", {})[d.name] = {"median": pss, "min": pss, "max": pss, "n": 1}
            results.setdefault("idle RSS, daemon + containerd (KiB)", {})[d.name] = {"median": total, "min": total, "max": total, "n": 1}

        if want("build"):
            # The classic builder (DOCKER_BUILDKIT=0) on one context: 10 instructions after
            # FROM (ARG, ENV, WORKDIR, two COPYs, two RUNs, LABEL, EXPOSE, CMD).
            ctx = os.path.join(work, "buildctx")
            os.makedirs(os.path.join(ctx, "dir"), exist_ok=True)
            for i in range(20):
                open(os.path.join(ctx, "dir", f"f{i}.txt"), "w").write(f"file {i}\n" * 100)
            open(os.path.join(ctx, "hello.txt"), "w").write("hello\n")
            open(os.path.join(ctx, "Dockerfile"), "w").write(
                f"FROM {IMAGE}\nARG GREETING=hi\nENV APP=/app\nWORKDIR /app\nCOPY hello.txt ./\n"
                "COPY dir /app/dir/\nRUN echo \"$GREETING\" > /app/built\nRUN ls /app/dir > /app/list\n"
                "LABEL bench=yes\nEXPOSE 8080\nCMD [\"cat\", \"/app/built\"]\n")

            def build(d, nocache):
                sh(DOCKER, "build", "-q", *(["--no-cache"] if nocache else []), "-t", "bench/built:1", ctx,
                   env=dict(d.env, DOCKER_BUILDKIT="0"))
            for d in daemons:
                build(d, True)  # warm up: the base image's files in the page cache, the bridge
            alternate("build, 10 steps from a warm base image, --no-cache (ms)", lambda d, _: build(d, True),
                      runs=min(RUNS, 10))
            for d in daemons:
                build(d, False)
            alternate("build, the same 10 steps all from the cache (ms)", lambda d, _: build(d, False))
        if want("core"):
            alternate("run --rm true (ms)", lambda d, _: d.docker("run", "--rm", "--network", "none", IMAGE, "true"))
            alternate("run -d (ms)", lambda d, _: d.docker("run", "-d", "--network", "none", IMAGE, "sleep", "600"))
            for d in daemons:
                ids = d.docker("ps", "-q").split()
                if ids:
                    d.docker("rm", "-f", *ids)
                d.docker("run", "--rm", IMAGE, "true")  # warm up the bridge
            # Both daemons on their default bridge (dockerd: iptables and docker-proxy).
            alternate("run --rm true, default bridge (ms)", lambda d, _: d.docker("run", "--rm", IMAGE, "true"))
            # run -d on the bridge and with --network none, interleaved run by run so both see
            # the same load: networking's cost is the difference of their medians.
            paired = {d.name: ([], []) for d in daemons}
            for _ in range(RUNS):
                for d in daemons:
                    paired[d.name][0].append(timed(lambda: d.docker("run", "-d", IMAGE, "sleep", "600")))
                    paired[d.name][1].append(timed(lambda: d.docker("run", "-d", "--network", "none", IMAGE, "sleep", "600")))
            for d in daemons:
                bridged, none = paired[d.name]
                record("run -d, default bridge (ms)", d.name, bridged)
                cost = statistics.median(bridged) - statistics.median(none)
                results.setdefault("networking's cost in run -d: bridge minus none, interleaved (ms)", {})[d.name] = \
                    {"median": cost, "min": cost, "max": cost, "n": 1}
                ids = d.docker("ps", "-q").split()
                if ids:
                    d.docker("rm", "-f", *ids)
            # A published port's throughput: 200 MiB from busybox httpd in a container, through
            # -p 127.0.0.1:PORT:80, to curl here.
            for i, d in enumerate(daemons):
                hp = 19950 + i
                d.docker("run", "-d", "--name", "big", "-p", f"127.0.0.1:{hp}:80", IMAGE, "sh", "-c",
                         "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1M count=200 2>/dev/null && "
                         "exec httpd -f -p 80 -h /www")
                url = f"http://127.0.0.1:{hp}/big"
                for _ in range(200):
                    if subprocess.run(["curl", "-sf", "--max-time", "3", "-o", "/dev/null", "-r", "0-0", url]).returncode == 0:
                        break
                    time.sleep(0.1)
                d.big_url = url

            def throughput(d, _):
                sh("curl", "-sf", "--max-time", "120", "-o", "/dev/null", d.big_url)
            samples = {d.name: [] for d in daemons}
            for _ in range(10):
                for d in daemons:
                    ms = timed(lambda: throughput(d, None))
                    samples[d.name].append(200 / (ms / 1000))
            for n, xs in samples.items():
                record("published port on 127.0.0.1: 200 MiB (MiB/s, higher is better)", n, xs)
            for d in daemons:
                d.docker("rm", "-f", "big")
                d.docker("run", "-d", "--name", "ex", "--network", "none", IMAGE, "sleep", "600")
            alternate("exec true (ms)", lambda d, _: d.docker("exec", "ex", "true"))

            def fresh(d):
                return d.docker("run", "-d", "--init", "--network", "none", IMAGE, "sleep", "600")
            alternate("stop, with --init (ms)", lambda d, cid: d.docker("stop", cid), setup=fresh)

            def fifty(d, _):
                for _ in range(50):
                    d.docker("run", "-d", "--network", "none", IMAGE, "sleep", "600")
            alternate("50 sequential run -d (ms)", fifty, runs=3)
            for d in daemons:
                d.docker("rm", "-f", "ex")
            # RSS with 50 running containers: keep exactly 50.
            for d in daemons:
                ids = d.docker("ps", "-q").split()
                extra = ids[50:]
                if extra:
                    d.docker("rm", "-f", *extra)
                while len(d.docker("ps", "-q").split()) < 50:
                    d.docker("run", "-d", "--network", "none", IMAGE, "sleep", "600")
            time.sleep(2)
            for d in daemons:
                rss, pss, total = d.memory()
                results.setdefault("RSS with 50 running containers, daemon (KiB)", {})[d.name] = {"median": rss, "min": rss, "max": rss, "n": 1}
                results.setdefault("RSS with 50 running containers, daemon + containerd (KiB)", {})[d.name] = {"median": total, "min": total, "max": total, "n": 1}
            for d in daemons:
                ids = d.docker("ps", "-aq").split()
                for i in range(0, len(ids), 100):
                    d.docker("rm", "-f", *ids[i:i + 100])
                for i in range(500):
                    d.docker("create", "--network", "none", IMAGE, "true")
            alternate("ps -a with 500 containers (ms)", lambda d, _: d.docker("ps", "-a"))

            def reload(d, _):
                gen = int(time.monotonic() * 1000)
                open(os.path.join(os.path.dirname(d.sock), "daemon.json"), "w").write(json.dumps({"labels": [f"gen={gen}"]}))
                os.kill(d.proc.pid, signal.SIGHUP)
                want = f"gen={gen}"
                while want not in d.docker("info", "--format", "{{json .Labels}}"):
                    time.sleep(0.002)
            alternate("reload, SIGHUP to new config visible (ms)", reload)

            # containerd RPCs per operation, from berth's counter.
            berth = daemons[0]

            def rpcs():
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
                return sum(int(m.group(1)) for m in re.finditer(r'^berth_containerd_rpc_total\{[^}]*\} (\d+)$', text, re.M))
            berth.docker("run", "-d", "--name", "rpc", "--init", "--network", "none", IMAGE, "sleep", "600")
            for op, args in [("run --rm", ["run", "--rm", "--network", "none", IMAGE, "true"]),
                             ("exec", ["exec", "rpc", "true"]), ("stop", ["stop", "rpc"])]:
                before = rpcs()
                berth.docker(*args)
                time.sleep(0.5)
                results.setdefault("containerd RPCs per operation", {})[f"berth {op}"] = rpcs() - before
            # The floor: containerd itself, driven by ctr on berth's containerd, same rootfs.
            ctr = shutil.which("ctr")
            if ctr:
                sock = os.path.join(berth.exec_root, "containerd", "containerd.sock")
                rootfs = os.path.join(work, "rootfs")
                floor = []
                for i in range(RUNS):
                    floor.append(timed(lambda: sh(ctr, "--address", sock, "-n", "bench-ctr", "run", "--rm", "--null-io",
                                                  "--rootfs", rootfs, f"floor-{i}", "/bin/true")))
                results.setdefault("floor: ctr run --rm (ms)", {})["berth"] = stats(floor)
                sh(ctr, "--address", sock, "-n", "bench-ctr", "run", "-d", "--null-io", "--rootfs", rootfs, "floor-exec",
                   "/bin/sleep", "600")
                floor = [timed(lambda: sh(ctr, "--address", sock, "-n", "bench-ctr", "task", "exec",
                                          "--exec-id", f"e{i}", "floor-exec", "/bin/true")) for i in range(RUNS)]
                results.setdefault("floor: ctr task exec (ms)", {})["berth"] = stats(floor)
                sh(ctr, "--address", sock, "-n", "bench-ctr", "task", "kill", "-s", "KILL", "floor-exec", check=False)
                time.sleep(0.5)
                sh(ctr, "--address", sock, "-n", "bench-ctr", "task", "rm", "floor-exec", check=False)
                sh(ctr, "--address", sock, "-n", "bench-ctr", "container", "rm", "floor-exec", check=False)
        load = open("/proc/loadavg").read().split()[:3]
    finally:
        for d in daemons:
            d.stop()
            cleanup(d)
    write_report(results, load, [d.name for d in daemons])
    shutil.rmtree(work, ignore_errors=True)


def write_report(results, load, names):
    lines = ["# berth vs dockerd", "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on this machine "
             f"({os.cpu_count()} CPUs), each operation alternately on both daemons, {RUNS} runs "
             f"unless noted; load average at the end: {' '.join(load)}.", "",
             "| operation | berth median (min–max) | dockerd median (min–max) | berth/dockerd |",
             "| --- | --- | --- | --- |"]
    for op, by in results.items():
        if op == "containerd RPCs per operation":
            continue
        b = by.get("berth")
        k = by.get("dockerd")
        fmt = lambda s: f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})" if s else "—"
        ratio = f"{b['median'] / k['median']:.2f}" if b and k and k["median"] else "—"
        lines.append(f"| {op} | {fmt(b)} | {fmt(k)} | {ratio} |")
    lines += ["", "containerd RPCs per operation (berth's counter): " +
              ", ".join(f"{k} {v}" for k, v in results.get("containerd RPCs per operation", {}).items()) +
              ". dockerd 20.10 on this machine makes 18, 14 and 15 (measured for issue 4 with a counting "
              "proxy; this harness does not re-measure them).", "",
              "The floor rows are containerd alone (ctr on berth's containerd, same root file system), "
              "in berth's column: berth's overhead over containerd is its row minus the floor.", ""]
    out = os.path.join(ROOT, "bench", "report.md" if not ONLY else f"report-{'-'.join(sorted(ONLY))}.md")
    open(out, "w").write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
