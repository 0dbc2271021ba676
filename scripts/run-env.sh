#!/usr/bin/env bash
# Boots one test environment, runs the selftests in it and reports TAP.
#
# Usage: scripts/run-env.sh ENV [FILTER]
#   ENV     kvmpp-svm | reference-svm   (QEMU TCG, -cpu max, 2 CPUs: SVM + NPT)
#           kvmpp-vmx | reference-vmx   (Bochs corei7_skylake_x, 1 CPU: VMX + EPT)
#   FILTER  comma-separated globs on test ids (default: every test), e.g. 'system.*'
#   KVMPP_REPEAT=N  runs the selected tests N times over (rare failures)
#
# Expects `make build` to have run (modules, selftests, initramfs). Prints each test
# result as it arrives; writes "PASSED FAILED SKIPPED" to build/run/ENV/result.
# Fails on a failed test, a missing summary, a timeout or stall, and on any oops,
# BUG, WARNING, lockdep, KASAN or panic line in the guest's console log; then it
# prints the log's last lines.
#
# Benchmark mode (scripts/bench.sh), opt-in: KVMPP_BENCH=DIVISOR boots
# build/bench/initramfs.cpio.gz, whose /init runs kvmpp-bench (iterations divided
# by DIVISOR; KVMPP_BENCH_PROFILE=WORKLOAD profiles one instead) in place of the
# tests, on one CPU with QEMU's instruction-counting clock, in build/run/ENV-bench.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
env=${1:?usage: run-env.sh ENV [FILTER]}
filter=${2:-*}
case $env in
kvmpp-svm | reference-svm | kvmpp-vmx | reference-vmx) ;;
*) echo "run-env: unknown environment '$env'" >&2; exit 2 ;;
esac
modules=${env%-*}
arch=${env#*-}

eval "$("$top/scripts/guest-kernel.sh")"
bench=${KVMPP_BENCH:-}
initrd=$top/build/${bench:+bench/}initramfs.cpio.gz
[ -f "$initrd" ] || { echo "run-env: $initrd missing: run 'make build' first" >&2; exit 2; }

work=$top/build/run/$env${bench:+-bench}
# One run per environment at a time: a second one would wipe this one's logs.
mkdir -p "$top/build/run"
exec 9>"$work.lock"
if ! flock -n 9; then
	echo "== $env: waiting for another run of $env to finish"
	flock 9
fi
rm -rf "$work"
mkdir -p "$work"
log=$work/console.log
: >"$log"

cmdline="console=ttyS0 loglevel=7 printk.devkmsg=on panic=-1 oops=panic"
cmdline+=" kvmpptest_modules=$modules kvmpptest_filter=$filter kvmpptest_repeat=${KVMPP_REPEAT:-1}"
qemu_cpu=max qemu_cpus=2 qemu_bench=()
if [ -n "$bench" ]; then
	# One CPU, the guest clock counting instructions, and the same addresses
	# and "random" numbers every boot (no KASLR, no RDRAND/RDSEED, the RTC on
	# the guest clock): the same run then gives the same numbers.
	cmdline+=" kvmpptest_bench=$bench kvmpptest_bench_profile=${KVMPP_BENCH_PROFILE:-} nokaslr norandmaps"
	qemu_cpu=max,-rdrand,-rdseed qemu_cpus=1
	qemu_bench=(-icount shift=0,sleep=off -rtc base=2025-01-01T00:00:00,clock=vm)
fi

# Limits: the whole run, and how long the console may stay silent.
if [ "$arch" = svm ]; then
	limit=${KVMPP_RUN_LIMIT:-900} stall=${KVMPP_STALL_LIMIT:-120}
else
	limit=${KVMPP_RUN_LIMIT:-1500} stall=${KVMPP_STALL_LIMIT:-240}
fi

start_qemu() {
	# Single-threaded TCG: QEMU 7.2's multi-threaded TCG freezes the whole
	# machine every few runs while nested guests run (seen with both
	# hypervisors); the guest still has 2 CPUs.
	setsid qemu-system-x86_64 -machine q35 -cpu $qemu_cpu -m 1024 -smp $qemu_cpus -accel tcg,thread=single \
		"${qemu_bench[@]}" \
		-display none -monitor none -serial "file:$log" -no-reboot \
		-kernel "$VMLINUZ" -initrd "$initrd" \
		-append "$cmdline tsc=reliable" >"$work/emulator.out" 2>&1 &
	emulator=$!
}

start_bochs() {
	local iso=$work/iso
	mkdir -p "$iso/isolinux"
	cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
	cp "$VMLINUZ" "$iso/vmlinuz"
	cp "$initrd" "$iso/initrd.gz"
	cat >"$iso/isolinux/isolinux.cfg" <<-CFG
	DEFAULT linux
	PROMPT 0
	TIMEOUT 0
	LABEL linux
	  KERNEL /vmlinuz
	  APPEND initrd=/initrd.gz $cmdline
	CFG
	xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin \
		-c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table "$iso" \
		>"$work/xorriso.out" 2>&1
	cat >"$work/bochsrc" <<-RC
	cpu: model=corei7_skylake_x, count=1, ips=100000000
	memory: guest=1024, host=1024
	romimage: file=/usr/share/bochs/BIOS-bochs-latest
	vgaromimage: file=/usr/share/vgabios/vgabios.bin
	ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
	boot: cdrom
	com1: enabled=1, mode=file, dev=$log
	display_library: term
	speaker: enabled=0
	sound: waveoutdrv=dummy, waveout=none, waveindrv=dummy, midioutdrv=dummy
	clock: sync=none, time0=local
	log: $work/bochs.log
	RC
	printf 'c\nquit\n' >"$work/bochs.cmds"
	# Debian's Bochs has its debugger built in: feed it "continue", under a pty.
	# exec: $! must be the process group leader that stop_emulator kills.
	(cd "$work" && exec setsid script -qfc "bochs-bin -q -f bochsrc -rc bochs.cmds" /dev/null \
		</dev/null >"$work/emulator.out" 2>&1) &
	emulator=$!
}

stop_emulator() {
	kill -TERM -- "-$emulator" 2>/dev/null || true
	sleep 1
	kill -KILL -- "-$emulator" 2>/dev/null || true
	wait "$emulator" 2>/dev/null || true
}

echo "== $env: booting $([ "$arch" = svm ] && echo "QEMU (SVM)" || echo "Bochs (VMX)"), $modules modules, filter '$filter'"
start_$( [ "$arch" = svm ] && echo qemu || echo bochs )
trap stop_emulator EXIT

# Watch the console: print results as they come, stop on the end marker, a
# panic, a stall or the overall limit.
verdict=""
started=$SECONDS
quiet_since=$SECONDS
seen=0
while :; do
	sleep 1
	lines=$(wc -l <"$log")
	if [ "$lines" -gt "$seen" ]; then
		quiet_since=$SECONDS
		sed -n "$((seen + 1)),${lines}p" "$log" | tr -d '\r' |
			sed -n -e 's/.*tap: \(\(not \)\{0,1\}ok .*\)/'"$env"': \1/p' \
				-e 's/.*kvmpp-harness: \(.*\)/'"$env"': [\1]/p' \
				-e 's/.*bench: \(.*\)/'"$env"': \1/p'
		seen=$lines
	fi
	if grep -q "kvmpp-harness: done" "$log"; then
		# Let the guest power off by itself; Bochs may need the push.
		for _ in 1 2 3 4 5; do kill -0 "$emulator" 2>/dev/null || break; sleep 1; done
		break
	fi
	if grep -q "Kernel panic" "$log"; then verdict="kernel panic"; sleep 2; break; fi
	if ! kill -0 "$emulator" 2>/dev/null; then verdict="emulator exited early"; break; fi
	if [ $((SECONDS - quiet_since)) -ge "$stall" ]; then
		verdict="hang: no console output for ${stall}s"; break
	fi
	if [ $((SECONDS - started)) -ge "$limit" ]; then verdict="timeout after ${limit}s"; break; fi
done
stop_emulator
trap - EXIT
elapsed=$((SECONDS - started))

tr -d '\r' <"$log" | sed -n 's/.*tap: //p' >"$work/tap"
passed=$(grep -cE '^ok ' "$work/tap" | tr -d ' ' || true)
skipped=$(grep -cE '^ok .*# SKIP' "$work/tap" || true)
failed=$(grep -cE '^not ok ' "$work/tap" || true)
passed=$((passed - skipped))
summaries=$(grep -cE '^# [0-9]+ passed, [0-9]+ failed' "$work/tap" || true)

# What must never appear in the guest kernel's log.
# (WARN() prints "WARNING: CPU: n PID: ...", lockdep "WARNING: possible ... locking ...";
# boot-time notes such as "RETBleed: WARNING: ..." are not failures.)
bad='BUG:|WARNING: CPU:|WARNING: .*(lock|RCU)|Oops|general protection fault|Call Trace:|kernel BUG|KASAN|UBSAN|lockdep|possible (recursive|circular) locking|soft lockup|hard LOCKUP|rcu.*stall|Kernel panic|segfault at'
# Only what happens from /init on is ours: the emulated CPUs have boot-time quirks
# (Bochs' skylake model WARNs about its own XSAVE sizes) that are noted, not failed.
start_line=$(grep -an "kvmpp-harness: start" "$log" | head -n1 | cut -d: -f1)
if [ -n "$start_line" ]; then
	boot_notes=$(head -n "$((start_line - 1))" "$log" | grep -aEc "$bad" || true)
	[ "$boot_notes" -eq 0 ] ||
		echo "== $env: note: $boot_notes report line(s) during the emulated machine's boot, before kvmpp's tests; first: $(head -n "$((start_line - 1))" "$log" | grep -aEm1 "$bad" | tr -d '\r')"
	if [ -z "$verdict" ] && tail -n "+$start_line" "$log" | grep -aEq "$bad"; then
		verdict="kernel log reports: $(tail -n "+$start_line" "$log" | grep -aEm1 "$bad" | tr -d '\r')"
	fi
fi
if [ -z "$verdict" ] && ! grep -q "kvmpp-harness: done" "$log"; then verdict="no end marker"; fi
if [ -n "$bench" ]; then
	[ -n "$verdict" ] || { echo "== $env: benchmarks done in ${elapsed}s"; exit 0; }
	echo "== $env: FAILED ($verdict) after ${elapsed}s; last lines of $log:"
	tail -n 60 "$log" | tr -d '\r' | sed 's/^/   | /'
	exit 1
fi
if [ -z "$verdict" ] && [ "$summaries" -lt 2 ]; then
	verdict="missing summary: $summaries of 2 test programs reported one"
fi
if [ -z "$verdict" ] && [ $((passed + failed + skipped)) -eq 0 ]; then
	verdict="no test matches the filter '$filter'"
fi
if [ -z "$verdict" ] && [ "$failed" -gt 0 ]; then verdict="$failed test(s) failed"; fi

echo "$passed $failed $skipped" >"$work/result"
# For scripts/check.sh's digest at the end of the suite.
[ -z "$verdict" ] || echo "$verdict" >"$work/verdict"
if [ -n "$verdict" ]; then
	echo "== $env: FAILED ($verdict) after ${elapsed}s; last lines of $log:"
	tail -n 60 "$log" | tr -d '\r' | sed 's/^/   | /'
	# A broken run counts as at least one failure.
	[ "$failed" -gt 0 ] || echo "$passed 1 $skipped" >"$work/result"
	exit 1
fi
echo "== $env: $passed passed, $failed failed, $skipped skipped in ${elapsed}s"
