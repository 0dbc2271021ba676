// SPDX-License-Identifier: GPL-2.0
//
// The coalesced MMIO/PIO ring: writes the guest makes into a zone registered
// with Vm::register_coalesced_mmio() / register_coalesced_pio() do not exit to
// userspace; KVM appends them to this ring (one per VM, mapped into every
// vCPU's mapping at page KVM_COALESCED_MMIO_PAGE_OFFSET) and the VMM drains it
// whenever it likes (at the latest when it handles the next exit).
//
//     kvmpp::CoalescedRing ring = vcpu.coalesced_ring();
//     while (!ring.empty()) {
//         const kvm_coalesced_mmio &entry = ring.front();
//         ... entry.phys_addr, entry.len, entry.data, entry.pio ...
//         ring.pop();
//     }
//
// KVM writes entries at `last` and advances it; the VMM reads at `first` and
// advances that. When KVM finds no room, it gives the write to userspace as
// an ordinary KVM_EXIT_MMIO / KVM_EXIT_IO (virt/kvm/coalesced_mmio.c). At
// most capacity() - 1 entries fit; Linux 6.1 computes the room in u32
// arithmetic, (first - last - 1) % capacity, and so may call the ring full
// earlier (from first = 0: after 85 of 170 entries).
//
// The layout is the kernel's: two u32 (first, last) followed directly by the
// entries. <linux/kvm.h>'s struct kvm_coalesced_mmio_ring is not used: its
// flexible array (__DECLARE_FLEX_ARRAY) sits at the wrong offset in C++, as
// abi.hpp explains.
//
// Thread safety: KVM appends while vCPUs run; first/last are read and
// written with acquire/release ordering. One consumer at a time.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace kvmpp {

class CoalescedRing {
public:
	// The kernel's struct kvm_coalesced_mmio_ring without the entries.
	struct Header {
		std::uint32_t first; // next entry for the VMM to read
		std::uint32_t last;  // next entry KVM writes
	};

	CoalescedRing() noexcept = default; // empty: no ring
	// `page` is the start of the ring page; `page_size` the kernel's page size.
	CoalescedRing(void *page, std::size_t page_size) noexcept
		: ring_(static_cast<Header *>(page)),
		  entries_(reinterpret_cast<kvm_coalesced_mmio *>(static_cast<std::byte *>(page) +
								 sizeof(Header))),
		  capacity_(static_cast<std::uint32_t>((page_size - sizeof(Header)) /
						       sizeof(kvm_coalesced_mmio)))
	{
	}

	explicit operator bool() const noexcept { return ring_ != nullptr; }

	// Slots in the ring (KVM_COALESCED_MMIO_MAX: 170 with 4 KiB pages).
	std::uint32_t capacity() const noexcept { return capacity_; }
	std::uint32_t first() const noexcept
	{
		return std::atomic_ref<std::uint32_t>(ring_->first).load(std::memory_order_acquire);
	}
	std::uint32_t last() const noexcept
	{
		return std::atomic_ref<std::uint32_t>(ring_->last).load(std::memory_order_acquire);
	}
	// Entries waiting.
	std::uint32_t size() const noexcept
	{
		return (last() + capacity_ - first()) % capacity_;
	}
	bool empty() const noexcept { return first() == last(); }

	// The oldest entry, then the one after it ...: entry(i) for i < size().
	const kvm_coalesced_mmio &entry(std::uint32_t i) const noexcept
	{
		return entries_[(first() + i) % capacity_];
	}
	const kvm_coalesced_mmio &front() const noexcept { return entry(0); }

	// Consumes the oldest entry (or `count` of them).
	void pop(std::uint32_t count = 1) const noexcept
	{
		std::atomic_ref<std::uint32_t>(ring_->first)
			.store((first() + count) % capacity_, std::memory_order_release);
	}

private:
	Header *ring_ = nullptr;
	kvm_coalesced_mmio *entries_ = nullptr;
	std::uint32_t capacity_ = 0;
};

} // namespace kvmpp
