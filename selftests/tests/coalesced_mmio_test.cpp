// SPDX-License-Identifier: GPL-2.0
//
// Coalesced MMIO and PIO (virt/kvm/coalesced_mmio.c of Linux 6.1): writes
// into a registered zone are appended to a ring in the vCPU mapping instead
// of exiting; reads still exit; a full ring falls back to an ordinary exit.
#include "mmio_support.h"

#include <kvmpp/x86.hpp>

#include <unistd.h>

using namespace kvmpp::test;
using namespace kvmpp::test::mmio;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;

namespace {

constexpr std::uint8_t rbx_(unsigned reg) { return static_cast<std::uint8_t>(0x03 | reg << 3); }

// One ring entry must be exactly this.
void expect_entry(const kvm_coalesced_mmio &e, std::uint64_t address, unsigned len,
		  std::uint64_t value, unsigned pio)
{
	CONTEXT("ring entry at %#llx, %u bytes", static_cast<unsigned long long>(address), len);
	ASSERT_EQ(e.phys_addr, address);
	ASSERT_EQ(e.len, len);
	ASSERT_EQ(e.pio, pio);
	std::uint64_t data = 0;
	std::memcpy(&data, e.data, len);
	ASSERT_EQ(data, len == 8 ? value : value & ((1ULL << (8 * len)) - 1));
}

} // namespace

// KVM_CAP_COALESCED_MMIO is the ring's page offset in the vCPU mapping
// (KVM_COALESCED_MMIO_PAGE_OFFSET, 2 on x86), KVM_CAP_COALESCED_PIO is 1; the
// mapping has room for it; zone.pio other than 0 or 1 is EINVAL for register
// and unregister; unregistering a range no zone holds succeeds.
KVMPP_TEST(mmio, coalesced_caps_and_zones, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	ASSERT_EQ(ASSERT_RESULT(kvm.check_extension(KVM_CAP_COALESCED_MMIO)),
		  KVM_COALESCED_MMIO_PAGE_OFFSET);
	ASSERT_EQ(ASSERT_RESULT(kvm.check_extension(KVM_CAP_COALESCED_PIO)), 1);
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	ASSERT_EQ(ASSERT_RESULT(m.vm.check_extension(KVM_CAP_COALESCED_MMIO)),
		  KVM_COALESCED_MMIO_PAGE_OFFSET);
	const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
	ASSERT_GE(m.vm.vcpu_mapping_size(), (KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * page);
	const kvmpp::CoalescedRing ring = m.vcpu.coalesced_ring();
	ASSERT_TRUE(static_cast<bool>(ring));
	ASSERT_EQ(ring.capacity(), (page - 8) / sizeof(kvm_coalesced_mmio)); // 170 with 4 KiB pages
	ASSERT_EQ(ring.first(), 0u);
	ASSERT_EQ(ring.last(), 0u);

	kvm_coalesced_mmio_zone zone{};
	zone.addr = kFar;
	zone.size = 0x1000;
	zone.pio = 2;
	ASSERT_ERRNO(ioctl(m.vm.fd(), KVM_REGISTER_COALESCED_MMIO, &zone), EINVAL);
	ASSERT_ERRNO(ioctl(m.vm.fd(), KVM_UNREGISTER_COALESCED_MMIO, &zone), EINVAL);
	ASSERT_RESULT_ERRNO(m.vm.register_coalesced_zone(zone), EINVAL);
	ASSERT_RESULT(m.vm.unregister_coalesced_mmio(kFar, 0x1000)); // nothing there
	ASSERT_RESULT(m.vm.unregister_coalesced_pio(0x80, 1));
}

// Writes of 1, 2, 4, 8 and 16 bytes (the last as two 8-byte entries) into
// a zone cause no exit; the OUT after them does, and by then the ring holds
// them in program order with address, length, data and pio = 0; a read from
// the zone exits as usual. The ring is the same in every vCPU's mapping.
KVMPP_TEST(mmio, coalesced_ordering, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	enable_sse(m);
	ASSERT_RESULT(m.vm.register_coalesced_mmio(kFar, 0x1000));
	m.memory.write<std::uint64_t>(kRam, 0x0706050403020100);
	m.memory.write<std::uint64_t>(kRam + 8, 0x0f0e0d0c0b0a0908);
	Assembler code(64, layout::kCode);
	code.mov(Reg::ebx, kFar).mov(Reg::rcx, 0x8877665544332211);
	code.raw({0x88, 0x4b, 0x10});        // mov [rbx+0x10], cl
	code.raw({0x66, 0x89, 0x4b, 0x20});  // mov [rbx+0x20], cx
	code.raw({0x89, rbx_(1)});           // mov [rbx], ecx
	code.raw({0x48, 0x89, 0x4b, 0x08});  // mov [rbx+8], rcx
	code.mov(Reg::esi, kRam).raw({0xf3, 0x0f, 0x6f, 0x06}); // movdqu xmm0, [rsi]
	code.raw({0xf3, 0x0f, 0x7f, 0x43, 0x40}); // movdqu [rbx+0x40], xmm0
	code.mov(Reg::eax, 1).raw({0x89, 0x43, 0x10}); // mov [rbx+0x10], eax: again, later
	code.out(0x10, Reg::al);
	code.raw({0x8b, 0x43, 0x30});        // mov eax, [rbx+0x30]
	code.hlt();
	m.load(code);

	const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(io.port, 0x10);
	const kvmpp::CoalescedRing ring = m.vcpu.coalesced_ring();
	ASSERT_EQ(ring.size(), 7u);
	ASSERT_EQ(ring.first(), 0u);
	ASSERT_EQ(ring.last(), 7u);
	expect_entry(ring.entry(0), kFar + 0x10, 1, 0x11, 0);
	expect_entry(ring.entry(1), kFar + 0x20, 2, 0x2211, 0);
	expect_entry(ring.entry(2), kFar, 4, 0x44332211, 0);
	expect_entry(ring.entry(3), kFar + 8, 8, 0x8877665544332211, 0);
	expect_entry(ring.entry(4), kFar + 0x40, 8, 0x0706050403020100, 0);
	expect_entry(ring.entry(5), kFar + 0x48, 8, 0x0f0e0d0c0b0a0908, 0);
	expect_entry(ring.entry(6), kFar + 0x10, 4, 1, 0);

	// A second vCPU's mapping shows the same ring.
	kvmpp::Vcpu other = ASSERT_RESULT(m.vm.create_vcpu(1));
	ASSERT_EQ(other.coalesced_ring().size(), 7u);
	expect_entry(other.coalesced_ring().entry(6), kFar + 0x10, 4, 1, 0);
	ring.pop(7);
	ASSERT_EQ(ring.first(), 7u);
	ASSERT_TRUE(other.coalesced_ring().empty());

	expect_read(m.vcpu, kFar + 0x30, 4, 0xabcdef01);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rax, 0xabcdef01u);
	ASSERT_TRUE(ring.empty());
}

