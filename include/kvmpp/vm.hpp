// SPDX-License-Identifier: GPL-2.0
//
// Vm: one virtual machine (a VM fd from KVM_CREATE_VM). Created by
// System::create_vm(); creates vCPUs and maps guest memory.
//
//     kvmpp::Vm vm = system.create_vm().value();
//     kvmpp::GuestMemory ram = kvmpp::GuestMemory::create(1 << 20).value();
//     vm.map_memory(0, 0x0, ram).value();          // slot 0 at guest-physical 0
//     kvmpp::Vcpu vcpu = vm.create_vcpu(0).value();
//
// Thread safety: every method is safe to call from several threads at once
// (each is one ioctl, and KVM serializes what needs it; the object itself is
// not modified after creation). Moving or destroying a Vm while another thread
// uses it is a data race. vCPUs and memory mappings hold their own references:
// the VM's kernel object lives until the last of its fds is closed.
#pragma once

#include "error.hpp"
#include "fd.hpp"
#include "memory.hpp"
#include "vcpu.hpp"

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

namespace kvmpp {

class Vm {
public:
	Vm() noexcept = default; // empty: no VM

	// Takes over a VM fd; `vcpu_mapping_size` is KVM_GET_VCPU_MMAP_SIZE.
	Vm(OwnedFd fd, std::size_t vcpu_mapping_size) noexcept
		: fd_(std::move(fd)), vcpu_mapping_size_(vcpu_mapping_size)
	{
	}

	int fd() const noexcept { return fd_.get(); }
	explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
	std::size_t vcpu_mapping_size() const noexcept { return vcpu_mapping_size_; }

	// KVM_CHECK_EXTENSION on the VM fd (answers may depend on the VM).
	Result<int> check_extension(long capability) const noexcept;

	// KVM_CREATE_VCPU, then mmap of its kvm_run.
	Result<Vcpu> create_vcpu(unsigned id) const noexcept;

	// KVM_SET_USER_MEMORY_REGION, as given.
	Result<void> set_user_memory_region(const kvm_userspace_memory_region &region) const noexcept;

	// Slot `slot` maps guest-physical [guest_phys, guest_phys + memory.size())
	// to `memory` (which must outlive the slot). `flags` are KVM_MEM_*.
	Result<void> map_memory(std::uint32_t slot, std::uint64_t guest_phys,
				const GuestMemory &memory, std::uint32_t flags = 0) const noexcept;

	// Deletes slot `slot` (KVM_SET_USER_MEMORY_REGION with size 0).
	Result<void> unmap_memory(std::uint32_t slot) const noexcept;

	// KVM_REGISTER_COALESCED_MMIO / KVM_UNREGISTER_COALESCED_MMIO with the
	// zone as given (zone.pio must be 0 or 1, else EINVAL).
	Result<void> register_coalesced_zone(const kvm_coalesced_mmio_zone &zone) const noexcept;
	Result<void> unregister_coalesced_zone(const kvm_coalesced_mmio_zone &zone) const noexcept;
	// Guest writes to guest-physical [address, address + size) (MMIO: no
	// memory slot there) or to ports [port, port + size) go to the coalesced
	// ring (Vcpu::coalesced_ring()) instead of exiting; reads still exit.
	// Unregistering removes every zone of that kind (MMIO or PIO) that
	// contains the whole given range, as Linux does (coalesced_mmio_in_range()
	// in virt/kvm/coalesced_mmio.c), and succeeds when none does.
	Result<void> register_coalesced_mmio(std::uint64_t address, std::uint32_t size) const noexcept;
	Result<void> unregister_coalesced_mmio(std::uint64_t address, std::uint32_t size) const noexcept;
	Result<void> register_coalesced_pio(std::uint16_t port, std::uint32_t size) const noexcept;
	Result<void> unregister_coalesced_pio(std::uint16_t port, std::uint32_t size) const noexcept;

private:
	OwnedFd fd_;
	std::size_t vcpu_mapping_size_ = 0;
};

} // namespace kvmpp
