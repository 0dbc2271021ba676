// SPDX-License-Identifier: GPL-2.0
//
// Guests in each CPU mode, a guest that switches modes itself, and the
// instructions KVM handles in the kernel without telling userspace: CPUID
// (kvm_emulate_cpuid(), kvm_cpuid(), get_out_of_range_cpuid_entry() in
// arch/x86/kvm/cpuid.c) and RDMSR/WRMSR of MSRs KVM knows
// (kvm_emulate_rdmsr/wrmsr(), kvm_set_msr_common() in arch/x86/kvm/x86.c of
// Linux 6.1).
#include "guest_support.h"
#include "test.h"

#include <kvmpp/abi.hpp>
#include <kvmpp/x86.hpp>

#include <cstring>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;
namespace x86 = kvmpp::x86;

namespace {

kvm_cpuid_entry2 cpuid_entry(std::uint32_t function, std::uint32_t eax, std::uint32_t ebx,
			     std::uint32_t ecx, std::uint32_t edx)
{
	kvm_cpuid_entry2 entry{};
	entry.function = function;
	entry.eax = eax;
	entry.ebx = ebx;
	entry.ecx = ecx;
	entry.edx = edx;
	return entry;
}

kvm_cpuid_entry2 cpuid_subleaf(std::uint32_t function, std::uint32_t index, std::uint32_t eax,
			       std::uint32_t ebx, std::uint32_t ecx, std::uint32_t edx)
{
	kvm_cpuid_entry2 entry = cpuid_entry(function, eax, ebx, ecx, edx);
	entry.index = index;
	entry.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	return entry;
}

std::uint32_t fourcc(const char *text)
{
	std::uint32_t value;
	std::memcpy(&value, text, 4);
	return value;
}

} // namespace

// A guest in each mode reads memory and reports it with OUT: the value at
// layout::kData (or kLowData, for 16-bit code), and from 32-bit code the
// value at layout::kAlias + kData: with paging the same value through the
// alias mapping, without paging what userspace answers to the MMIO read.
// KVM reports back the control registers the mode was set up with.
KVMPP_TEST(guest, modes, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : kAllModes) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		const bool sixteen = code_bits(mode) == 16;
		const std::uint64_t data = sixteen ? layout::kLowData : layout::kData;
		const std::uint32_t value = 0xc0de0000 | static_cast<std::uint32_t>(mode);
		m.memory.write<std::uint32_t>(data, value);

		// The alias exists only under paging; without paging that address is
		// unbacked guest-physical memory: the load is an MMIO read, and the
		// guest gets what userspace answers.
		const bool alias = !sixteen;
		const bool alias_is_mmio = !has_paging(mode);
		const std::uint32_t mmio_value = 0x3a3a0000 | static_cast<std::uint32_t>(mode);
		Assembler code(code_bits(mode), layout::kCode);
		code.load(Reg::eax, data).out(0x10, Reg::eax);
		if (alias)
			code.load(Reg::eax, layout::kAlias + data).out(0x11, Reg::eax);
		code.hlt();
		m.load(code);

		const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
		ASSERT_EQ(io.port, 0x10);
		ASSERT_EQ(io.value(), value);
		if (alias) {
			if (alias_is_mmio) {
				const exits::Mmio mmio = ASSERT_EXIT(exits::Mmio, m.vcpu);
				ASSERT_EQ(mmio.phys_addr, layout::kAlias + data);
				ASSERT_EQ(mmio.data.size(), 4u);
				ASSERT_TRUE(!mmio.is_write);
				std::memcpy(mmio.data.data(), &mmio_value, 4);
			}
			const exits::Io through_alias = ASSERT_EXIT(exits::Io, m.vcpu);
			ASSERT_EQ(through_alias.port, 0x11);
			ASSERT_EQ(through_alias.value(), alias_is_mmio ? mmio_value : value);
		}
		ASSERT_EXIT(exits::Hlt, m.vcpu);

		const kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
		const kvm_sregs want = mode_sregs(mode, sregs);
		ASSERT_EQ(sregs.cr0, want.cr0);
		ASSERT_EQ(sregs.cr3, want.cr3);
		ASSERT_EQ(sregs.cr4, want.cr4);
		ASSERT_EQ(sregs.efer, want.efer);
		ASSERT_EQ(sregs.cs.selector, want.cs.selector);
		ASSERT_EQ(sregs.cs.l, want.cs.l);
		ASSERT_EQ(sregs.cs.db, want.cs.db);
	}
}

