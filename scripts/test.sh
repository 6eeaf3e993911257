#!/usr/bin/env bash
# The whole test suite, installing what it needs. README's test command.
#   scripts/test.sh            # everything
# As root it installs Debian's prometheus (promtool), prometheus-alertmanager,
# prometheus-blackbox-exporter, iproute2, nftables, chromium, systemd
# (systemd-analyze), libcap2-bin (setcap), binutils (objcopy), adduser
# (the package's user), etcd-server and etcd-client (the cluster tests'
# etcd and etcdctl) and protobuf-compiler (protoc, for the etcd client's
# build) and time (GNU time, for peak-memory checks) when missing,
# and makes tests that need them (or root) fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in promtool:prometheus prometheus-alertmanager:prometheus-alertmanager \
  prometheus-blackbox-exporter:prometheus-blackbox-exporter ip:iproute2 nft:nftables chromium:chromium \
  systemd-analyze:systemd setcap:libcap2-bin objcopy:binutils adduser:adduser \
  etcd:etcd-server etcdctl:etcd-client protoc:protobuf-compiler; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
# GNU time (measures a child's peak memory; `time` alone is bash's keyword).
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "not root: tests needing ${need[*]} will be skipped"
  fi
fi
if [ "$(id -u)" = 0 ]; then
  export GWANJE_REQUIRE_TOOLS=1 GWANJE_REQUIRE_NETNS=1
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The Debian package (a release build), which the package test installs;
# if it cannot be built, that test fails and every other test still runs.
rm -f target/debian/*.deb
bash scripts/package.sh || echo "scripts/package.sh failed: the package test will fail"
cargo test --workspace --locked --no-fail-fast
