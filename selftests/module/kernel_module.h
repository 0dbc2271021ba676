// SPDX-License-Identifier: GPL-2.0
//
// Loading and unloading kernel modules from a file, the way insmod/rmmod do,
// without modprobe (no dependency resolution: that is what is being tested).
#pragma once

#include <string>

namespace kvmpp::test {

struct KernelModule {
	std::string path; // the .ko file
	std::string name; // as the kernel names it: "kvm-amd.ko" -> "kvm_amd"

	static KernelModule from_path(const std::string &path);
};

// finit_module(2) on the file. Returns 0, or -1 with errno set by the kernel.
// Failing to open the file fails the test (so that ENOENT from the kernel,
// "unresolved symbol", cannot be confused with a missing file).
int load_module(const KernelModule &module);

// delete_module(2) with O_NONBLOCK (fail with EWOULDBLOCK rather than wait
// while the module is in use). Returns 0, or -1 with errno.
int unload_module(const KernelModule &module);

// Listed in /proc/modules (in any state).
bool module_is_loaded(const KernelModule &module);

} // namespace kvmpp::test
