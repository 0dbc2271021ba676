// SPDX-License-Identifier: GPL-2.0
//
// Port I/O and HLT exits to userspace (KVM_EXIT_IO, KVM_EXIT_HLT): what a
// guest's IN/OUT/INS/OUTS/HLT look like in kvm_run, and what KVM does with
// userspace's answer (kvm_fast_pio(), emulator_pio_in_out(),
// complete_fast_pio_in(), __kvm_emulate_halt() in arch/x86/kvm/x86.c;
// pio_in_emulated() and the REP loop of x86_emulate_insn() in
// arch/x86/kvm/emulate.c of Linux 6.1).
#include "guest_support.h"
#include "kvm.h"
#include "test.h"

#include <cstring>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;

namespace {

// An OUT exit must carry exactly this.
void assert_out(const exits::Io &io, std::uint16_t port, unsigned size, std::uint32_t value)
{
	CONTEXT("OUT to port %#x, size %u", port, size);
	ASSERT_TRUE(io.is_out());
	ASSERT_EQ(io.port, port);
	ASSERT_EQ(io.size, size);
	ASSERT_EQ(io.count, 1u);
	ASSERT_EQ(io.data.size(), size);
	ASSERT_EQ(io.value(), value);
}

} // namespace

// OUT imm8 and OUT DX with al/ax/eax, in every mode: one exit each, count 1,
// the data in the vCPU mapping at data_offset = KVM_PIO_PAGE_OFFSET pages.
KVMPP_TEST(guest, out_sizes, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	const std::uint64_t pio_offset = KVM_PIO_PAGE_OFFSET * page_size();
	for (Mode mode : kAllModes) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		Assembler code(code_bits(mode), layout::kCode);
		code.mov(Reg::eax, 0x12345678)
			.out(0x10, Reg::al)
			.out(0x11, Reg::ax)
			.out(0x12, Reg::eax)
			.mov(Reg::dx, 0xabcd)
			.out_dx(Reg::al)
			.out_dx(Reg::ax)
			.out_dx(Reg::eax)
			.hlt();
		m.load(code);

		struct Expected {
			std::uint16_t port;
			unsigned size;
			std::uint32_t value;
		} expected[] = {{0x10, 1, 0x78},   {0x11, 2, 0x5678},   {0x12, 4, 0x12345678},
				{0xabcd, 1, 0x78}, {0xabcd, 2, 0x5678}, {0xabcd, 4, 0x12345678}};
		for (const Expected &e : expected) {
			const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
			assert_out(io, e.port, e.size, e.value);
			ASSERT_EQ(io.data_offset, pio_offset);
			// The same bytes, read from the mapping directly.
			std::uint32_t raw = 0;
			std::memcpy(&raw, m.vcpu.mapping().data() + pio_offset, e.size);
			ASSERT_EQ(raw, e.value);
		}
		ASSERT_EXIT(exits::Hlt, m.vcpu);
	}
}

// IN: the value userspace leaves in the data area lands in al/ax/eax. A 1- or
// 2-byte IN keeps the rest of RAX; a 4-byte IN zero-extends into RAX
// (complete_fast_pio_in: "For size less than 4 we merge, else we zero extend").
KVMPP_TEST(guest, in_sizes, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : {Mode::real, Mode::protected32, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		Assembler code(code_bits(mode), layout::kCode);
		if (mode == Mode::long64)
			code.mov(Reg::rax, 0x1122334455667788);
		else
			code.mov(Reg::eax, 0x55667788);
		code.in(Reg::al, 0x20).hlt(); // RAX checked at each HLT
		code.in(Reg::ax, 0x21).hlt();
		code.mov(Reg::dx, 0x5678).in_dx(Reg::eax).hlt();
		m.load(code);

		const std::uint64_t upper = mode == Mode::long64 ? 0x1122334400000000 : 0;
		struct Step {
			std::uint16_t port;
			unsigned size;
			std::uint32_t value;
			std::uint64_t rax;
		} steps[] = {
			{0x20, 1, 0xa1, upper | 0x556677a1},
			{0x21, 2, 0xb2c3, upper | 0x5566b2c3},
			{0x5678, 4, 0xd4e5f607, 0xd4e5f607}, // the upper half is cleared
		};
		for (const Step &step : steps) {
			CONTEXT("IN from port %#x, size %u", step.port, step.size);
			const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
			ASSERT_TRUE(io.is_in());
			ASSERT_EQ(io.port, step.port);
			ASSERT_EQ(io.size, step.size);
			ASSERT_EQ(io.count, 1u);
			ASSERT_EQ(io.data.size(), step.size);
			io.set_value(step.value);
			ASSERT_EXIT(exits::Hlt, m.vcpu);
			ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rax, step.rax);
		}
	}
}

