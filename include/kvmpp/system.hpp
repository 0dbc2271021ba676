// SPDX-License-Identifier: GPL-2.0
//
// System: the hypervisor device, /dev/kvm (the "system fd").
//
//     kvmpp::System kvm = kvmpp::System::open().value();
//     if (kvm.check_extension(KVM_CAP_USER_MEMORY).value_or(0) > 0) ...
//     kvmpp::Vm vm = kvm.create_vm().value();
//
// Thread safety: every method may be called from several threads at once
// (each is one ioctl; the object is not modified after open()). Moving or
// destroying a System while another thread uses it is a data race. VMs keep
// working after their System is destroyed.
#pragma once

#include "error.hpp"
#include "fd.hpp"
#include "vm.hpp"

#include <fcntl.h>
#include <linux/kvm.h>

#include <cstddef>
#include <vector>

namespace kvmpp {

class System {
public:
	static constexpr const char *kDefaultPath = "/dev/kvm";

	System() noexcept = default; // empty: not open
	explicit System(OwnedFd fd) noexcept : fd_(std::move(fd)) {}

	// open(path, flags | O_CLOEXEC).
	static Result<System> open(const char *path = kDefaultPath, int flags = O_RDWR) noexcept;

	int fd() const noexcept { return fd_.get(); }
	explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

	// KVM_GET_API_VERSION (12 for every KVM since 2.6.22).
	Result<int> api_version() const noexcept;
	// KVM_CHECK_EXTENSION: 0 if unsupported, else a capability-specific value.
	Result<int> check_extension(long capability) const noexcept;
	// KVM_GET_VCPU_MMAP_SIZE: bytes to mmap of a vCPU fd.
	Result<std::size_t> vcpu_mmap_size() const noexcept;
	// KVM_CREATE_VM(type), plus KVM_GET_VCPU_MMAP_SIZE for its vCPUs.
	Result<Vm> create_vm(unsigned long type = 0) const noexcept;
	// KVM_GET_SUPPORTED_CPUID: what KVM can expose to a guest (allocates).
	Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;

private:
	OwnedFd fd_;
};

} // namespace kvmpp
