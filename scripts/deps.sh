#!/usr/bin/env bash
# Installs the Debian packages berth needs, when any is missing. Sourced by the other scripts.
#   runtime: containerd (with its runc shim), runc, tini (for --init), nftables (nft: berth's
#            NAT and published-port rules), iproute2 (ip, for the tests' namespaces)
#   build:   protobuf-compiler (protoc, for the containerd API), gcc
#   tests:   busybox-static (test root file systems), curl, docker.io (dockerd, side by side),
#            docker-registry, skopeo, apache2-utils (htpasswd), openssl (test certificates)
#            for the registry tests
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
