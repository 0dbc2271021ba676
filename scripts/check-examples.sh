#!/usr/bin/env bash
# libkvmpp's consumer checks: install the library into build/install, build the
# minimal VMM from that installed tree with pkg-config and with CMake
# find_package(kvmpp), and run both on this machine's /dev/kvm where it can run
# a guest (otherwise the runs are skipped: the emulated machines run it instead,
# as the example.mini_vmm selftest). Writes "PASSED FAILED SKIPPED" to
# build/examples/result.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/examples
prefix=$top/build/install
rm -rf "$out" "$prefix"
mkdir -p "$out/pkgconfig" "$out/cmake"
passed=0 failed=0 skipped=0
result() { # name, status (0 pass, 1 fail, 2 skip)
	case $2 in
	0) passed=$((passed + 1)); echo "examples: ok - $1" ;;
	1) failed=$((failed + 1)); echo "examples: not ok - $1" ;;
	*) skipped=$((skipped + 1)); echo "examples: ok - $1 # SKIP no usable /dev/kvm here" ;;
	esac
}

# Runs a command with its output in a log file; prints 0 (it worked) or 1.
logged() { # log, command...
	local log=$1
	shift
	if "$@" >>"$log" 2>&1; then echo 0; else echo 1; fi
}

result "install libkvmpp into build/install" "$(logged "$out/install.log" \
	make --no-print-directory -C "$top/libkvmpp" OUT="$top/build/libkvmpp" install PREFIX="$prefix")"
result "build the minimal VMM with pkg-config" "$(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" \
	logged "$out/pkgconfig.log" make --no-print-directory -C "$top/libkvmpp/examples" OUT="$out/pkgconfig")"
cmake_ok=$(logged "$out/cmake.log" cmake -S "$top/libkvmpp/examples" -B "$out/cmake" \
	-DCMAKE_PREFIX_PATH="$prefix")
[ "$cmake_ok" = 1 ] || cmake_ok=$(logged "$out/cmake.log" cmake --build "$out/cmake")
result "build the minimal VMM with CMake find_package(kvmpp)" "$cmake_ok"

expected="Hello from a guest of the minimal VMM"
for how in pkgconfig cmake; do
	vmm=$out/$how/mini-vmm
	if [ ! -x "$vmm" ]; then
		result "run the $how build" 1
	elif [ ! -w /dev/kvm ]; then
		result "run the $how build" 2
	else
		got=$(LD_LIBRARY_PATH="$prefix/lib" timeout 20 "$vmm" "$out/pkgconfig/hello.bin" 2>&1)
		echo "examples: $how mini-vmm said: $got"
		result "run the $how build on this machine's /dev/kvm" \
			"$([ "$got" = "$expected" ] && echo 0 || echo 1)"
	fi
done

echo "$passed $failed $skipped" >"$out/result"
echo "== examples: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
