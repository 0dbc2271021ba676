// SPDX-License-Identifier: GPL-2.0
#include <kvmpp/vm.hpp>

#include <sys/ioctl.h>

#include <cerrno>

namespace kvmpp {

Result<int> Vm::check_extension(long capability) const noexcept
{
	const int value = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
	if (value < 0)
		return make_error(Op::check_extension, errno);
	return value;
}

Result<Vcpu> Vm::create_vcpu(unsigned id) const noexcept
{
	const int fd = ::ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
	if (fd < 0)
		return make_error(Op::create_vcpu, errno);
	return Vcpu::adopt(OwnedFd(fd), id, vcpu_mapping_size_);
}

Result<void> Vm::set_user_memory_region(const kvm_userspace_memory_region &region) const noexcept
{
	if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return make_error(Op::set_user_memory_region, errno);
	return {};
}

Result<void> Vm::map_memory(std::uint32_t slot, std::uint64_t guest_phys,
			    const GuestMemory &memory, std::uint32_t flags) const noexcept
{
	const kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = guest_phys,
		.memory_size = memory.size(),
		.userspace_addr = reinterpret_cast<std::uint64_t>(memory.data()),
	};
	return set_user_memory_region(region);
}

Result<void> Vm::unmap_memory(std::uint32_t slot) const noexcept
{
	const kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = 0,
		.guest_phys_addr = 0,
		.memory_size = 0,
		.userspace_addr = 0,
	};
	return set_user_memory_region(region);
}

Result<void> Vm::register_coalesced_zone(const kvm_coalesced_mmio_zone &zone) const noexcept
{
	if (::ioctl(fd_.get(), KVM_REGISTER_COALESCED_MMIO, &zone) < 0)
		return make_error(Op::register_coalesced_mmio, errno);
	return {};
}

Result<void> Vm::unregister_coalesced_zone(const kvm_coalesced_mmio_zone &zone) const noexcept
{
	if (::ioctl(fd_.get(), KVM_UNREGISTER_COALESCED_MMIO, &zone) < 0)
		return make_error(Op::unregister_coalesced_mmio, errno);
	return {};
}

namespace {
kvm_coalesced_mmio_zone zone(std::uint64_t address, std::uint32_t size, bool pio)
{
	kvm_coalesced_mmio_zone z{};
	z.addr = address;
	z.size = size;
	z.pio = pio ? 1 : 0;
	return z;
}
} // namespace

Result<void> Vm::register_coalesced_mmio(std::uint64_t address, std::uint32_t size) const noexcept
{
	return register_coalesced_zone(zone(address, size, false));
}

Result<void> Vm::unregister_coalesced_mmio(std::uint64_t address, std::uint32_t size) const noexcept
{
	return unregister_coalesced_zone(zone(address, size, false));
}

Result<void> Vm::register_coalesced_pio(std::uint16_t port, std::uint32_t size) const noexcept
{
	return register_coalesced_zone(zone(port, size, true));
}

Result<void> Vm::unregister_coalesced_pio(std::uint16_t port, std::uint32_t size) const noexcept
{
	return unregister_coalesced_zone(zone(port, size, true));
}

} // namespace kvmpp
