// SPDX-License-Identifier: GPL-2.0
//
// Facts about the host CPUs the module tests check: SVM support, which CPUs
// are online, EFER as each CPU has it (through msr.ko's /dev/cpu/N/msr).
#pragma once

#include <cstdint>
#include <vector>

namespace kvmpp::test {

inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint64_t kEferSvme = 1ULL << 12; // SVM enable

// CPUID 0x80000001 ECX bit 2: the CPU implements SVM (AMD-V).
bool cpu_has_svm();

// The CPUs listed in /sys/devices/system/cpu/online.
std::vector<int> online_cpus();

// Reads an MSR on one CPU through /dev/cpu/N/msr; fails the test if it cannot.
uint64_t read_msr(int cpu, uint32_t msr);

// Writes 0 or 1 to /sys/devices/system/cpu/cpuN/online; returns 0 or -1/errno.
int set_cpu_online(int cpu, bool online);

} // namespace kvmpp::test