// REP OUTSB is emulated one element per exit: count is 1 every time, the
// instruction is restarted with RCX one lower until it is 0 (em_out passes a
// count of 1; x86_emulate_insn's REP loop re-enters the guest).
KVMPP_TEST(guest, rep_outsb, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	const char message[] = "kvmpp!";
	const std::size_t length = sizeof(message) - 1;
	m.memory.write_bytes(layout::kLowData,
			     std::as_bytes(std::span<const char>(message, length)));
	Assembler code(16, layout::kCode);
	code.cld()
		.mov(Reg::cx, length)
		.mov(Reg::si, layout::kLowData)
		.mov(Reg::dx, 0x3f8)
		.outs(1, true)
		.hlt();
	m.load(code);

	for (std::size_t i = 0; i < length; i++) {
		CONTEXT("element %zu", i);
		const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
		ASSERT_TRUE(io.is_out());
		ASSERT_EQ(io.port, 0x3f8);
		ASSERT_EQ(io.size, 1);
		ASSERT_EQ(io.count, 1u);
		ASSERT_EQ(io.value(), static_cast<std::uint32_t>(message[i]));
	}
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rcx & 0xffff, 0u);
	ASSERT_EQ(regs.rsi & 0xffff, layout::kLowData + length);
}

// REP INSB is batched: one exit asks for as many elements as fit the
// emulator's 1 KiB read-ahead buffer, the rest of the destination page and
// RCX (pio_in_emulated: n = min3(in_page, sizeof(rc->data) / size, count)).
KVMPP_TEST(guest, rep_insb, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	struct Case {
		const char *what;
		std::uint16_t destination;
		std::uint16_t total;
		std::vector<std::uint32_t> counts; // per exit
	} cases[] = {
		{"8 bytes", static_cast<std::uint16_t>(layout::kLowData + 0x100), 8, {8}},
		{"1500 bytes from a page start", static_cast<std::uint16_t>(layout::kLowData), 1500, {1024, 476}},
		{"20 bytes across a page boundary", static_cast<std::uint16_t>(layout::kLowData + 0xff6), 20, {10, 10}},
	};
	for (const Case &c : cases) {
		CONTEXT("%s", c.what);
		Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
		Assembler code(16, layout::kCode);
		code.cld().mov(Reg::cx, c.total).mov(Reg::di, c.destination).mov(Reg::dx, 0x60).ins(1, true).hlt();
		m.load(code);

		std::uint32_t done = 0;
		for (std::uint32_t count : c.counts) {
			CONTEXT("exit after %u bytes", done);
			const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
			ASSERT_TRUE(io.is_in());
			ASSERT_EQ(io.port, 0x60);
			ASSERT_EQ(io.size, 1);
			ASSERT_EQ(io.count, count);
			ASSERT_EQ(io.data.size(), count);
			for (std::uint32_t i = 0; i < count; i++)
				io.set_value((done + i) * 7 + 3, i);
			done += count;
		}
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		for (std::uint32_t i = 0; i < c.total; i++) {
			CONTEXT("byte %u", i);
			ASSERT_EQ(m.memory.read<std::uint8_t>(c.destination + i),
				  static_cast<std::uint8_t>(i * 7 + 3));
		}
		const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
		ASSERT_EQ(regs.rcx & 0xffff, 0u);
		ASSERT_EQ(regs.rdi & 0xffff, static_cast<std::uint16_t>(c.destination + c.total));
	}
}

// HLT without an in-kernel local APIC exits to userspace with RIP past the
// HLT; the next KVM_RUN goes on from there (__kvm_emulate_halt).
KVMPP_TEST(guest, hlt, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : {Mode::real, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		Assembler code(code_bits(mode), layout::kCode);
		code.hlt();
		const std::uint64_t after = code.address();
		code.out(0x30, Reg::al).hlt().hlt();
		m.load(code);

		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, after);
		ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x30);
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, after + 4);
	}
}
