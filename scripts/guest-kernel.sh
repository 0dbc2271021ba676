#!/usr/bin/env bash
# Unpacks Debian's cloud kernel (image, modules, headers) into build/guest-kernel
# without installing it on the host: apt-get download + dpkg-deb -x, then the headers'
# absolute symlinks are pointed into the unpacked tree. Prints the tree's root.
# Idempotent: an unpacked tree with a stamp is reused.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${GUEST_KERNEL_DIR:-$top/build/guest-kernel}

meta_image=linux-image-cloud-amd64
if [ -f "$out/.stamp" ]; then
	cat "$out/.stamp"
	exit 0
fi

# Which versioned packages the cloud meta-packages point at.
dep_of() { apt-cache depends "$1" 2>/dev/null | awk '/Depends:/ {print $2; exit}'; }
image=$(dep_of $meta_image)
if [ -z "$image" ]; then
	apt-get update -q >&2
	image=$(dep_of $meta_image)
fi
[ -n "$image" ] || { echo "guest-kernel: cannot resolve $meta_image" >&2; exit 1; }
kver=${image#linux-image-}
headers=linux-headers-$kver
common=$(apt-cache depends "$headers" | awk '/Depends: linux-headers-.*-common/ {print $2}')
kbuild=$(apt-cache depends "$headers" | awk '/Depends: linux-kbuild/ {print $2}')

echo "guest-kernel: unpacking $kver into $out" >&2
rm -rf "$out.tmp"
mkdir -p "$out.tmp/debs" "$out.tmp/root"
(cd "$out.tmp/debs" && apt-get download -q "$image" "$headers" "$common" "$kbuild" >&2)
for deb in "$out.tmp"/debs/*.deb; do
	dpkg-deb -x "$deb" "$out.tmp/root"
done
rm -rf "$out.tmp/debs"

# The headers package links with absolute paths (/usr/src/...-common, /usr/lib/linux-kbuild-*);
# rewrite every absolute symlink under usr/src and lib/modules to stay inside the tree.
root=$out.tmp/root
find "$root/usr/src" "$root/lib/modules" -type l | while read -r link; do
	target=$(readlink "$link")
	case "$target" in
	/*) ln -sfn "$out/root$target" "$link" ;;
	esac
done

# The flavour's Makefile includes the -common tree by absolute path, too.
for mk in "$root"/usr/src/linux-headers-*/Makefile; do
	sed -i "s|^include /usr/src/|include $out/root/usr/src/|" "$mk"
done

rm -rf "$out"
mv "$out.tmp" "$out"
# Paths inside the tree were written for $out, so it is only valid at that path.
{
	echo "KVER=$kver"
	echo "ROOT=$out/root"
	echo "VMLINUZ=$out/root/boot/vmlinuz-$kver"
	echo "KDIR=$out/root/usr/src/linux-headers-$kver"
	echo "MODDIR=$out/root/lib/modules/$kver"
} >"$out/.stamp"
cat "$out/.stamp"
