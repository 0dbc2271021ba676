// SPDX-License-Identifier: GPL-2.0
//
// Test guests: a VM with memory at guest-physical 0 and one vCPU, put into a
// chosen CPU mode with the system tables that mode needs, ready to run code
// built with guest::Assembler.
//
//     using namespace kvmpp::guest;
//     Machine m = Machine::create(system, Mode::long64).value();
//     Assembler code(code_bits(Mode::long64), layout::kCode);
//     code.mov(Reg::eax, 42).out(0x10, Reg::al).hlt();
//     m.load(code);
//     kvmpp::Exit exit = m.vcpu.run().value();      // KVM_EXIT_IO, port 0x10
//
// Every mode starts with the same guest-physical layout (see `layout`): real-
// mode IVT, a GDT with flat 16/32/64-bit code and data descriptors and a TSS,
// 32- and 64-bit IDTs, page tables for 32-bit (4 MiB pages), PAE and 4-level
// (2 MiB pages) paging that identity-map the first GiB and map it a second
// time at layout::kAlias, a stack and room for code and data (kLowData is
// reachable from 16-bit code, kData is not). All of it is
// written for every mode, so a guest can switch modes by itself with LGDT,
// MOV CR0 and a far jump.
//
// Every interrupt vector of the IVT and the IDTs leads to a stub that writes
// the vector number to port kVectorPort (OUT imm8, al) and halts: an exception
// in the guest shows up as KVM_EXIT_IO on that port followed by KVM_EXIT_HLT.
//
// Thread safety: as Vm/GuestMemory/Vcpu (a Machine is just the three).
#pragma once

#include "assembler.hpp"
#include "error.hpp"
#include "memory.hpp"
#include "system.hpp"
#include "vcpu.hpp"
#include "vm.hpp"

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>

namespace kvmpp::guest {

enum class Mode : std::uint8_t {
	real,        // real mode (CR0.PE = 0), 16-bit code
	protected16, // protected mode, 16-bit code and data segments, no paging
	protected32, // protected mode, flat 32-bit segments, no paging
	paged32,     // 32-bit paging (CR4.PSE, 4 MiB pages)
	pae32,       // PAE paging (2 MiB pages)
	long64,      // long mode, 64-bit code, 4-level paging (2 MiB pages)
};

inline constexpr Mode kAllModes[] = {Mode::real,    Mode::protected16, Mode::protected32,
				     Mode::paged32, Mode::pae32,       Mode::long64};

const char *mode_name(Mode mode) noexcept;        // "real", "protected16", ...
unsigned code_bits(Mode mode) noexcept;           // 16, 16, 32, 32, 32, 64
bool has_paging(Mode mode) noexcept;              // paged32, pae32, long64

// Guest-physical layout shared by all modes.
namespace layout {
inline constexpr std::uint64_t kIvt = 0x0;          // real-mode vectors (1 KiB)
inline constexpr std::uint64_t kGdtr = 0xf00;       // pseudo-descriptors for LGDT/LIDT:
inline constexpr std::uint64_t kIdtr32 = 0xf10;     //   limit (2 bytes) + base (8 bytes)
inline constexpr std::uint64_t kIdtr64 = 0xf20;
inline constexpr std::uint64_t kIdtrEmpty = 0xf30;  //   limit 0: any vector faults
inline constexpr std::uint64_t kGdt = 0x1000;
inline constexpr std::uint64_t kTss = 0x1800;       // 104-byte TSS, zeroed
inline constexpr std::uint64_t kIdt32 = 0x2000;     // 256 8-byte gates
inline constexpr std::uint64_t kVectorStubs = 0x2800; // 256 8-byte stubs
inline constexpr std::uint64_t kIdt64 = 0x3000;     // 256 16-byte gates
inline constexpr std::uint64_t kPageDirectory32 = 0x4000; // 1024 PDEs, 4 MiB pages
inline constexpr std::uint64_t kPdptPae = 0x5000;   // 4 PDPTEs
inline constexpr std::uint64_t kPageDirectory = 0x6000; // 512 PDEs, 2 MiB pages (PAE, long)
inline constexpr std::uint64_t kPml4 = 0x7000;
inline constexpr std::uint64_t kPdpt64 = 0x8000;
inline constexpr std::uint64_t kStackTop = 0xa000;  // stack: the page below
inline constexpr std::uint64_t kLowData = 0xa000;   // free for tests, 8 KiB, below 64 KiB
inline constexpr std::uint64_t kCode = 0xc000;      // code: up to kData
inline constexpr std::uint64_t kData = 0x20000;     // free for tests, up to the end of memory
inline constexpr std::uint64_t kMinMemory = 0x100000; // 1 MiB
inline constexpr std::uint64_t kMappedSize = 0x40000000; // paging maps [0, 1 GiB) ...
inline constexpr std::uint64_t kAlias = 0x40000000;      // ... and again at [1 GiB, 2 GiB)
} // namespace layout

// GDT selectors (RPL 0).
namespace selector {
inline constexpr std::uint16_t kCode32 = 0x08;
inline constexpr std::uint16_t kData32 = 0x10; // also the data segment of 64-bit code
inline constexpr std::uint16_t kCode64 = 0x18;
inline constexpr std::uint16_t kCode16 = 0x20;
inline constexpr std::uint16_t kData16 = 0x28;
inline constexpr std::uint16_t kTss = 0x30;    // 16 bytes (a 64-bit TSS descriptor)
inline constexpr std::uint16_t kGdtLimit = 0x3f;
} // namespace selector

// The port every vector stub reports its vector number to.
inline constexpr std::uint8_t kVectorPort = 0xf1;

// Writes the layout's tables into `memory`, which is to be mapped at guest-
// physical 0 and must hold at least layout::kMinMemory bytes.
void write_system_tables(const GuestMemory &memory);

// The segment register value (hidden part included) that loading the GDT
// descriptor `selector` gives. Throws std::invalid_argument for a selector
// the GDT does not have.
kvm_segment gdt_segment(std::uint16_t selector);

// The segment register value of real-mode segment `selector` (base =
// selector * 16, 64 KiB limit), a code segment if `code`.
kvm_segment real_mode_segment(std::uint16_t selector, bool code);

// `base` (normally the vCPU's current SREGS) changed for `mode`: segments,
// GDTR/IDTR, CR0/CR3/CR4, EFER. Other fields (APIC base, CR8, the interrupt
// bitmap) are kept.
kvm_sregs mode_sregs(Mode mode, const kvm_sregs &base);

// Puts the vCPU into `mode` at `entry`: SREGS from mode_sregs(), then REGS
// with every GPR zero, RSP = layout::kStackTop, RFLAGS = 0x2, RIP = entry.
// The tables must already be in mapped memory (PAE reads its PDPTEs here).
Result<void> enter_mode(const Vcpu &vcpu, Mode mode, std::uint64_t entry = layout::kCode);

// A VM, its memory (slot 0 at guest-physical 0, with the tables written) and
// vCPU 0 in `mode` at layout::kCode. Members are public: tests poke at them.
struct Machine {
	static Result<Machine> create(const System &system, Mode mode,
				      std::size_t memory_size = layout::kMinMemory);

	// Copies the code to its origin (guest-physical == its address).
	void load(const Assembler &code) const;

	Vm vm;
	GuestMemory memory;
	Vcpu vcpu; // destroyed first
	Mode mode = Mode::real;
};

} // namespace kvmpp::guest
