#!/usr/bin/env bash
# The full suite: CMocka unit tests, then the selftests in each environment given.
# Every environment runs even when an earlier one failed. Ends with one line
# "N passed, M failed" over all of them and exits non-zero when M > 0.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
passed=0 failed=0 skipped=0
broken=()

add_result() {
	local p f s
	read -r p f s <"$1"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

echo "== unit: CMocka tests of kernel logic, libkvmpp's tests"
rm -f "$top/build/unit/result" "$top/build/libkvmpp/result"
if ! make --no-print-directory -C "$top" unit; then broken+=(unit); fi
for r in "$top/build/unit/result" "$top/build/libkvmpp/result"; do
	if [ -f "$r" ]; then add_result "$r"; else failed=$((failed + 1)); fi
done

# The emulator's decoder under libFuzzer with ASan and UBSan, for a bounded
# time from a fixed seed (so that a failure reproduces): any crash, leak or
# sanitizer report fails it.
fuzz_seconds=${KVMPP_FUZZ_SECONDS:-30}
echo "== fuzz: the instruction emulator under libFuzzer (ASan, UBSan), ${fuzz_seconds} s"
if make --no-print-directory -C "$top/kernel/tests" fuzz OUT="$top/build/fuzz" \
	FUZZ_SECONDS="$fuzz_seconds" FUZZ_ARGS=-seed=1 >"$top/build/fuzz.log" 2>&1; then
	grep -E "^(stat::number_of_executed_runs|Done)" "$top/build/fuzz.log" | sed 's/^/fuzz: /'
	passed=$((passed + 1))
else
	tail -n 30 "$top/build/fuzz.log" | sed 's/^/fuzz: /'
	failed=$((failed + 1))
	broken+=(fuzz)
fi

echo "== examples: libkvmpp installed, the minimal VMM built with pkg-config and CMake"
if ! "$top/scripts/check-examples.sh"; then broken+=(examples); fi
if [ -f "$top/build/examples/result" ]; then add_result "$top/build/examples/result"; else failed=$((failed + 1)); fi

for env in "$@"; do
	if ! "$top/scripts/run-env.sh" "$env"; then broken+=("$env"); fi
	if [ -f "$top/build/run/$env/result" ]; then add_result "$top/build/run/$env/result"; else failed=$((failed + 1)); fi
done

[ ${#broken[@]} -eq 0 ] || echo "== failed: ${broken[*]}"
# Repeat what failed where the end of a long log shows it: each broken
# environment's verdict and failed tests, with their diagnostics.
for env in "${broken[@]}"; do
	w=$top/build/run/$env
	[ -f "$w/verdict" ] && echo "== $env: $(cat "$w/verdict")"
	[ -f "$w/tap" ] || continue
	# A test's diagnostics come before its "not ok" line.
	awk -v env="$env" '/^# /{diag[n++]=$0; next}
		/^not ok /{for (i = 0; i < n; i++) print "== " env ":   " diag[i]; print "== " env ": " $0}
		{n=0}' "$w/tap" | tail -n 40
done
[ "$skipped" -eq 0 ] || echo "== $skipped skipped (hardware a test needs is absent in that environment)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