// A full ring falls back to an ordinary KVM_EXIT_MMIO write. When the ring
// is full is Linux 6.1's arithmetic: coalesced_mmio_has_room() computes
// (first - last - 1) % KVM_COALESCED_MMIO_MAX in u32, so from first = 0 the
// ring counts as full not after capacity - 1 entries but when last = 2^32 mod
// capacity - 1 (85 of the 170 slots with 4 KiB pages); from other positions
// (here first = last = 85 after the VMM consumed everything) writes go to the
// ring again.
KVMPP_TEST(mmio, coalesced_ring_full, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	ASSERT_RESULT(m.vm.register_coalesced_mmio(kFar, 0x1000));
	const kvmpp::CoalescedRing ring = m.vcpu.coalesced_ring();
	const std::uint32_t capacity = ring.capacity();
	auto has_room = [&](std::uint32_t first, std::uint32_t last) {
		return static_cast<std::uint32_t>(first - last - 1) % capacity != 0;
	};
	std::uint32_t fit = 0; // from first = last = 0
	while (has_room(0, fit))
		fit++;
	ASSERT_EQ(fit, static_cast<std::uint32_t>((1ULL << 32) % capacity - 1));
	note("ring of %u entries full after %u", capacity, fit);

	Assembler code(64, layout::kCode);
	// for (ecx = fit + 1; ecx; ecx--) [kFar] = ecx; then out 0x10.
	code.mov(Reg::ebx, kFar).mov(Reg::ecx, fit + 1);
	Label loop = code.here();
	code.raw({0x89, rbx_(1)}).dec(Reg::ecx).jnz(loop);
	code.out(0x10, Reg::al);
	code.mov(Reg::ecx, 3);
	Label again = code.here();
	code.raw({0x89, rbx_(1)}).dec(Reg::ecx).jnz(again);
	code.out(0x11, Reg::al).hlt();
	m.load(code);

	// The last write (ecx = 1) did not fit.
	expect_write(m.vcpu, kFar, 4, 1);
	ASSERT_EQ(ring.first(), 0u);
	ASSERT_EQ(ring.last(), fit);
	for (std::uint32_t i = 0; i < fit; i++) {
		CONTEXT("entry %u", i);
		expect_entry(ring.entry(i), kFar, 4, fit + 1 - i, 0);
	}
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x10);
	ASSERT_EQ(ring.size(), fit);

	ring.pop(fit); // first = last
	ASSERT_TRUE(ring.empty());
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x11);
	ASSERT_EQ(ring.size(), 3u);
	ASSERT_EQ(ring.last(), fit + 3);
	for (std::uint32_t i = 0; i < 3; i++)
		expect_entry(ring.entry(i), kFar, 4, 3 - i, 0);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
}

