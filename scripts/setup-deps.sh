#!/usr/bin/env bash
# Installs what kvmpp's build and test platform needs, from Debian's packages only.
# Idempotent: packages already present are not touched, and apt-get update runs only
# when something is missing. Nothing is written into the host's /boot: the guest
# kernel is unpacked into the build tree by scripts/guest-kernel.sh.
set -euo pipefail

packages=(
	build-essential gcc g++ make cmake pkg-config bc flex bison libelf-dev
	clang libclang-rt-14-dev
	qemu-system-x86
	bochs bochs-term bochsbios vgabios
	busybox-static cpio xz-utils zstd kmod
	isolinux syslinux-common xorriso
	libnl-genl-3-dev libcmocka-dev
	util-linux
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "setup-deps: all ${#packages[@]} packages present"
	exit 0
fi

echo "setup-deps: installing ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
	echo "setup-deps: must run as root to install packages" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