// A guest that starts in real mode, loads the GDT, sets CR0.PE and far-jumps
// into 32-bit code; then turns on PAE, loads CR3, sets EFER.LME with WRMSR
// and CR0.PG, and far-jumps into 64-bit code. It reports each stage on port
// 0x40. (EFER.LME can be set by the guest only if its CPUID has LM:
// __kvm_valid_efer.)
KVMPP_TEST(guest, mode_switch, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	const kvm_cpuid_entry2 cpuid[] = {
		cpuid_entry(0, 1, fourcc("kvmp"), fourcc("mode"), fourcc("ptes")),
		cpuid_entry(0x80000000, 0x80000001, 0, 0, 0),
		cpuid_entry(0x80000001, 0, 0, 0, 1u << 29), // LM
	};
	ASSERT_RESULT(m.vcpu.set_cpuid(cpuid));
	m.memory.write<std::uint64_t>(layout::kData, 0x6464646464646464);

	Assembler code(16, layout::kCode);
	Label protected_mode = code.label(), long_mode = code.label();
	code.cli()
		.lgdt(layout::kGdtr)
		.mov_from_cr(Reg::eax, 0)
		.or_(Reg::eax, x86::kCr0Pe)
		.mov_to_cr(0, Reg::eax)
		.far_jmp(selector::kCode32, protected_mode, 32);

	code.set_bits(32).bind(protected_mode);
	code.mov(Reg::ax, selector::kData32)
		.mov_to_seg(SegReg::ds, Reg::ax)
		.mov_to_seg(SegReg::es, Reg::ax)
		.mov_to_seg(SegReg::ss, Reg::ax)
		.mov(Reg::eax, 32)
		.out(0x40, Reg::eax)
		.mov_from_cr(Reg::eax, 4)
		.or_(Reg::eax, x86::kCr4Pae)
		.mov_to_cr(4, Reg::eax)
		.mov(Reg::eax, layout::kPml4)
		.mov_to_cr(3, Reg::eax)
		.mov(Reg::ecx, x86::kMsrEfer)
		.rdmsr()
		.or_(Reg::eax, x86::kEferLme)
		.wrmsr()
		.mov_from_cr(Reg::eax, 0)
		.or_(Reg::eax, x86::kCr0Pg)
		.mov_to_cr(0, Reg::eax)
		.far_jmp(selector::kCode64, long_mode, 32);

	code.set_bits(64).bind(long_mode);
	code.mov(Reg::eax, 64).out(0x40, Reg::eax).load(Reg::rax, layout::kAlias + layout::kData).hlt();
	m.load(code);

	const exits::Io first = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(first.port, 0x40);
	ASSERT_EQ(first.value(), 32u);
	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	ASSERT_TRUE(sregs.cr0 & x86::kCr0Pe);
	ASSERT_TRUE(!(sregs.cr0 & x86::kCr0Pg));
	ASSERT_EQ(sregs.cs.selector, selector::kCode32);
	ASSERT_EQ(sregs.cs.db, 1);
	ASSERT_EQ(sregs.cs.base, 0u);
	ASSERT_EQ(sregs.cs.limit, 0xffffffffu);
	ASSERT_EQ(sregs.ss.selector, selector::kData32);
	ASSERT_EQ(sregs.gdt.base, layout::kGdt);
	ASSERT_EQ(sregs.gdt.limit, selector::kGdtLimit);
	ASSERT_EQ(sregs.efer, 0u);

	const exits::Io second = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(second.port, 0x40);
	ASSERT_EQ(second.value(), 64u);
	sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	ASSERT_TRUE(sregs.cr0 & x86::kCr0Pg);
	ASSERT_TRUE(sregs.cr4 & x86::kCr4Pae);
	ASSERT_EQ(sregs.cr3, layout::kPml4);
	ASSERT_EQ(sregs.efer & (x86::kEferLme | x86::kEferLma), x86::kEferLme | x86::kEferLma);
	ASSERT_EQ(sregs.cs.selector, selector::kCode64);
	ASSERT_EQ(sregs.cs.l, 1);

	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rax, 0x6464646464646464u);
}

