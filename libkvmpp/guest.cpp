// SPDX-License-Identifier: GPL-2.0
//
// The test-guest layout: descriptor tables, page tables and vector stubs, and
// the SREGS that put a vCPU into each mode. The GDT in memory and the hidden
// segment state given to KVM come from the same table (kDescriptors), so a
// guest that reloads a segment register gets what it already had.
#include <kvmpp/guest.hpp>
#include <kvmpp/x86.hpp>

#include <stdexcept>
#include <string>
#include <utility>

namespace kvmpp::guest {
namespace {

constexpr std::size_t kVectors = 256;
constexpr std::size_t kStubSize = 8;
constexpr std::uint32_t kTssLimit = 0x67; // 104-byte TSS

// Page-table entry bits.
constexpr std::uint64_t kPresent = 1ULL << 0;
constexpr std::uint64_t kWritable = 1ULL << 1;
constexpr std::uint64_t kLargePage = 1ULL << 7;

// Interrupt gate, present, DPL 0 (32-bit gate in the IDT32, 64-bit in IDT64).
constexpr std::uint64_t kInterruptGate = 0x8e;

struct Descriptor {
	std::uint16_t selector;
	kvm_segment segment;
};

constexpr kvm_segment make_segment(std::uint16_t selector, std::uint64_t base, std::uint32_t limit,
				   std::uint8_t type, bool code_or_data, bool db, bool l)
{
	kvm_segment s{};
	s.base = base;
	s.limit = limit;
	s.selector = selector;
	s.type = type;
	s.present = 1;
	s.dpl = 0;
	s.db = db;
	s.s = code_or_data;
	s.l = l;
	s.g = limit > 0xfffff; // as KVM reports it (svm_get_segment synthesizes it so)
	s.avl = 0;
	s.unusable = 0;
	return s;
}

constexpr Descriptor kDescriptors[] = {
	{selector::kCode32, make_segment(selector::kCode32, 0, 0xffffffff, x86::kTypeCodeRxAccessed, true, true, false)},
	{selector::kData32, make_segment(selector::kData32, 0, 0xffffffff, x86::kTypeDataRwAccessed, true, true, false)},
	{selector::kCode64, make_segment(selector::kCode64, 0, 0xffffffff, x86::kTypeCodeRxAccessed, true, false, true)},
	{selector::kCode16, make_segment(selector::kCode16, 0, 0xffff, x86::kTypeCodeRxAccessed, true, false, false)},
	{selector::kData16, make_segment(selector::kData16, 0, 0xffff, x86::kTypeDataRwAccessed, true, false, false)},
	{selector::kTss, make_segment(selector::kTss, layout::kTss, kTssLimit, x86::kTypeTss32Busy, false, false, false)},
};

// The 8-byte descriptor of a segment (the low half, for a system segment).
std::uint64_t encode_descriptor(const kvm_segment &s)
{
	const std::uint64_t limit = s.g ? s.limit >> 12 : s.limit;
	return (limit & 0xffff) | (s.base & 0xffffff) << 16 | std::uint64_t(s.type & 0xf) << 40 |
	       std::uint64_t(s.s) << 44 | std::uint64_t(s.dpl & 3) << 45 |
	       std::uint64_t(s.present) << 47 | ((limit >> 16) & 0xf) << 48 |
	       std::uint64_t(s.avl) << 52 | std::uint64_t(s.l) << 53 | std::uint64_t(s.db) << 54 |
	       std::uint64_t(s.g) << 55 | ((s.base >> 24) & 0xff) << 56;
}

std::uint64_t gate_low(std::uint64_t handler, std::uint16_t code_selector)
{
	return (handler & 0xffff) | std::uint64_t(code_selector) << 16 | kInterruptGate << 40 |
	       ((handler >> 16) & 0xffff) << 48;
}

void write_pseudo_descriptor(const GuestMemory &memory, std::uint64_t at, std::uint16_t limit,
			     std::uint64_t base)
{
	memory.write<std::uint16_t>(at, limit);
	memory.write<std::uint64_t>(at + 2, base);
}

kvm_dtable dtable(std::uint64_t base, std::uint16_t limit)
{
	kvm_dtable table{};
	table.base = base;
	table.limit = limit;
	return table;
}

// The LDTR of a vCPU after reset, the same on SVM and VMX: null selector,
// limit 0xffff, type LDT, present.
kvm_segment reset_ldt()
{
	kvm_segment ldt = make_segment(0, 0, 0xffff, x86::kTypeLdt, false, false, false);
	return ldt;
}

} // namespace

const char *mode_name(Mode mode) noexcept
{
	switch (mode) {
	case Mode::real: return "real";
	case Mode::protected16: return "protected16";
	case Mode::protected32: return "protected32";
	case Mode::paged32: return "paged32";
	case Mode::pae32: return "pae32";
	case Mode::long64: return "long64";
	}
	return "?";
}

unsigned code_bits(Mode mode) noexcept
{
	switch (mode) {
	case Mode::real:
	case Mode::protected16:
		return 16;
	case Mode::long64:
		return 64;
	default:
		return 32;
	}
}

bool has_paging(Mode mode) noexcept
{
	return mode == Mode::paged32 || mode == Mode::pae32 || mode == Mode::long64;
}

kvm_segment gdt_segment(std::uint16_t selector)
{
	for (const Descriptor &descriptor : kDescriptors)
		if (descriptor.selector == selector)
			return descriptor.segment;
	throw std::invalid_argument("guest::gdt_segment: no GDT descriptor " + std::to_string(selector));
}

kvm_segment real_mode_segment(std::uint16_t selector, bool code)
{
	return make_segment(selector, std::uint64_t(selector) << 4, 0xffff,
			    code ? x86::kTypeCodeRxAccessed : x86::kTypeDataRwAccessed, true, false,
			    false);
}

void write_system_tables(const GuestMemory &memory)
{
	if (memory.size() < layout::kMinMemory)
		throw std::invalid_argument("guest::write_system_tables: memory smaller than layout::kMinMemory");

	// Vector stubs: mov al, vector; out kVectorPort, al; 1: hlt; jmp 1b.
	// The same bytes in 16-, 32- and 64-bit code.
	for (std::size_t vector = 0; vector < kVectors; vector++) {
		const std::uint64_t at = layout::kVectorStubs + vector * kStubSize;
		Assembler stub(16, at);
		stub.mov(Reg::al, vector).out(kVectorPort, Reg::al);
		Label halt = stub.here();
		stub.hlt().jmp(halt);
		while (stub.size() < kStubSize)
			stub.nop();
		memory.write_bytes(at, stub.bytes());

		// Real mode: segment 0, offset = the stub's address.
		memory.write<std::uint32_t>(layout::kIvt + vector * 4, static_cast<std::uint32_t>(at));
		memory.write<std::uint64_t>(layout::kIdt32 + vector * 8, gate_low(at, selector::kCode32));
		memory.write<std::uint64_t>(layout::kIdt64 + vector * 16, gate_low(at, selector::kCode64));
		memory.write<std::uint64_t>(layout::kIdt64 + vector * 16 + 8, at >> 32);
	}

	memory.write<std::uint64_t>(layout::kGdt, 0); // the null descriptor
	for (const Descriptor &descriptor : kDescriptors)
		memory.write<std::uint64_t>(layout::kGdt + descriptor.selector,
					    encode_descriptor(descriptor.segment));
	memory.write<std::uint64_t>(layout::kGdt + selector::kTss + 8, layout::kTss >> 32);

	write_pseudo_descriptor(memory, layout::kGdtr, selector::kGdtLimit, layout::kGdt);
	write_pseudo_descriptor(memory, layout::kIdtr32, kVectors * 8 - 1, layout::kIdt32);
	write_pseudo_descriptor(memory, layout::kIdtr64, kVectors * 16 - 1, layout::kIdt64);
	write_pseudo_descriptor(memory, layout::kIdtrEmpty, 0, 0);

	// 32-bit paging: 4 MiB pages; PDE i maps [i * 4 MiB) for the first GiB
	// and again (i - 256) * 4 MiB for the alias GiB.
	constexpr std::uint64_t k4MiB = 1ULL << 22, k2MiB = 1ULL << 21;
	constexpr std::size_t kPdes32PerGiB = layout::kMappedSize / k4MiB;
	for (std::size_t i = 0; i < 1024; i++) {
		std::uint64_t pde = 0;
		if (i < 2 * kPdes32PerGiB)
			pde = (i % kPdes32PerGiB) * k4MiB | kLargePage | kWritable | kPresent;
		memory.write<std::uint32_t>(layout::kPageDirectory32 + i * 4, static_cast<std::uint32_t>(pde));
	}

	// PAE and 4-level paging share one page directory of 2 MiB pages. PAE
	// PDPTEs allow no bits but P (and caching bits): RW there is reserved.
	for (std::size_t i = 0; i < 512; i++)
		memory.write<std::uint64_t>(layout::kPageDirectory + i * 8,
					    i * k2MiB | kLargePage | kWritable | kPresent);
	for (std::size_t i = 0; i < 4; i++)
		memory.write<std::uint64_t>(layout::kPdptPae + i * 8,
					    i < 2 ? layout::kPageDirectory | kPresent : 0);
	for (std::size_t i = 0; i < 512; i++) {
		memory.write<std::uint64_t>(layout::kPml4 + i * 8,
					    i == 0 ? layout::kPdpt64 | kWritable | kPresent : 0);
		memory.write<std::uint64_t>(layout::kPdpt64 + i * 8,
					    i < 2 ? layout::kPageDirectory | kWritable | kPresent : 0);
	}
}

kvm_sregs mode_sregs(Mode mode, const kvm_sregs &base)
{
	kvm_sregs s = base;
	kvm_segment code, data;
	switch (mode) {
	case Mode::real:
		code = real_mode_segment(0, true);
		data = real_mode_segment(0, false);
		break;
	case Mode::protected16:
		code = gdt_segment(selector::kCode16);
		data = gdt_segment(selector::kData16);
		break;
	case Mode::long64:
		code = gdt_segment(selector::kCode64);
		data = gdt_segment(selector::kData32);
		break;
	default:
		code = gdt_segment(selector::kCode32);
		data = gdt_segment(selector::kData32);
		break;
	}
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = gdt_segment(selector::kTss);
	s.ldt = reset_ldt();
	s.gdt = dtable(layout::kGdt, selector::kGdtLimit);
	if (mode == Mode::real)
		s.idt = dtable(layout::kIvt, 0x3ff);
	else if (mode == Mode::long64)
		s.idt = dtable(layout::kIdt64, kVectors * 16 - 1);
	else
		s.idt = dtable(layout::kIdt32, kVectors * 8 - 1);

	s.cr2 = 0;
	s.cr3 = 0;
	s.cr4 = 0;
	s.efer = 0;
	switch (mode) {
	case Mode::real:
		// The architectural reset value: caches disabled, ET set.
		s.cr0 = x86::kCr0Cd | x86::kCr0Nw | x86::kCr0Et;
		break;
	case Mode::protected16:
	case Mode::protected32:
		s.cr0 = x86::kCr0Pe | x86::kCr0Et;
		break;
	case Mode::paged32:
		s.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg;
		s.cr4 = x86::kCr4Pse;
		s.cr3 = layout::kPageDirectory32;
		break;
	case Mode::pae32:
		s.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg;
		s.cr4 = x86::kCr4Pae;
		s.cr3 = layout::kPdptPae;
		break;
	case Mode::long64:
		s.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg;
		s.cr4 = x86::kCr4Pae;
		s.cr3 = layout::kPml4;
		s.efer = x86::kEferLme | x86::kEferLma;
		break;
	}
	return s;
}

Result<void> enter_mode(const Vcpu &vcpu, Mode mode, std::uint64_t entry)
{
	Result<kvm_sregs> sregs = vcpu.get_sregs();
	if (!sregs)
		return sregs.error();
	if (Result<void> r = vcpu.set_sregs(mode_sregs(mode, *sregs)); !r)
		return r;
	kvm_regs regs{};
	regs.rsp = layout::kStackTop;
	regs.rflags = x86::kRflagsFixed;
	regs.rip = entry;
	return vcpu.set_regs(regs);
}

Result<Machine> Machine::create(const System &system, Mode mode, std::size_t memory_size)
{
	Machine machine;
	machine.mode = mode;

	Result<Vm> vm = system.create_vm();
	if (!vm)
		return vm.error();
	machine.vm = std::move(*vm);

	Result<GuestMemory> memory = GuestMemory::create(memory_size);
	if (!memory)
		return memory.error();
	machine.memory = std::move(*memory);
	write_system_tables(machine.memory);
	if (Result<void> r = machine.vm.map_memory(0, 0, machine.memory); !r)
		return r.error();

	Result<Vcpu> vcpu = machine.vm.create_vcpu(0);
	if (!vcpu)
		return vcpu.error();
	machine.vcpu = std::move(*vcpu);
	if (Result<void> r = enter_mode(machine.vcpu, mode, layout::kCode); !r)
		return r.error();
	return Result<Machine>(std::move(machine));
}

void Machine::load(const Assembler &code) const
{
	memory.write_bytes(code.origin(), code.bytes());
}

} // namespace kvmpp::guest
