// SPDX-License-Identifier: GPL-2.0
//
// Exceptions in the guest, triple faults and state the CPU refuses: what
// reaches userspace (KVM_EXIT_SHUTDOWN, KVM_EXIT_FAIL_ENTRY) and what
// KVM_SET_SREGS rejects (kvm_is_valid_sregs(), kvm_is_valid_cr0(),
// kvm_set_apic_base() in arch/x86/kvm/x86.c; shutdown_interception() and the
// SVM_EXIT_ERR case of svm_handle_exit() in arch/x86/kvm/svm/svm.c of Linux
// 6.1).
#include "guest_support.h"
#include "test.h"

#include <kvmpp/x86.hpp>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;
namespace x86 = kvmpp::x86;

namespace {

// The return address an exception pushed, read from the guest's stack at
// RSP (real mode: 16-bit IP; 32-bit: EIP; 64-bit: RIP), skipping an error
// code if one was pushed (never in real mode).
std::uint64_t pushed_ip(const Machine &m, Mode mode, bool error_code)
{
	const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	const unsigned slot = mode == Mode::real ? 2 : mode == Mode::long64 ? 8 : 4;
	const std::uint64_t at = (mode == Mode::real ? regs.rsp & 0xffff : regs.rsp) +
				 (error_code ? slot : 0);
	switch (slot) {
	case 2:
		return m.memory.read<std::uint16_t>(at);
	case 4:
		return m.memory.read<std::uint32_t>(at);
	default:
		return m.memory.read<std::uint64_t>(at);
	}
}

} // namespace

// Exceptions reach the guest's own handlers in every mode: each vector stub
// reports its vector on kVectorPort and halts. #UD pushes the address of the
// faulting UD2; #GP from RDMSR of an MSR KVM does not know (KVM injects it:
// kvm_emulate_rdmsr -> kvm_inject_gp) pushes the RDMSR's address and, outside
// real mode, error code 0.
KVMPP_TEST(guest, exception_vectors, .timeout_s = 100, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	struct Fault {
		const char *what;
		std::uint8_t vector;
		bool error_code;
		bool fault; // pushes the address of the instruction, not of the next one
		void (*emit)(Assembler &);
	} faults[] = {
		{"ud2", x86::kInvalidOpcode, false, true, [](Assembler &a) { a.ud2(); }},
		{"div by zero", x86::kDivideError, false, true,
		 [](Assembler &a) { a.div(Reg::cl); }},
		{"rdmsr of an unknown MSR", x86::kGeneralProtection, true, true,
		 [](Assembler &a) { a.rdmsr(); }},
		{"int3", x86::kBreakpoint, false, false, [](Assembler &a) { a.int3(); }},
		{"int 0x42", 0x42, false, false, [](Assembler &a) { a.int_(0x42); }},
	};
	for (Mode mode : kAllModes) {
		for (const Fault &fault : faults) {
			CONTEXT("%s in mode %s", fault.what, mode_name(mode));
			note("%s in mode %s", fault.what, mode_name(mode));
			Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
			Assembler code(code_bits(mode), layout::kCode);
			// AX = 1 and CL = 0 for the division; ECX an unknown MSR.
			code.mov(Reg::eax, 1).xor_(Reg::edx, Reg::edx);
			code.mov(Reg::ecx, fault.vector == x86::kGeneralProtection ? 0x0000bad0 : 0);
			const std::uint64_t at = code.address();
			fault.emit(code);
			const std::uint64_t next = code.address();
			code.out(0x30, Reg::al).hlt(); // not reached
			m.load(code);

			const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
			ASSERT_TRUE(io.is_out());
			ASSERT_EQ(io.port, kVectorPort);
			ASSERT_EQ(io.value(), fault.vector);
			ASSERT_EXIT(exits::Hlt, m.vcpu);
			const bool error_code = fault.error_code && mode != Mode::real;
			ASSERT_EQ(pushed_ip(m, mode, error_code), fault.fault ? at : next);
			if (error_code)
				ASSERT_EQ(pushed_ip(m, mode, false), 0u); // the error code
		}
	}
}

// A triple fault (here: INT3 with an IDT of limit 0, so #GP, then #DF, then
// shutdown) ends KVM_RUN with KVM_EXIT_SHUTDOWN.
KVMPP_TEST(guest, triple_fault, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : {Mode::real, Mode::protected32, Mode::pae32, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		Assembler code(code_bits(mode), layout::kCode);
		code.lidt(layout::kIdtrEmpty).int3().out(0x30, Reg::al).hlt();
		m.load(code);
		ASSERT_EXIT(exits::Shutdown, m.vcpu);
	}
}

