// SPDX-License-Identifier: GPL-2.0
//
// Where a workload's kernel path goes: ftrace's function-graph tracer in the
// guest kernel, limited to what ioctl() calls (set_graph_function) and to the
// workload's timed section (tracing_on), interrupts left out. Each line of the
// trace is a function entry, a leaf call with its duration, or a function's
// end with its duration; the durations are guest-clock ns, i.e. instructions
// under QEMU's icount, inflated by the tracer's own work on every call (so
// compare call counts and the shape, not absolute numbers, with the untraced
// bench results).
#include "bench.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace kvmpp::bench {
namespace {

const std::string kTracing = "/sys/kernel/tracing/";

bool write_file(const std::string &name, const std::string &value)
{
	const int fd = open((kTracing + name).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0) {
		std::printf("bench: profile: open %s: %s\n", name.c_str(), std::strerror(errno));
		return false;
	}
	const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
	if (!ok)
		std::printf("bench: profile: write '%s' to %s: %s\n", value.c_str(), name.c_str(),
			    std::strerror(errno));
	close(fd);
	return ok;
}

struct Stats {
	unsigned long calls = 0;
	double inclusive = 0; // ns, recursion counted once per level
	double self = 0;
};

struct Frame {
	std::string name;
	double children = 0;
};

// " 0)   1.234 us  " (CPU, duration) -> 1234 ns.
bool parse_duration(const std::string &field, double &ns)
{
	const std::size_t cpu_end = field.find(')');
	std::size_t i = field.find_first_of("0123456789", cpu_end == std::string::npos ? 0 : cpu_end + 1);
	if (i == std::string::npos)
		return false;
	char *end;
	const double value = std::strtod(field.c_str() + i, &end);
	const std::string unit(end);
	if (unit.find("us") != std::string::npos)
		ns = value * 1000;
	else if (unit.find("ms") != std::string::npos)
		ns = value * 1000000;
	else if (unit.find("ns") != std::string::npos)
		ns = value;
	else
		return false;
	return true;
}

} // namespace

bool profile(const Workload &workload, unsigned iterations, unsigned top, unsigned depth)
{
	mkdir("/sys/kernel/tracing", 0755);
	if (access((kTracing + "tracing_on").c_str(), F_OK) != 0 &&
	    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
		std::printf("bench: profile: mount tracefs: %s\n", std::strerror(errno));
		return false;
	}
	if (!write_file("tracing_on", "0") || !write_file("current_tracer", "nop") ||
	    !write_file("buffer_size_kb", "65536") || !write_file("set_graph_function", "__x64_sys_ioctl") ||
	    !write_file("current_tracer", "function_graph") || !write_file("options/funcgraph-irqs", "0") ||
	    !write_file("options/funcgraph-tail", "1") || !write_file("options/funcgraph-overhead", "0") ||
	    !write_file("options/funcgraph-proc", "0") ||
	    !write_file("max_graph_depth", std::to_string(depth)) || !write_file("trace", ""))
		return false;
	g_tracing_on_fd = open((kTracing + "tracing_on").c_str(), O_WRONLY | O_CLOEXEC);
	double ns = 0;
	try {
		ns = workload.run(iterations);
	} catch (const NotApplicable &na) {
		timed_section_end();
		std::printf("bench: profile: %s n/a (%s)\n", workload.name, na.reason.c_str());
	}
	close(g_tracing_on_fd);
	g_tracing_on_fd = -1;

	std::ifstream trace(kTracing + "trace");
	std::map<std::string, Stats> stats;
	std::vector<Frame> stack;
	std::string line;
	unsigned long lost = 0, lines = 0;
	double ioctl_total = 0;
	auto finish = [&](const std::string &name, double duration) {
		Stats &s = stats[name];
		s.calls++;
		s.self += duration;
		if (!stack.empty())
			stack.back().children += duration;
		else if (name == "__x64_sys_ioctl")
			ioctl_total += duration;
		s.inclusive += duration;
	};
	while (std::getline(trace, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		if (line.find("LOST") != std::string::npos)
			lost++;
		const std::size_t bar = line.find('|');
		if (bar == std::string::npos)
			continue;
		lines++;
		std::string text = line.substr(bar + 1);
		const std::size_t first = text.find_first_not_of(' ');
		if (first == std::string::npos)
			continue;
		text = text.substr(first);
		double duration = 0;
		const bool timed = parse_duration(line.substr(0, bar), duration);
		if (text.back() == '{') {
			stack.push_back({text.substr(0, text.find('('))});
		} else if (text.rfind("();") == text.size() - 3) {
			if (timed)
				finish(text.substr(0, text.size() - 3), duration);
		} else if (text[0] == '}') {
			if (stack.empty())
				continue; // the trace began inside a call
			Frame frame = stack.back();
			stack.pop_back();
			if (!timed)
				continue;
			Stats &s = stats[frame.name];
			s.self -= frame.children;
			finish(frame.name, duration);
		}
	}

	std::vector<std::pair<std::string, Stats>> sorted(stats.begin(), stats.end());
	std::sort(sorted.begin(), sorted.end(),
		  [](const auto &a, const auto &b) { return a.second.self > b.second.self; });
	unsigned long calls = 0;
	for (const auto &[name, s] : sorted)
		calls += s.calls;
	const double per = iterations;
	std::printf("bench: profile %s: %u iterations, untraced %.1f ns/op; traced: %.1f ns/op in "
		    "ioctl(), %.1f function calls/op (depth %u, %lu trace lines, %lu lost-event marks)\n",
		    workload.name, iterations, ns, ioctl_total / per, calls / per, depth, lines, lost);
	std::printf("bench: profile %-40s %10s %12s %12s\n", "function", "calls/op", "self ns/op",
		    "incl ns/op");
	for (std::size_t i = 0; i < sorted.size() && i < top; i++) {
		const auto &[name, s] = sorted[i];
		std::printf("bench: profile %-40s %10.2f %12.1f %12.1f\n", name.c_str(), s.calls / per,
			    s.self / per, s.inclusive / per);
	}
	write_file("current_tracer", "nop");
	return true;
}

} // namespace kvmpp::bench
