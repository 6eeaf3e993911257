#!/usr/bin/env bash
# The first thing to run: builds gwanje and plays `gwanje demo` on a
# simulated network (network namespaces on 198.18.0.0/15; nothing outside
# them is touched). Needs root for the namespaces: as root it installs
# iproute2, nftables and protobuf-compiler (the etcd client's build needs
# protoc) if missing; otherwise it runs the demo with sudo.
#   bash scripts/demo.sh [--interactive | --pace fast]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nft >/dev/null || need+=(nftables)
command -v protoc >/dev/null || need+=(protobuf-compiler)
if ((${#need[@]})); then
  if [ "$(id -u)" -eq 0 ]; then
    # A fresh machine has empty package lists: update them first.
    echo "installing ${need[*]} (Debian packages the simulated network needs)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "the demo needs ${need[*]}: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
cargo build --release --locked --quiet
if [ "$(id -u)" -eq 0 ]; then
  exec target/release/gwanje demo "$@"
fi
exec sudo target/release/gwanje demo "$@"
