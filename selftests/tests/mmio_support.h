// SPDX-License-Identifier: GPL-2.0
//
// What the mmio.* tests share: a test machine with an MMIO hole in its RAM
// and assertions on KVM_EXIT_MMIO.
//
// Guest-physical layout on top of guest::layout: RAM at [0, 1 MiB) except
// the page at kMmio (reachable from 16-bit code with DS = 0, identity-mapped
// under paging); kFar and everything else above 1 MiB is unbacked too.
#pragma once

#include "guest_support.h"

#include <cstring>

namespace kvmpp::test::mmio {

inline constexpr std::uint64_t kMmio = 0xb000;      // one page without a memory slot
inline constexpr std::uint64_t kRam16 = 0xa000;     // RAM for 16-bit code (below the hole)
inline constexpr std::uint64_t kRam = guest::layout::kData + 0x1000; // RAM for 32/64-bit code
inline constexpr std::uint64_t kFar = 0x200000;     // above the RAM: unbacked

// Machine::create(kvm, mode), with slot 0 split in two around the page at
// kMmio (slot 0: [0, kMmio), slot 1: [kMmio + 4 KiB, 1 MiB)).
inline guest::Machine mmio_machine(const System &kvm, guest::Mode mode)
{
	guest::Machine m = ASSERT_RESULT(guest::Machine::create(kvm, mode));
	ASSERT_RESULT(m.vm.unmap_memory(0));
	const std::uint64_t above = kMmio + 0x1000;
	const kvm_userspace_memory_region below_hole = {
		.slot = 0, .flags = 0, .guest_phys_addr = 0, .memory_size = kMmio,
		.userspace_addr = reinterpret_cast<std::uint64_t>(m.memory.data())};
	const kvm_userspace_memory_region above_hole = {
		.slot = 1, .flags = 0, .guest_phys_addr = above,
		.memory_size = m.memory.size() - above,
		.userspace_addr = reinterpret_cast<std::uint64_t>(m.memory.data() + above)};
	ASSERT_RESULT(m.vm.set_user_memory_region(below_hole));
	ASSERT_RESULT(m.vm.set_user_memory_region(above_hole));
	return m;
}

// CR4.OSFXSR (and OSXMMEXCPT): SSE instructions do not #UD.
inline void enable_sse(const guest::Machine &m)
{
	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	sregs.cr4 |= (1ULL << 9) | (1ULL << 10);
	ASSERT_RESULT(m.vcpu.set_sregs(sregs));
}

// One KVM_RUN that must end in KVM_EXIT_MMIO at `address`, `len` bytes, a
// write or a read.
inline exits::Mmio expect_mmio(Vcpu &vcpu, std::uint64_t address, unsigned len, bool is_write)
{
	const exits::Mmio e = ASSERT_EXIT(exits::Mmio, vcpu);
	CONTEXT("KVM_EXIT_MMIO %s at %#llx, %zu bytes; expected %s at %#llx, %u bytes",
		e.is_write ? "write" : "read", static_cast<unsigned long long>(e.phys_addr),
		e.data.size(), is_write ? "write" : "read", static_cast<unsigned long long>(address), len);
	ASSERT_EQ(e.phys_addr, address);
	ASSERT_EQ(e.data.size(), len);
	ASSERT_EQ(e.is_write, is_write);
	ASSERT_EQ(vcpu.run_data().mmio.len, len);
	return e;
}

// An MMIO write exit that carries `value` (its low `len` bytes).
inline void expect_write(Vcpu &vcpu, std::uint64_t address, unsigned len, std::uint64_t value)
{
	const exits::Mmio e = expect_mmio(vcpu, address, len, true);
	std::uint64_t data = 0;
	std::memcpy(&data, e.data.data(), len);
	ASSERT_EQ(data, len == 8 ? value : value & ((1ULL << (8 * len)) - 1));
}

// An MMIO read exit, answered with `value` (its low `len` bytes).
inline void expect_read(Vcpu &vcpu, std::uint64_t address, unsigned len, std::uint64_t value)
{
	const exits::Mmio e = expect_mmio(vcpu, address, len, false);
	std::memcpy(e.data.data(), &value, len);
}

} // namespace kvmpp::test::mmio
