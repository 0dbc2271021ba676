// SPDX-License-Identifier: GPL-2.0
//
// kvmpp-bench [--divisor N] [--only NAME,...] [--profile NAME[:DEPTH] [--top N]]
//
// Runs the workloads against /dev/kvm and prints one line each, after the
// guest clock's rate (a loop of known length):
//     bench: calibration NS ns per 1000 instructions
//     bench: NAME NS ns/op N iterations
//     bench: NAME n/a (REASON)
// --divisor divides every workload's iteration count (Bochs runs ~100 times
// slower than QEMU: scripts/bench.sh passes 10 there). --profile runs one
// workload under the kernel's function-graph tracer instead (bench.hpp).
#include "bench.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <sstream>

namespace kvmpp::bench {
namespace {

std::map<std::string, double> g_results;

bool selected(const std::string &only, const char *name)
{
	if (only.empty())
		return true;
	std::stringstream list(only);
	std::string item;
	while (std::getline(list, item, ','))
		if (item == name)
			return true;
	return false;
}

void usage()
{
	std::fprintf(stderr,
		     "usage: kvmpp-bench [--divisor N] [--only NAME,...] [--profile NAME[:DEPTH] [--top N]] [--list]\n");
	std::exit(2);
}

// Guest-clock ns per 1000 instructions, from a userspace loop of known length
// (DEC + JNZ, 2 instructions per iteration): 1000 under QEMU -icount shift=0.
double calibrate()
{
	constexpr std::uint64_t kLoops = 5000000;
	std::uint64_t count = kLoops;
	const std::uint64_t start = now_ns();
	asm volatile("1: dec %0\n\tjnz 1b" : "+r"(count)::"cc");
	const std::uint64_t end = now_ns();
	return static_cast<double>(end - start) * 1000 / (2 * kLoops);
}

} // namespace

int g_tracing_on_fd = -1;

std::uint64_t now_ns() noexcept
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + ts.tv_nsec;
}

void timed_section_begin() noexcept
{
	if (g_tracing_on_fd >= 0 && write(g_tracing_on_fd, "1", 1) != 1)
		std::perror("tracing_on");
}

void timed_section_end() noexcept
{
	if (g_tracing_on_fd >= 0 && write(g_tracing_on_fd, "0", 1) != 1)
		std::perror("tracing_on");
}

double time_per_call(unsigned iterations, const std::function<void()> &operation, unsigned warmup)
{
	for (unsigned i = 0; i < warmup; i++)
		operation();
	timed_section_begin();
	const std::uint64_t start = now_ns();
	for (unsigned i = 0; i < iterations; i++)
		operation();
	const std::uint64_t end = now_ns();
	timed_section_end();
	return static_cast<double>(end - start) / iterations;
}

std::optional<double> result_of(const std::string &name)
{
	auto it = g_results.find(name);
	if (it == g_results.end())
		return std::nullopt;
	return it->second;
}

void record_result(const std::string &name, double ns)
{
	g_results[name] = ns;
}

} // namespace kvmpp::bench

int main(int argc, char **argv)
{
	using namespace kvmpp::bench;
	unsigned divisor = 1, top = 40;
	std::string only, profile_name;
	bool list = false;
	for (int i = 1; i < argc; i++) {
		const std::string arg = argv[i];
		if (arg == "--list") {
			list = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (arg == "--divisor")
			divisor = static_cast<unsigned>(std::max(1L, std::strtol(argv[++i], nullptr, 10)));
		else if (arg == "--only")
			only = argv[++i];
		else if (arg == "--profile")
			profile_name = argv[++i]; // NAME or NAME:DEPTH
		else if (arg == "--top")
			top = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 10));
		else
			usage();
	}
	std::setvbuf(stdout, nullptr, _IOLBF, 0);

	unsigned depth = 0; // max_graph_depth: 0 is unlimited
	if (const std::size_t colon = profile_name.find(':'); colon != std::string::npos) {
		depth = static_cast<unsigned>(std::strtoul(profile_name.c_str() + colon + 1, nullptr, 10));
		profile_name.resize(colon);
	}
	std::vector<Workload> workloads;
	for (auto group : {exit_workloads, memory_workloads, ioctl_workloads})
		for (Workload &w : group())
			workloads.push_back(std::move(w));
	if (list) {
		for (const Workload &w : workloads)
			std::printf("%-20s %s\n", w.name, w.description);
		return 0;
	}

	if (profile_name.empty())
		std::printf("bench: calibration %.1f ns per 1000 instructions\n", calibrate());
	for (const Workload &w : workloads) {
		const unsigned iterations = std::max(1u, w.iterations / divisor);
		if (!profile_name.empty()) {
			// A profile of one workload: the ones it subtracts from run first.
			if (profile_name == w.name)
				return profile(w, iterations, top, depth) ? 0 : 1;
			if (std::strcmp(w.name, "pio_exit") != 0)
				continue;
		} else if (!selected(only, w.name)) {
			continue;
		}
		try {
			const double ns = w.run(iterations);
			record_result(w.name, ns);
			if (profile_name.empty())
				std::printf("bench: %s %.1f ns/op %u iterations\n", w.name, ns, iterations);
		} catch (const NotApplicable &na) {
			timed_section_end();
			std::printf("bench: %s n/a (%s)\n", w.name, na.reason.c_str());
		} catch (const std::exception &e) {
			timed_section_end();
			std::printf("bench: %s n/a (%s)\n", w.name, e.what());
		}
	}
	if (!profile_name.empty()) {
		std::printf("bench: no workload named %s\n", profile_name.c_str());
		return 2;
	}
	return 0;
}