// CPUID never exits to userspace: KVM answers from what KVM_SET_CPUID2 set.
// Subleaves matter only for entries flagged KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
// a basic leaf within range but not set reads as zeros; with a vendor that is
// not AMD's, a leaf above the range reads as the highest basic leaf, with the
// subleaf index of the request (get_out_of_range_cpuid_entry: Intel's
// behaviour). KVM_GET_CPUID2 gives back what was set.
KVMPP_TEST(guest, cpuid, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::protected32));
	const kvm_cpuid_entry2 entries[] = {
		cpuid_entry(0, 4, fourcc("kvmp"), fourcc("Test"), fourcc("pCPU")),
		cpuid_entry(2, 0x11111111, 0x22222222, 0x33333333, 0x44444444),
		cpuid_subleaf(4, 0, 0x40000000, 0x40000001, 0x40000002, 0x40000003),
		cpuid_subleaf(4, 1, 0x41000000, 0x41000001, 0x41000002, 0x41000003),
	};
	ASSERT_RESULT(m.vcpu.set_cpuid(entries));

	struct Query {
		std::uint32_t function, index;
		std::uint32_t eax, ebx, ecx, edx;
	} queries[] = {
		{0, 0, 4, fourcc("kvmp"), fourcc("Test"), fourcc("pCPU")},
		{2, 0, 0x11111111, 0x22222222, 0x33333333, 0x44444444},
		{2, 9, 0x11111111, 0x22222222, 0x33333333, 0x44444444}, // index ignored
		{4, 0, 0x40000000, 0x40000001, 0x40000002, 0x40000003},
		{4, 1, 0x41000000, 0x41000001, 0x41000002, 0x41000003},
		{4, 2, 0, 0, 0, 0},                                     // no such subleaf
		{3, 0, 0, 0, 0, 0},                                     // in range, not set
		{0x20, 1, 0x41000000, 0x41000001, 0x41000002, 0x41000003}, // above: leaf 4.1
		{0x80000008, 0, 0x40000000, 0x40000001, 0x40000002, 0x40000003},
	};
	Assembler code(32, layout::kCode);
	for (const Query &q : queries)
		code.mov(Reg::eax, q.function).mov(Reg::ecx, q.index).cpuid().hlt();
	m.load(code);

	for (const Query &q : queries) {
		CONTEXT("CPUID %#x.%u", q.function, q.index);
		ASSERT_EXIT(exits::Hlt, m.vcpu); // nothing on the way: CPUID stayed in KVM
		const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
		ASSERT_EQ(regs.rax, q.eax);
		ASSERT_EQ(regs.rbx, q.ebx);
		ASSERT_EQ(regs.rcx, q.ecx);
		ASSERT_EQ(regs.rdx, q.edx);
	}

	const std::vector<kvm_cpuid_entry2> got = ASSERT_RESULT(m.vcpu.get_cpuid());
	ASSERT_EQ(got.size(), std::size(entries));
	for (std::size_t i = 0; i < got.size(); i++) {
		CONTEXT("entry %zu", i);
		ASSERT_EQ(got[i].function, entries[i].function);
		ASSERT_EQ(got[i].index, entries[i].index);
		ASSERT_EQ(got[i].flags, entries[i].flags);
		ASSERT_EQ(got[i].eax, entries[i].eax);
		ASSERT_EQ(got[i].ebx, entries[i].ebx);
		ASSERT_EQ(got[i].ecx, entries[i].ecx);
		ASSERT_EQ(got[i].edx, entries[i].edx);
	}
}

