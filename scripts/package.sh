#!/usr/bin/env bash
# Builds the Debian package: target/debian/gwanje_<version>_<arch>.deb, with
# a stripped binary (its debug symbols split into gwanje_<version>_<arch>.debug
# beside it, linked by .gnu_debuglink), the hardened systemd unit, a
# loopback-only configuration that moves nothing (enabled), the production
# example (not enabled), and maintainer scripts that create the gwanje user,
# /var/lib/gwanje and an admin token.
#   scripts/package.sh                 # release build, then the package
#   scripts/package.sh --binary PATH   # package an already built binary
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
if [ "${1:-}" = "--binary" ]; then
  binary="${2:?--binary needs the path of a built gwanje}"
else
  cargo build --release --locked --quiet --bin gwanje
  binary=target/release/gwanje
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The host's architecture: the package holds a binary built here.
arch=$(dpkg --print-architecture)
out=target/debian
root="$out/root"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/usr/bin" "$root/usr/lib/systemd/system" \
  "$root/etc/gwanje/probes/local" "$root/etc/gwanje/production" \
  "$root/usr/share/doc/gwanje/examples"

# The binary, stripped; its symbols in a file of their own.
debug="$out/gwanje_${version}_${arch}.debug"
objcopy --only-keep-debug "$binary" "$debug"
objcopy --strip-all --add-gnu-debuglink="$debug" "$binary" "$root/usr/bin/gwanje"
chmod 0755 "$root/usr/bin/gwanje"

# The unit, pointing at the packaged binary.
# Its header says how to install it by hand: the package did.
unit="$root/usr/lib/systemd/system/gwanje.service"
{
  echo "# gwanje as a systemd service with least privilege, installed by the Debian package."
  sed -e '1,/^\[Unit\]/{/^\[Unit\]/!d}' -e 's|/usr/local/bin/gwanje|/usr/bin/gwanje|g' deploy/systemd/gwanje.service
} >"$unit"
chmod 0644 "$unit"

# Configuration: the loopback example enabled, the production one beside it.
install -m 0644 deploy/debian/gwanje.yaml "$root/etc/gwanje/gwanje.yaml"
install -m 0644 probes/local/*.yaml "$root/etc/gwanje/probes/local/"
install -m 0644 config/gwanje.yaml "$root/etc/gwanje/production/gwanje.yaml"
install -m 0644 probes/*.yaml "$root/etc/gwanje/probes/"
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"

# Documentation, and the drop-in that grants CAP_NET_ADMIN where gwanje moves routes.
install -m 0644 README.md docs/*.md "$root/usr/share/doc/gwanje/"
install -m 0644 deploy/systemd/gwanje.service.d/routing.conf "$root/usr/share/doc/gwanje/examples/"
printf 'gwanje\nLicense: Apache-2.0\n' >"$root/usr/share/doc/gwanje/copyright"
"$root/usr/bin/gwanje" --help >"$root/usr/share/doc/gwanje/gwanje-help.txt"

# Depends: the shared libraries the binary needs, at the versions it uses.
depends=""
for lib in $(readelf -d "$root/usr/bin/gwanje" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
  case "$lib" in
  libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | ld-linux*)
    glibc=$(objdump -T "$root/usr/bin/gwanje" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
    dep="libc6 (>= $glibc)" ;;
  libgcc_s.so.*) dep="libgcc-s1" ;;
  *) echo "scripts/package.sh: no Debian package known for $lib" >&2; exit 1 ;;
  esac
  case ", $depends, " in *", $dep, "*) ;; *) depends="${depends:+$depends, }$dep" ;; esac
done
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/@DEPENDS@/$depends/" deploy/debian/control >"$root/DEBIAN/control"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"

deb="$out/gwanje_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb ($(du -k "$deb" | cut -f1) KiB; binary $(du -k "$root/usr/bin/gwanje" | cut -f1) KiB stripped, symbols in $debug)"
