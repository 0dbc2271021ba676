// SPDX-License-Identifier: GPL-2.0
//
// The few raw /dev/kvm steps most tests start with. Each one fails the test
// with a diagnostic if the kernel refuses.
#pragma once

#include "test.h"
#include "unique_fd.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

namespace kvmpp::test {

inline constexpr const char *kKvmDevice = "/dev/kvm";

// Opens /dev/kvm (the "system fd").
inline UniqueFd open_kvm(int flags = O_RDWR)
{
	return UniqueFd(ASSERT_OK(open(kKvmDevice, flags | O_CLOEXEC)));
}

// KVM_CREATE_VM with the default machine type (0).
inline UniqueFd create_vm(const UniqueFd &kvm)
{
	return UniqueFd(ASSERT_OK(ioctl(kvm.get(), KVM_CREATE_VM, 0)));
}

inline long page_size()
{
	return sysconf(_SC_PAGESIZE);
}

} // namespace kvmpp::test
