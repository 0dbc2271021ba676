// SPDX-License-Identifier: GPL-2.0
//
// Vcpu: one virtual CPU (a vCPU fd from KVM_CREATE_VCPU) and its mapped
// kvm_run. Created by Vm::create_vcpu(). One method per ioctl; register state
// uses the kernel's own structs (kvm_regs, kvm_sregs, ...).
//
//     kvmpp::Vcpu vcpu = vm.create_vcpu(0).value();
//     for (;;) {
//         kvmpp::Result<kvmpp::Exit> exit = vcpu.run();
//         if (!exit) ... exit.error() names KVM_RUN and the errno ...
//         if (auto *io = std::get_if<kvmpp::exits::Io>(&*exit)) ...
//     }
//
// run() is the hot path: one KVM_RUN ioctl, then a decode of kvm_run into an
// Exit (a few scalar reads); no allocation, no copy of exit data.
//
// Thread safety: a Vcpu belongs to one thread at a time (KVM serializes vCPU
// ioctls anyway, and kvm_run is shared state that KVM_RUN rewrites). The only
// calls that may come from another thread, or from a signal handler, while
// the owner runs the vCPU are fd(), id() and request_immediate_exit().
// Moving or destroying a Vcpu while another thread uses it is a data race.
#pragma once

#include "coalesced.hpp"
#include "error.hpp"
#include "exit.hpp"
#include "fd.hpp"

#include <linux/kvm.h>
#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kvmpp {

class Vcpu {
public:
	Vcpu() noexcept = default; // empty: no vCPU
	Vcpu(Vcpu &&other) noexcept;
	Vcpu &operator=(Vcpu &&other) noexcept;
	Vcpu(const Vcpu &) = delete;
	Vcpu &operator=(const Vcpu &) = delete;
	~Vcpu(); // unmaps kvm_run and closes the vCPU fd

	// Takes over a vCPU fd (e.g. from a raw KVM_CREATE_VCPU) and maps its
	// `mapping_size` bytes (KVM_GET_VCPU_MMAP_SIZE).
	static Result<Vcpu> adopt(OwnedFd fd, unsigned id, std::size_t mapping_size);

	int fd() const noexcept { return fd_.get(); }
	unsigned id() const noexcept { return id_; }
	explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

	// The shared kvm_run structure (page 0 of the mapping) and the whole
	// mapping (kvm_run, the PIO data page, the coalesced MMIO ring).
	kvm_run &run_data() const noexcept { return *run_; }
	std::span<std::byte> mapping() const noexcept
	{
		return {reinterpret_cast<std::byte *>(run_), mapping_size_};
	}

	// The coalesced MMIO/PIO ring in the mapping (page
	// KVM_COALESCED_MMIO_PAGE_OFFSET); empty if the mapping has no such page.
	// The ring belongs to the VM: every vCPU's mapping shows the same one.
	CoalescedRing coalesced_ring() const noexcept;

	// KVM_RUN, then the exit it reports. A failure is the ioctl's errno,
	// e.g. EINTR when a signal or immediate_exit stopped it (exit() then
	// tells what KVM left in kvm_run).
	Result<Exit> run() noexcept;

	// The exit kvm_run currently describes, without running.
	Exit exit() const noexcept { return decode_exit(*run_, mapping_size_); }

	// Sets kvm_run.immediate_exit: while set, KVM_RUN fails with EINTR before
	// entering the guest (after completing a pending I/O). Safe from a signal
	// handler or another thread (an atomic byte store).
	void request_immediate_exit(bool value = true) const noexcept;

	// Register state.
	Result<kvm_regs> get_regs() const noexcept;
	Result<void> set_regs(const kvm_regs &regs) const noexcept;
	Result<kvm_sregs> get_sregs() const noexcept;
	Result<void> set_sregs(const kvm_sregs &sregs) const noexcept;
	Result<kvm_fpu> get_fpu() const noexcept;
	Result<void> set_fpu(const kvm_fpu &fpu) const noexcept;

	// KVM_GET_MSRS / KVM_SET_MSRS: KVM processes the entries in order and
	// stops at the first one it refuses; the result is how many it did.
	// `entries[i].data` is filled for the ones read.
	Result<std::size_t> get_msrs(std::span<kvm_msr_entry> entries) const;
	Result<std::size_t> set_msrs(std::span<const kvm_msr_entry> entries) const;
	// One MSR; a refused index is EINVAL (reported as that ioctl).
	Result<std::uint64_t> get_msr(std::uint32_t index) const noexcept;
	Result<void> set_msr(std::uint32_t index, std::uint64_t value) const noexcept;

	// KVM_SET_CPUID2 / KVM_GET_CPUID2 (the latter allocates the result, and
	// on Linux 6.1, which does not report the count on success, takes up to
	// 9 ioctls to find how many entries there are).
	Result<void> set_cpuid(std::span<const kvm_cpuid_entry2> entries) const;
	Result<std::vector<kvm_cpuid_entry2>> get_cpuid() const;

	// KVM_TRANSLATE: the guest-physical address the vCPU's current paging
	// mode gives `linear_address` (identity without paging). Linux sets
	// `valid` = 0 and physical_address = ~0 for an unmapped address, and
	// always reports writeable = 1, usermode = 0.
	Result<kvm_translation> translate(std::uint64_t linear_address) const noexcept;

	// KVM_SET_SIGNAL_MASK: the signal mask the thread has while in KVM_RUN;
	// nullptr goes back to the thread's own mask.
	Result<void> set_signal_mask(const sigset_t *mask) const noexcept;

private:
	Vcpu(OwnedFd fd, unsigned id, kvm_run *run, std::size_t mapping_size) noexcept
		: fd_(std::move(fd)), run_(run), mapping_size_(mapping_size), id_(id)
	{
	}
	void unmap() noexcept;

	OwnedFd fd_;
	kvm_run *run_ = nullptr;
	std::size_t mapping_size_ = 0;
	unsigned id_ = 0;
};

} // namespace kvmpp
