// SPDX-License-Identifier: GPL-2.0
#include "cpu.h"

#include "test.h"
#include "unique_fd.h"

#include <cpuid.h>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <unistd.h>

namespace kvmpp::test {

bool cpu_has_svm()
{
	unsigned int eax, ebx, ecx, edx;
	if (!__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx))
		return false;
	return ecx & (1u << 2);
}

std::vector<int> online_cpus()
{
	// A list of ranges: "0", "0-3", "0,2-3".
	std::ifstream file("/sys/devices/system/cpu/online");
	std::string list;
	std::getline(file, list);
	ASSERT_TRUE(!list.empty());
	std::vector<int> cpus;
	size_t pos = 0;
	while (pos < list.size()) {
		size_t comma = list.find(',', pos);
		std::string range = list.substr(pos, comma == std::string::npos ? std::string::npos
									  : comma - pos);
		int first = 0, last = 0;
		int fields = std::sscanf(range.c_str(), "%d-%d", &first, &last);
		ASSERT_GE(fields, 1);
		if (fields == 1)
			last = first;
		for (int cpu = first; cpu <= last; cpu++)
			cpus.push_back(cpu);
		pos = comma == std::string::npos ? list.size() : comma + 1;
	}
	ASSERT_TRUE(!cpus.empty());
	return cpus;
}

uint64_t read_msr(int cpu, uint32_t msr)
{
	const std::string path = "/dev/cpu/" + std::to_string(cpu) + "/msr";
	CONTEXT("reading MSR %#x through %s (is msr.ko loaded?)", msr, path.c_str());
	UniqueFd file(ASSERT_OK(open(path.c_str(), O_RDONLY | O_CLOEXEC)));
	uint64_t value = 0;
	ASSERT_EQ(ASSERT_OK(pread(file.get(), &value, sizeof(value), msr)),
		  static_cast<ssize_t>(sizeof(value)));
	return value;
}

int set_cpu_online(int cpu, bool online)
{
	const std::string path =
		"/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/online";
	UniqueFd file(open(path.c_str(), O_WRONLY | O_CLOEXEC));
	if (!file)
		return -1;
	const char value = online ? '1' : '0';
	return write(file.get(), &value, 1) == 1 ? 0 : -1;
}

} // namespace kvmpp::test
