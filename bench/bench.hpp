// SPDX-License-Identifier: GPL-2.0
//
// kvmpp-bench: path-length benchmarks of a /dev/kvm, run inside the emulated
// test machines (scripts/bench.sh). Each workload repeats one operation N times
// between two CLOCK_MONOTONIC reads; under QEMU -icount shift=0,sleep=off and
// Bochs clock: sync=none the guest clock counts emulated instructions, so the
// result, nanoseconds per operation, is a deterministic path length.
//
// A workload that cannot run on a hypervisor (an exit it does not implement, a
// missing host feature) reports "n/a (reason)" instead of a number; the others
// still run.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kvmpp::bench {

// Why a workload has no number on this hypervisor. Thrown from a workload's
// setup or loop; main() reports it and goes on with the next workload.
struct NotApplicable {
	std::string reason;
};

// Guest-clock nanoseconds (CLOCK_MONOTONIC).
std::uint64_t now_ns() noexcept;

// Brackets the timed part of a workload (time_per_call does it itself): when
// profiling, kernel tracing is on only in between.
void timed_section_begin() noexcept;
void timed_section_end() noexcept;

// Times `iterations` calls of `operation` (after `warmup` untimed ones):
// nanoseconds per call.
double time_per_call(unsigned iterations, const std::function<void()> &operation,
		     unsigned warmup = 2);

struct Workload {
	const char *name;        // e.g. "pio_exit"
	const char *description; // one line, for the table
	unsigned iterations;     // under QEMU; divided by --divisor under Bochs
	// Runs the workload with that many iterations; returns ns per iteration
	// (or throws NotApplicable).
	std::function<double(unsigned iterations)> run;
};

// The workloads, in the order of the table.
std::vector<Workload> exit_workloads();
std::vector<Workload> memory_workloads();
std::vector<Workload> ioctl_workloads();

// What an earlier workload of this run measured, by name (for workloads that
// subtract a known cost); nullopt if it did not run or had no number.
std::optional<double> result_of(const std::string &name);
void record_result(const std::string &name, double ns);

// Function-graph profile of one workload's kernel path (ftrace in the guest
// kernel's tracefs): runs `workload` with `iterations`, tracing every function
// called under ioctl() inside its timed section, and prints per operation the
// calls and the inclusive and self time of each function, largest self time
// first (the `top` largest). `depth` > 0 limits the call depth traced (below
// ioctl()), for workloads with too many calls for the trace buffer. Returns
// false, having said why, if it cannot.
bool profile(const Workload &workload, unsigned iterations, unsigned top, unsigned depth);

// Set by profile() while it runs: the file descriptor of tracing_on, or -1.
extern int g_tracing_on_fd;

} // namespace kvmpp::bench
