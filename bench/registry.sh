#!/usr/bin/env bash
# berth against dockerd, pulling and pushing the same image through the same local registry
# (Debian's docker-registry on 127.0.0.1): five gzip layers of 20 MiB of random data each.
# Each daemon runs on private paths; its store is emptied (rmi) before every pull, and every
# push goes to a fresh, empty registry (so every layer is compressed and uploaded). Runs
# alternate between the daemons. Writes bench/registry.md.
#
#   sudo BERTHD=target/release/berthd RUNS=5 bench/registry.sh
#
# Needs root, docker-registry, skopeo, dockerd (docker.io), the docker CLI, bc.
set -euo pipefail
cd "$(dirname "$0")/.."
# In a network namespace of its own (only lo, up): the daemons' bridges, veths and NAT rules
# never touch the machine's network.
if [ -z "${BERTH_BENCH_NETNS:-}" ]; then
  export BERTH_BENCH_NETNS=1
  exec unshare --net --fork --kill-child=TERM -- bash "$0" "$@"
fi
ip link set lo up
BERTHD=$(realpath "${BERTHD:-target/release/berthd}")
RUNS=${RUNS:-5}
PORT=${PORT:-25190}
OUT=${OUT:-bench/registry.md}
work=$(mktemp -d /tmp/regbench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "/run/rb-$$" "/run/rd-$$"
}
trap cleanup EXIT

wait_for() {  # wait_for WHAT CMD...: up to 60 s
  local what=$1; shift
  for _ in $(seq 1 600); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "registry bench: $what did not come up" >&2; exit 1
}

# The registry.
printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$work/reg" "$PORT" >"$work/reg.yml"
docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 & pids+=($!)
wait_for registry curl -sf "http://127.0.0.1:$PORT/v2/"
R=127.0.0.1:$PORT

# The image, as an OCI layout made with tar, gzip and sha256sum, copied by skopeo.
oci=$work/oci; mkdir -p "$oci/blobs/sha256"
blob() { local h; h=$(sha256sum <"$1" | cut -d' ' -f1); cp "$1" "$oci/blobs/sha256/$h"; echo "sha256:$h $(stat -c %s "$1")"; }
layers='' diffs=''
for i in 1 2 3 4 5; do
  mkdir -p "$work/l$i/data"
  head -c $((20 << 20)) /dev/urandom >"$work/l$i/data/part$i"
  tar --numeric-owner --owner=0 --group=0 -C "$work/l$i" -cf "$work/l$i.tar" .
  gzip -n -1 -c "$work/l$i.tar" >"$work/l$i.tar.gz"
  read -r d s <<<"$(blob "$work/l$i.tar.gz")"
  layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}"
  diffs="$diffs${diffs:+,}\"sha256:$(sha256sum <"$work/l$i.tar" | cut -d' ' -f1)\""
done
arch=$(case "$(uname -m)" in x86_64) echo amd64;; aarch64) echo arm64;; *) uname -m;; esac)
printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%s]}}' "$arch" "$diffs" >"$work/config.json"
read -r cd cs <<<"$(blob "$work/config.json")"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
  "$cd" "$cs" "$layers" >"$work/manifest.json"
read -r md ms <<<"$(blob "$work/manifest.json")"
printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
  "$md" "$ms" >"$oci/index.json"
unshare --mount -- sh -c 'mount -t tmpfs bench /var/lib && exec skopeo "$@"' skopeo --insecure-policy \
  copy --quiet --format v2s2 --dest-tls-verify=false "oci:$oci:bench" "docker://$R/bench/img:1"
rm -rf "$work"/l?

# The daemons.
"$BERTHD" --data-root "$work/b" --exec-root "/run/rb-$$" -H "unix://$work/b.sock" --pidfile "$work/b.pid" \
  --containerd-namespace "regbench-$$" --cgroup-parent "/regbench-$$" >"$work/b.log" 2>&1 & pids+=($!)
bpid=$!
dockerd --data-root "$work/d" --exec-root "/run/rd-$$" -H "unix://$work/d.sock" --pidfile "$work/d.pid" \
  --iptables=false --bridge=none >"$work/d.log" 2>&1 & pids+=($!)
B() { DOCKER_HOST="unix://$work/b.sock" docker "$@"; }
D() { DOCKER_HOST="unix://$work/d.sock" docker "$@"; }
wait_for berthd B version
wait_for dockerd D version

secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); printf '%.3f\n' "$(echo "$e - $s" | bc)"; }
median() { sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
ratio() { printf '%.2f' "$(echo "scale=4; $1 / $2" | bc)"; }

: >"$work/pull.b"; : >"$work/pull.d"; : >"$work/push.b"; : >"$work/push.d"; : >"$work/rss"
for i in $(seq 1 "$RUNS"); do
  for who in B D; do
    $who rmi -f "$R/bench/img:1" >/dev/null 2>&1 || true
    [ "$who" = B ] && echo 5 >"/proc/$bpid/clear_refs"
    secs "$who" pull "$R/bench/img:1" >>"$work/pull.$(echo $who | tr BD bd)"
    [ "$who" = B ] && awk '/VmHWM/ {print $2}' "/proc/$bpid/status" >>"$work/rss"
    # Push to a registry of its own, empty: every layer is compressed and uploaded (no
    # HEAD hit, no cross-repository mount).
    p=$((PORT + 1))
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
      "$work/push-reg" "$p" >"$work/push.yml"
    docker-registry serve "$work/push.yml" >>"$work/push-reg.log" 2>&1 & preg=$!
    wait_for "push registry" curl -sf "http://127.0.0.1:$p/v2/"
    $who tag "$R/bench/img:1" "127.0.0.1:$p/push/img:1"
    secs "$who" push "127.0.0.1:$p/push/img:1" >>"$work/push.$(echo $who | tr BD bd)"
    $who rmi "127.0.0.1:$p/push/img:1" >/dev/null
    kill -TERM "$preg"; wait "$preg" 2>/dev/null || true
    rm -rf "$work/push-reg"
  done
done

pb=$(median <"$work/pull.b"); pd=$(median <"$work/pull.d")
ub=$(median <"$work/push.b"); ud=$(median <"$work/push.d")
rss=$(sort -n "$work/rss" | tail -1)
{
  echo "# Registry: berth against dockerd"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores, $RUNS runs each, alternating; $(dockerd --version);"
  echo "a 5-layer image of 5 x 20 MiB random data (gzip -1) from docker-registry on 127.0.0.1."
  echo "Pull: store emptied before each; push: to a fresh, empty registry each time (everything uploaded)."
  echo
  echo "| | berth median (s) | dockerd median (s) | ratio |"
  echo "| --- | --- | --- | --- |"
  echo "| pull | $pb | $pd | $(ratio "$pb" "$pd") |"
  echo "| push | $ub | $ud | $(ratio "$ub" "$ud") |"
  echo
  echo "berthd peak RSS during a pull (reset before each): $((rss / 1024)) MiB at most."
  echo
  echo "Runs (s): berth pull $(tr '\n' ' ' <"$work/pull.b"); dockerd pull $(tr '\n' ' ' <"$work/pull.d");"
  echo "berth push $(tr '\n' ' ' <"$work/push.b"); dockerd push $(tr '\n' ' ' <"$work/push.d")."
} >"$OUT"
cat "$OUT"
