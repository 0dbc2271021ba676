// SPDX-License-Identifier: GPL-2.0
#include <kvmpp/abi.hpp>
#include <kvmpp/system.hpp>

#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <memory>

namespace kvmpp {
namespace {

// KVM_GET_SUPPORTED_CPUID fails with E2BIG if nent is too small; Linux 6.1
// allows at most KVM_MAX_CPUID_ENTRIES (256) entries.
constexpr std::size_t kMaxCpuidEntries = 256;

} // namespace

Result<System> System::open(const char *path, int flags) noexcept
{
	const int fd = ::open(path, flags | O_CLOEXEC);
	if (fd < 0)
		return make_error(Op::open_device, errno);
	return System(OwnedFd(fd));
}

Result<int> System::api_version() const noexcept
{
	const int version = ::ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
	if (version < 0)
		return make_error(Op::get_api_version, errno);
	return version;
}

Result<int> System::check_extension(long capability) const noexcept
{
	const int value = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
	if (value < 0)
		return make_error(Op::check_extension, errno);
	return value;
}

Result<std::size_t> System::vcpu_mmap_size() const noexcept
{
	const int size = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		return make_error(Op::get_vcpu_mmap_size, errno);
	return static_cast<std::size_t>(size);
}

Result<Vm> System::create_vm(unsigned long type) const noexcept
{
	Result<std::size_t> mapping_size = vcpu_mmap_size();
	if (!mapping_size)
		return mapping_size.error();
	const int fd = ::ioctl(fd_.get(), KVM_CREATE_VM, type);
	if (fd < 0)
		return make_error(Op::create_vm, errno);
	return Vm(OwnedFd(fd), *mapping_size);
}

Result<std::vector<kvm_cpuid_entry2>> System::supported_cpuid() const
{
	// The kernel's kvm_cpuid2 header (abi.hpp), then the entries.
	struct Argument {
		abi::Cpuid2Header header;
		kvm_cpuid_entry2 entries[kMaxCpuidEntries];
	};
	static_assert(offsetof(Argument, entries) == sizeof(abi::Cpuid2Header));
	auto argument = std::make_unique<Argument>(); // zeroed
	argument->header.nent = kMaxCpuidEntries;
	if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, argument.get()) < 0)
		return make_error(Op::get_supported_cpuid, errno);
	const std::size_t count = std::min<std::size_t>(argument->header.nent, kMaxCpuidEntries);
	return std::vector<kvm_cpuid_entry2>(argument->entries, argument->entries + count);
}

} // namespace kvmpp