// Which zones an unregister removes: every zone of its kind that contains the
// whole given range (coalesced_mmio_in_range(dev, zone->addr, zone->size)),
// so a sub-range removes its zone and a range larger than a zone does not. A
// write that does not fit in one zone entirely exits.
KVMPP_TEST(mmio, coalesced_unregister, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	const kvmpp::CoalescedRing ring = m.vcpu.coalesced_ring();
	const std::uint64_t a = kFar, b = kFar + 0x100;
	ASSERT_RESULT(m.vm.register_coalesced_mmio(a, 0x100));
	ASSERT_RESULT(m.vm.register_coalesced_mmio(b, 0x100));

	// The guest writes ecx to [rbx] and halts, again and again.
	Assembler code(64, layout::kCode);
	const std::uint64_t entry = code.address();
	code.raw({0x89, rbx_(1)}).hlt();
	m.load(code);
	// Writes 4 bytes at `address`; returns whether it went to the ring.
	auto write = [&](std::uint64_t address, std::uint32_t value) {
		CONTEXT("write at %#llx", static_cast<unsigned long long>(address));
		kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
		regs.rip = entry;
		regs.rbx = address;
		regs.rcx = value;
		ASSERT_RESULT(m.vcpu.set_regs(regs));
		const std::uint32_t before = ring.size();
		kvmpp::Exit exit = ASSERT_RESULT(m.vcpu.run());
		if (std::holds_alternative<exits::Hlt>(exit)) {
			ASSERT_EQ(ring.size(), before + 1);
			expect_entry(ring.entry(before), address, 4, value, 0);
			ring.pop(ring.size());
			return true;
		}
		const exits::Mmio *mmio = std::get_if<exits::Mmio>(&exit);
		ASSERT_TRUE(mmio != nullptr);
		ASSERT_EQ(mmio->phys_addr, address);
		ASSERT_TRUE(mmio->is_write);
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EQ(ring.size(), before);
		return false;
	};
	ASSERT_TRUE(write(a + 0x10, 1));
	ASSERT_TRUE(write(b + 0x10, 2));
	ASSERT_TRUE(!write(b + 0xfe, 3)); // crosses out of zone b (into no zone)
	ASSERT_TRUE(!write(a + 0xfe, 4)); // a and b are two zones: no single one holds it

	ASSERT_RESULT(m.vm.unregister_coalesced_mmio(a + 0x10, 8)); // inside a: removes a
	ASSERT_TRUE(!write(a + 0x10, 5));
	ASSERT_TRUE(write(b + 0x10, 6));
	ASSERT_RESULT(m.vm.unregister_coalesced_mmio(b - 0x10, 0x200)); // larger than b: no effect
	ASSERT_TRUE(write(b + 0x10, 7));
	ASSERT_RESULT(m.vm.unregister_coalesced_pio(static_cast<std::uint16_t>(b), 4)); // PIO: no effect
	ASSERT_TRUE(write(b + 0x10, 8));
	ASSERT_RESULT(m.vm.unregister_coalesced_mmio(b, 0x100)); // exactly b
	ASSERT_TRUE(!write(b + 0x10, 9));
}

// Coalesced PIO: OUTs that fit a pio = 1 zone go to the ring (phys_addr =
// port, pio = 1) without exiting; an OUT partly outside exits, and so do INs
// from the zone.
KVMPP_TEST(mmio, coalesced_pio, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::protected32));
	ASSERT_RESULT(m.vm.register_coalesced_pio(0x80, 4));
	Assembler code(32, layout::kCode);
	code.mov(Reg::eax, 0x44332211)
		.out(0x80, Reg::al)
		.out(0x82, Reg::ax)
		.mov(Reg::dx, 0x80)
		.out_dx(Reg::eax)
		.out(0x82, Reg::eax) // 0x82..0x85: not inside the zone
		.in(Reg::al, 0x81)
		.hlt();
	m.load(code);

	const exits::Io out = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_TRUE(out.is_out());
	ASSERT_EQ(out.port, 0x82);
	ASSERT_EQ(out.size, 4);
	ASSERT_EQ(out.value(), 0x44332211u);
	const kvmpp::CoalescedRing ring = m.vcpu.coalesced_ring();
	ASSERT_EQ(ring.size(), 3u);
	expect_entry(ring.entry(0), 0x80, 1, 0x11, 1);
	expect_entry(ring.entry(1), 0x82, 2, 0x2211, 1);
	expect_entry(ring.entry(2), 0x80, 4, 0x44332211, 1);
	ring.pop(3);

	const exits::Io in = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_TRUE(in.is_in());
	ASSERT_EQ(in.port, 0x81);
	in.set_value(0x5a);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rax, 0x4433225au);
	ASSERT_TRUE(ring.empty());
}
