#!/bin/sh
# Installs what ferry builds, runs and tests with: Debian 12 packages only.
# Idempotent; needs root (or sudo). Skips apt entirely when all are present.
set -eu
PKGS="build-essential pkg-config clang llvm libbpf-dev libxdp-dev libmnl-dev libsystemd-dev libinih-dev
      libjansson-dev libcriterion-dev iproute2 ethtool systemd python3 python3-prometheus-client
      debhelper dpkg-dev fakeroot lintian"
# make fuzz: clang's libFuzzer and sanitizer runtimes; make valgrind: memcheck
PKGS="$PKGS libclang-rt-14-dev valgrind"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