// The CPUID ioctls' limits: KVM_GET_CPUID2 with room for fewer entries than
// are set fails with E2BIG (and, as the failure skips the copy back, leaves
// nent alone; with room enough, 6.1 leaves nent alone too: it sets it only on
// the error path of kvm_vcpu_ioctl_get_cpuid2, so Vcpu::get_cpuid() searches
// for the count); KVM_SET_CPUID2 takes at most 256 entries (E2BIG); after the
// vCPU has run, KVM_SET_CPUID2 accepts only the same table again (EINVAL
// otherwise: kvm_set_cpuid -> kvm_cpuid_check_equal).
KVMPP_TEST(guest, cpuid_ioctls, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	const kvm_cpuid_entry2 entries[] = {
		cpuid_entry(0, 1, fourcc("kvmp"), fourcc("Test"), fourcc("pCPU")),
		cpuid_entry(1, 0x00000f00, 0, 0, 0),
		cpuid_entry(2, 1, 2, 3, 4),
	};
	ASSERT_RESULT(m.vcpu.set_cpuid(entries));

	struct {
		kvmpp::abi::Cpuid2Header header;
		kvm_cpuid_entry2 entries[2];
	} small{};
	small.header.nent = 2;
	ASSERT_ERRNO(ioctl(m.vcpu.fd(), kvmpp::abi::kGetCpuid2, &small), E2BIG);
	ASSERT_EQ(small.header.nent, 2u);
	struct {
		kvmpp::abi::Cpuid2Header header;
		kvm_cpuid_entry2 entries[3];
	} exact{};
	exact.header.nent = 3;
	ASSERT_OK(ioctl(m.vcpu.fd(), kvmpp::abi::kGetCpuid2, &exact));
	ASSERT_EQ(exact.entries[2].function, 2u);

	std::vector<kvm_cpuid_entry2> too_many(257, cpuid_entry(2, 0, 0, 0, 0));
	for (std::size_t i = 0; i < too_many.size(); i++)
		too_many[i].function = 0x40000000 + static_cast<std::uint32_t>(i);
	ASSERT_RESULT_ERRNO(m.vcpu.set_cpuid(too_many), E2BIG);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_cpuid()).size(), std::size(entries));

	// Before the first run the table can change freely ...
	ASSERT_RESULT(m.vcpu.set_cpuid(std::span(entries, 2)));
	ASSERT_RESULT(m.vcpu.set_cpuid(entries));
	Assembler code(16, layout::kCode);
	code.hlt();
	m.load(code);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	// ... after it, only to itself.
	ASSERT_RESULT(m.vcpu.set_cpuid(entries));
	ASSERT_RESULT_ERRNO(m.vcpu.set_cpuid(std::span(entries, 2)), EINVAL);
	kvm_cpuid_entry2 changed[std::size(entries)];
	std::copy(std::begin(entries), std::end(entries), changed);
	changed[2].eax = 5;
	ASSERT_RESULT_ERRNO(m.vcpu.set_cpuid(changed), EINVAL);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_cpuid())[2].eax, 1u);
}

// RDMSR/WRMSR of MSRs KVM emulates (IA32_SYSENTER_ESP/EIP/CS; 32-bit values:
// on SVM KVM keeps the upper halves of SYSENTER_ESP/EIP only for a guest
// whose CPUID vendor is Intel, svm_get_msr) stay in the kernel: the guest
// reads what KVM_SET_MSRS wrote and KVM_GET_MSRS reads what the guest wrote.
// KVM_GET/SET_MSRS return how many entries they did and stop at the first
// MSR they refuse (msr_io: the loop breaks on the first error).
KVMPP_TEST(guest, msrs, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	ASSERT_RESULT(m.vcpu.set_msr(x86::kMsrSysenterEsp, 0x90abcdef));
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrSysenterEsp)), 0x90abcdefu);

	Assembler code(64, layout::kCode);
	code.mov(Reg::edx, 0x5555)
		.mov(Reg::ecx, x86::kMsrSysenterEsp)
		.rdmsr()
		.out(0x50, Reg::eax)
		.mov(Reg::eax, Reg::edx)
		.out(0x51, Reg::eax)
		.mov(Reg::eax, 0x76543210)
		.xor_(Reg::edx, Reg::edx)
		.mov(Reg::ecx, x86::kMsrSysenterEip)
		.wrmsr()
		.hlt();
	m.load(code);
	const exits::Io low = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(low.port, 0x50);
	ASSERT_EQ(low.value(), 0x90abcdefu);
	const exits::Io high = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(high.port, 0x51);
	ASSERT_EQ(high.value(), 0u);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrSysenterEip)), 0x76543210u);

	// Stops at the unknown MSR: 1 read, 1 written.
	kvm_msr_entry reads[] = {{x86::kMsrSysenterEip, 0, 0}, {0x0000bad0, 0, 0}, {x86::kMsrSysenterEsp, 0, 0}};
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msrs(reads)), 1u);
	ASSERT_EQ(reads[0].data, 0x76543210u);
	const kvm_msr_entry writes[] = {{x86::kMsrSysenterCs, 0, 0x10}, {0x0000bad0, 0, 1}, {x86::kMsrSysenterEsp, 0, 0}};
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.set_msrs(writes)), 1u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrSysenterCs)), 0x10u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrSysenterEsp)), 0x90abcdefu);
	ASSERT_RESULT_ERRNO(m.vcpu.get_msr(0x0000bad0), EINVAL);
}
