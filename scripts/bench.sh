#!/usr/bin/env bash
# Deterministic path-length benchmarks: the same workloads (kvmpp-bench) on
# kvmpp and on the reference modules, in the same emulated machine, and a table
# of guest-clock ns per operation with the ratio kvmpp / reference.
#
# Usage: scripts/bench.sh [ARCH...]     ARCH: svm (QEMU) and/or vmx (Bochs); default both
#   KVMPP_BENCH_REUSE=1   only print the table again from the last runs' logs
#
# Expects `make bench`'s build products (build/bench/initramfs.cpio.gz). Each
# environment boots as scripts/run-env.sh does, with KVMPP_BENCH set: one CPU,
# QEMU -icount shift=0,sleep=off (SVM) or Bochs clock: sync=none (VMX), where
# the guest clock counts emulated instructions, so numbers repeat exactly from
# run to run. Bochs is about 100 times slower: its iteration counts are divided
# by 10. The table goes to stdout and to build/bench/results.md; a ratio above
# 1.5 prints a warning line. Not a pass/fail test: it fails only when a machine
# does not finish.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/bench
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(svm vmx)
warn_ratio=1.5

divisor_of() { [ "$1" = svm ] && echo 1 || echo 10; }
log_of() { echo "$top/build/run/$1-bench/console.log"; }

status=0
if [ -z "${KVMPP_BENCH_REUSE:-}" ]; then
	for arch in "${archs[@]}"; do
		for hv in reference kvmpp; do
			KVMPP_BENCH=$(divisor_of "$arch") "$top/scripts/run-env.sh" "$hv-$arch" || status=1
		done
	done
fi

# "NAME VALUE" per workload from one environment's console log; VALUE is the
# ns/op or "n/a (reason)".
results_of() {
	local log
	log=$(log_of "$1")
	[ -f "$log" ] || return 0
	tr -d '\r' <"$log" | sed -n 's/.*bench: \([a-z0-9_]*\) \([0-9.]*\) ns\/op .*/\1 \2/p; s/.*bench: \([a-z0-9_]*\) \(n\/a .*\)/\1 \2/p'
}

emulator_of() {
	if [ "$1" = svm ]; then
		echo "QEMU $(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9.]*\).*/\1/p') TCG, -cpu max (SVM + NPT), 1 CPU, -icount shift=0,sleep=off, no RDRAND/RDSEED"
	else
		echo "Bochs $(dpkg-query -W -f '${Version}' bochs 2>/dev/null || echo 2.7) corei7_skylake_x (VMX + EPT), 1 CPU, ips=100000000, clock: sync=none; iterations / $(divisor_of vmx)"
	fi
}

{
	echo "Command: make bench ($(date -u +%Y-%m-%d), $(git -C "$top" log -1 --format='commit %h' 2>/dev/null || echo 'no git'))"
	echo "Guest kernel: $(eval "$("$top/scripts/guest-kernel.sh")"; echo "$KVER")"
	for arch in "${archs[@]}"; do
		echo
		echo "### ${arch^^}: $(emulator_of "$arch")"
		echo
		# The guest clock's rate, from a loop of known length.
		for hv in reference kvmpp; do
			log=$(log_of "$hv-$arch")
			[ -f "$log" ] || continue
			echo "Guest clock in $hv-$arch: $(tr -d '\r' <"$log" | sed -n 's/.*bench: calibration \(.*\)/\1/p' | head -n1)"
			echo
		done
		echo "| workload | reference ns/op | kvmpp ns/op | ratio kvmpp/reference |"
		echo "|---|---:|---:|---:|"
		declare -A ref=() mine=()
		order=()
		while read -r name value; do ref[$name]=$value; order+=("$name"); done < <(results_of "reference-$arch")
		while read -r name value; do
			mine[$name]=$value
			[ -n "${ref[$name]+x}" ] || order+=("$name")
		done < <(results_of "kvmpp-$arch")
		for name in "${order[@]}"; do
			r=${ref[$name]:-missing} k=${mine[$name]:-missing}
			ratio=-
			if [[ $r =~ ^[0-9.]+$ && $k =~ ^[0-9.]+$ ]]; then
				ratio=$(awk -v k="$k" -v r="$r" 'BEGIN { printf "%.2f", k / r }')
			fi
			echo "| $name | $r | $k | $ratio |"
		done
		for hv in reference kvmpp; do
			declare -n res=$([ $hv = reference ] && echo ref || echo mine)
			raw=${res[pio_exit_raw]:-} lib=${res[pio_exit_libkvmpp]:-}
			if [[ $raw =~ ^[0-9.]+$ && $lib =~ ^[0-9.]+$ ]]; then
				echo
				echo "libkvmpp on $hv-$arch: Vcpu::run() $lib ns, raw ioctl $raw ns per PIO exit: ratio $(awk -v a="$lib" -v b="$raw" 'BEGIN { printf "%.3f", a / b }')"
			fi
			unset -n res
		done
		unset ref mine
	done
} >"$out/results.md.tmp"
mv "$out/results.md.tmp" "$out/results.md"
cat "$out/results.md"
# The warnings, for the reader of the terminal (not in the table).
awk -F' *\\| *' -v limit="$warn_ratio" '
	/^### / { arch = $0; sub(/^### /, "", arch); sub(/:.*/, "", arch) }
	/^\| [a-z]/ && $5 ~ /^[0-9.]+$/ && $5 + 0 > limit {
		printf "warning: %s %s: kvmpp takes %s times the reference'"'"'s path length (above %s)\n", arch, $2, $5, limit
	}' "$out/results.md"
exit $status