// An exception with nowhere to go in real mode: #UD with an IVT limit of 0
// (set through KVM_SET_SREGS) cannot be delivered, nor can the #GP that
// follows, nor the #DF: shutdown. (KVM intercepts #UD and re-injects it,
// handle_ud(); the delivery failure is the CPU's.)
KVMPP_TEST(guest, real_mode_exception_without_idt, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	ASSERT_RESULT(m.vcpu.set_sregs(sregs));
	Assembler code(16, layout::kCode);
	code.ud2().out(0x30, Reg::al).hlt();
	m.load(code);
	ASSERT_EXIT(exits::Shutdown, m.vcpu);
}

// KVM_SET_SREGS refuses states no CPU can be in, with EINVAL and without
// changing anything (kvm_is_valid_sregs runs before any state is written;
// kvm_set_apic_base before the rest).
KVMPP_TEST(guest, invalid_sregs, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::protected32));
	const kvm_sregs valid = ASSERT_RESULT(m.vcpu.get_sregs());
	const kvm_sregs long_mode = mode_sregs(Mode::long64, valid);

	struct Case {
		const char *what;
		kvm_sregs sregs;
	};
	std::vector<Case> cases;
	auto add = [&](const char *what, const kvm_sregs &base, auto change) {
		kvm_sregs s = base;
		change(s);
		cases.push_back({what, s});
	};
	add("CR0.PG without CR0.PE", valid, [](kvm_sregs &s) { s.cr0 = x86::kCr0Pg | x86::kCr0Et; });
	add("CR0.NW without CR0.CD", valid, [](kvm_sregs &s) { s.cr0 |= x86::kCr0Nw; });
	add("CR0 bit 32", valid, [](kvm_sregs &s) { s.cr0 |= 1ULL << 32; });
	add("CR4 reserved bit 31", valid, [](kvm_sregs &s) { s.cr4 |= 1ULL << 31; });
	add("EFER.LMA outside long mode", valid, [](kvm_sregs &s) { s.efer = x86::kEferLma; });
	add("CS.L outside long mode", valid, [](kvm_sregs &s) { s.cs.l = 1; });
	add("long mode without CR4.PAE", long_mode, [](kvm_sregs &s) { s.cr4 = 0; });
	add("EFER.LME and CR0.PG without EFER.LMA", long_mode, [](kvm_sregs &s) { s.efer = x86::kEferLme; });
	add("APIC base with reserved bit 0", valid, [](kvm_sregs &s) { s.apic_base |= 1; });

	for (const Case &c : cases) {
		CONTEXT("%s", c.what);
		ASSERT_RESULT_ERRNO(m.vcpu.set_sregs(c.sregs), EINVAL);
		const kvm_sregs now = ASSERT_RESULT(m.vcpu.get_sregs());
		ASSERT_EQ(now.cr0, valid.cr0);
		ASSERT_EQ(now.cr3, valid.cr3);
		ASSERT_EQ(now.cr4, valid.cr4);
		ASSERT_EQ(now.efer, valid.efer);
		ASSERT_EQ(now.cs.l, valid.cs.l);
		ASSERT_EQ(now.apic_base, valid.apic_base);
	}

	// The vCPU still runs, in the mode it had.
	Assembler code(32, layout::kCode);
	code.out(0x30, Reg::al).hlt();
	m.load(code);
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x30);
}

// A state KVM_SET_SREGS accepts but the CPU does not: 64-bit mode with both
// CS.L and CS.D set. VM entry fails and KVM_RUN reports KVM_EXIT_FAIL_ENTRY
// (SVM: VMRUN's consistency checks give SVM_EXIT_ERR; VMX: the guest-state
// checks fail the VM entry).
KVMPP_TEST(guest, fail_entry, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	Assembler code(64, layout::kCode);
	code.out(0x30, Reg::al).hlt();
	m.load(code);
	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	sregs.cs.db = 1;
	ASSERT_RESULT(m.vcpu.set_sregs(sregs));
	const exits::FailEntry fail = ASSERT_EXIT(exits::FailEntry, m.vcpu);
	note("hardware_entry_failure_reason %#llx on CPU %u",
	     static_cast<unsigned long long>(fail.hardware_entry_failure_reason), fail.cpu);
}
