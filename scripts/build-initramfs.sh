#!/usr/bin/env bash
# Packs the test machine's initramfs: busybox, the /init script, kvmpp's modules,
# the reference modules from the guest kernel, and the static test programs.
# Usage: [BENCH_BIN=kvmpp-bench] build-initramfs.sh OUTPUT.cpio.gz
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$1
eval "$("$top/scripts/guest-kernel.sh")"
build=$top/build

stage=$(mktemp -d "$build/initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,modules/kvmpp,modules/reference}
cp /bin/busybox "$stage/bin/busybox"
cp "$top/scripts/guest/init" "$stage/init"
selftests=${SELFTESTS_DIR:-$build/selftests}
cp "$selftests/kvmpp-selftests" "$selftests/kvmpp-module-tests" "$selftests/mini-vmm" "$stage/bin/"
mkdir -p "$stage/share/kvmpp"
cp "$selftests/hello.bin" "$stage/share/kvmpp/"
# The benchmark initramfs (scripts/bench.sh) also holds kvmpp-bench.
[ -z "${BENCH_BIN:-}" ] || cp "$BENCH_BIN" "$stage/bin/kvmpp-bench"
cp "$top"/kernel/kvmpp.ko "$top"/kernel/kvmpp-amd.ko "$top"/kernel/kvmpp-intel.ko "$stage/modules/kvmpp/"

# Debian may ship modules compressed; busybox insmod wants them plain.
copy_module() {
	local src
	src=$(find "$MODDIR/kernel" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" | head -n1)
	[ -n "$src" ] || { echo "build-initramfs: $1 not in $MODDIR" >&2; exit 1; }
	case $src in
	*.xz) xz -dc "$src" >"$2/$1.ko" ;;
	*.zst) zstd -qdc "$src" >"$2/$1.ko" ;;
	*) cp "$src" "$2/$1.ko" ;;
	esac
}
for m in kvm kvm-amd kvm-intel irqbypass; do copy_module $m "$stage/modules/reference"; done
copy_module msr "$stage/modules"

(cd "$stage" && find . | cpio --quiet -o -H newc | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
