// SPDX-License-Identifier: GPL-2.0
//
// MMIO: guest accesses to guest-physical memory that no memory slot backs
// reach userspace as KVM_EXIT_MMIO through KVM's instruction emulator
// (x86_emulate_instruction(), emulator_read_write(),
// emulator_read_write_onepage(), complete_emulated_mmio() in
// arch/x86/kvm/x86.c; the decoder and string/REP handling in
// arch/x86/kvm/emulate.c of Linux 6.1). Also: writes to a KVM_MEM_READONLY
// slot, instructions the emulator does not know (KVM_EXIT_INTERNAL_ERROR,
// prepare_emulation_failure_exit()) and KVM_TRANSLATE
// (kvm_arch_vcpu_ioctl_translate()). Coalesced MMIO/PIO is in
// coalesced_mmio_test.cpp.
//
// Most instruction tests are differential: the same instruction runs once on
// RAM (executed by the CPU) and once on MMIO (emulated by KVM); the exits
// must carry exactly the bytes the CPU read and wrote, and the registers,
// RFLAGS and memory must come out the same.
#include "mmio_support.h"

#include <kvmpp/x86.hpp>

#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

using namespace kvmpp::test;
using namespace kvmpp::test::mmio;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;
namespace x86 = kvmpp::x86;

namespace {

constexpr std::uint64_t kArith = 0x8d5; // CF PF AF ZF SF OF set (and bit 1)
constexpr std::uint64_t kDf = 1ULL << 10;

// ModRM byte for [rbx]/[ebx] (32/64-bit addressing) with `reg` in the reg field.
constexpr std::uint8_t rbx_(unsigned reg) { return static_cast<std::uint8_t>(0x03 | reg << 3); }
// ... and for [bx] (16-bit addressing).
constexpr std::uint8_t bx_(unsigned reg) { return static_cast<std::uint8_t>(0x07 | reg << 3); }

using Bytes = std::vector<std::uint8_t>;
using RegField = __u64 kvm_regs::*; // a register in kvm_regs

// One MMIO exit a case expects, at an offset from the operand address.
struct Access {
	std::int64_t offset;
	unsigned len;
	bool write;
};

// One instruction run differentially. `accesses` are the MMIO exits KVM gives
// for it, offsets relative to the operand address.
struct Case {
	const char *name;
	Bytes insn;
	std::vector<Access> accesses;
	std::uint64_t rax = 0x1111111111111111, rcx = 0x2222222222222222, rdx = 0x3333333333333333;
	std::vector<std::uint64_t> rflags_in = {x86::kRflagsFixed, kArith};
	// The register that holds the operand address (rbx unless a string op).
	RegField address = &kvm_regs::rbx;
	std::int64_t start = 0;          // the address register points this far from the base
	RegField other = nullptr; // a second address register, pointing into RAM ...
	bool other_in_pattern = false; // ... or into the pattern (MMIO too), other_offset from it
	std::int64_t other_offset = 0;
	std::uint64_t rsi_rdi_rcx_in = 0; // rcx for REP string ops (0: rcx as above)
	bool xmm = false;                 // compare xmm0 (SSE moves)
	bool mm = false;                  // compare mm0 (MMX moves)
	// RFLAGS bits the manuals leave undefined for this case: not compared
	// (QEMU, Bochs and the host CPU under KVM's emulator each pick their own).
	std::uint64_t undefined_flags = 0;
	// The hypervisor may not emulate the instruction at all (Linux 6.1's KVM
	// does not know MOVD/MOVQ 0F 6E/7E, D6, and reads CMPXCHG16B's operand
	// before it declines it): KVM_EXIT_INTERNAL_ERROR (emulation) is then
	// accepted in place of any of the exits; run such a case on a machine
	// of its own (the failure queues #UD).
	bool may_be_unemulated = false;
};

// Bytes the guest finds in memory (RAM run) or that userspace answers with
// (MMIO run): kPatternSize bytes around the operand address.
constexpr std::size_t kPatternSize = 0x80;
constexpr std::int64_t kPatternCenter = 0x40; // the operand address is base + 0x40
std::uint8_t pattern_byte(std::size_t i) { return static_cast<std::uint8_t>(0x80 + i * 0x3b + (i >> 3)); }

struct Outcome {
	kvm_regs regs;
	std::uint8_t memory[kPatternSize];
	std::uint8_t other[kPatternSize];
	std::uint8_t xmm0[16];
	std::uint8_t mm0[8];
};

struct Differential {
	Differential(Machine &m_, unsigned bits_, std::uint64_t ram_, std::uint64_t mmio_,
		     std::uint64_t other_, std::uint64_t segment_base_ = 0)
		: m(m_), bits(bits_), ram(ram_), mmio(mmio_), other(other_), segment_base(segment_base_)
	{
	}

	Machine &m;
	unsigned bits;
	std::uint64_t ram;   // RAM base of the pattern (RAM run)
	std::uint64_t mmio;  // MMIO base (MMIO run)
	std::uint64_t other; // RAM for a second operand (both runs)
	std::uint64_t segment_base; // subtracted from addresses (segment override)

	Outcome run(const Case &c, std::uint64_t rflags, std::uint64_t base, bool on_mmio)
	{
		for (std::size_t i = 0; i < kPatternSize; i++) {
			m.memory.write<std::uint8_t>(other + i, static_cast<std::uint8_t>(0x10 + i * 5));
			if (!on_mmio)
				m.memory.write<std::uint8_t>(ram + i, pattern_byte(i));
		}
		Bytes code = c.insn;
		code.push_back(0xf4); // hlt
		m.memory.write_bytes(layout::kCode, std::span<const std::uint8_t>(code));

		if (c.xmm || c.mm) {
			kvm_fpu fpu = ASSERT_RESULT(m.vcpu.get_fpu());
			for (unsigned i = 0; i < 16; i++)
				fpu.xmm[0][i] = static_cast<std::uint8_t>(0xe0 + i);
			for (unsigned i = 0; i < 8; i++)
				fpu.fpr[0][i] = static_cast<std::uint8_t>(0xc0 + i);
			fpu.fsw = 0; // TOP = 0: mm0 is fpr[0]
			ASSERT_RESULT(m.vcpu.set_fpu(fpu));
		}
		kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
		regs.rax = c.rax;
		regs.rcx = c.rsi_rdi_rcx_in ? c.rsi_rdi_rcx_in : c.rcx;
		regs.rdx = c.rdx;
		regs.rsi = regs.rdi = regs.rbx = 0;
		regs.r8 = 0x0123456789abcdef;
		regs.*c.address = base + kPatternCenter + c.start - segment_base;
		if (c.other)
			regs.*c.other = (c.other_in_pattern ? base + c.other_offset : other) +
					 kPatternCenter - segment_base;
		if (bits < 64) { // 32-bit registers
			for (RegField r : {&kvm_regs::rax, &kvm_regs::rcx, &kvm_regs::rdx,
							   &kvm_regs::rbx, &kvm_regs::rsi, &kvm_regs::rdi})
				regs.*r &= 0xffffffff;
			regs.r8 = 0;
		}
		regs.rflags = rflags;
		regs.rip = layout::kCode;
		ASSERT_RESULT(m.vcpu.set_regs(regs));

		if (on_mmio) {
			for (const Access &a : c.accesses) {
				CONTEXT("access at offset %lld, %u bytes, %s", static_cast<long long>(a.offset),
					a.len, a.write ? "write" : "read");
				const std::uint64_t at = base + kPatternCenter + a.offset;
				// The next exit: this access, or (where allowed) an emulation failure.
				auto next_mmio = [&](bool write) -> std::optional<exits::Mmio> {
					if (!c.may_be_unemulated)
						return expect_mmio(m.vcpu, at, a.len, write);
					const kvmpp::Exit exit = ASSERT_RESULT(m.vcpu.run());
					if (const auto *e = std::get_if<exits::InternalError>(&exit)) {
						ASSERT_EQ(e->suberror, static_cast<std::uint32_t>(KVM_INTERNAL_ERROR_EMULATION));
						return std::nullopt;
					}
					const auto *e = std::get_if<exits::Mmio>(&exit);
					ASSERT_TRUE(e != nullptr);
					ASSERT_EQ(e->phys_addr, at);
					ASSERT_EQ(e->data.size(), a.len);
					ASSERT_EQ(e->is_write, write);
					return *e;
				};
				const std::optional<exits::Mmio> e = next_mmio(a.write);
				if (!e) {
					unemulated_ = true;
					return Outcome{};
				}
				if (a.write) {
					// Compared with the RAM run's memory by the caller.
					writes_.push_back({at - base, Bytes(e->data.begin(), e->data.end())});
				} else {
					std::uint8_t answer[16];
					for (unsigned i = 0; i < a.len; i++)
						answer[i] = pattern_byte(at - base + i);
					std::memcpy(e->data.data(), answer, a.len);
				}
			}
		}
		ASSERT_EXIT(exits::Hlt, m.vcpu);

		Outcome out{};
		out.regs = ASSERT_RESULT(m.vcpu.get_regs());
		for (std::size_t i = 0; i < kPatternSize; i++) {
			out.memory[i] = on_mmio ? 0 : m.memory.read<std::uint8_t>(ram + i);
			out.other[i] = m.memory.read<std::uint8_t>(other + i);
		}
		if (c.xmm || c.mm) {
			const kvm_fpu fpu = ASSERT_RESULT(m.vcpu.get_fpu());
			std::memcpy(out.xmm0, fpu.xmm[0], 16);
			std::memcpy(out.mm0, fpu.fpr[0], 8);
		}
		return out;
	}

	void check(const Case &c)
	{
		for (std::uint64_t rflags : c.rflags_in) {
			CONTEXT("%s in %u-bit code, RFLAGS %#llx before", c.name, bits,
				static_cast<unsigned long long>(rflags));
			writes_.clear();
			unemulated_ = false;
			const Outcome cpu = run(c, rflags, ram, false);
			const Outcome kvm = run(c, rflags, mmio, true);
			if (unemulated_) {
				note("%s: not emulated (KVM_EXIT_INTERNAL_ERROR)", c.name);
				return;
			}

			// What KVM wrote to MMIO is what the CPU wrote to RAM.
			for (const auto &[offset, data] : writes_)
				for (std::size_t i = 0; i < data.size(); i++) {
					CONTEXT("byte %zu written at pattern offset %#llx", i,
						static_cast<unsigned long long>(offset));
					ASSERT_EQ(data[i], cpu.memory[offset + i]);
				}
			// Every byte the CPU changed was written through an exit.
			for (std::size_t i = 0; i < kPatternSize; i++) {
				if (cpu.memory[i] == pattern_byte(i))
					continue;
				bool written = false;
				for (const auto &[offset, data] : writes_)
					written |= i >= offset && i < offset + data.size();
				CONTEXT("pattern offset %#zx changed by the CPU", i);
				ASSERT_TRUE(written);
			}
			const std::uint64_t delta = mmio - ram;
			auto address = [&](RegField r) {
				return r == c.address || (c.other_in_pattern && r == c.other);
			};
			ASSERT_EQ(kvm.regs.rip, cpu.regs.rip);
			ASSERT_EQ(kvm.regs.rip, layout::kCode + c.insn.size() + 1);
			ASSERT_EQ(kvm.regs.rflags & ~c.undefined_flags, cpu.regs.rflags & ~c.undefined_flags);
			ASSERT_EQ(kvm.regs.rax, cpu.regs.rax);
			ASSERT_EQ(kvm.regs.rcx, cpu.regs.rcx);
			ASSERT_EQ(kvm.regs.rdx, cpu.regs.rdx);
			ASSERT_EQ(kvm.regs.r8, cpu.regs.r8);
			ASSERT_EQ(kvm.regs.rbx - (address(&kvm_regs::rbx) ? delta : 0), cpu.regs.rbx);
			ASSERT_EQ(kvm.regs.rsi - (address(&kvm_regs::rsi) ? delta : 0), cpu.regs.rsi);
			ASSERT_EQ(kvm.regs.rdi - (address(&kvm_regs::rdi) ? delta : 0), cpu.regs.rdi);
			for (std::size_t i = 0; i < kPatternSize; i++) {
				CONTEXT("other operand byte %zu", i);
				ASSERT_EQ(kvm.other[i], cpu.other[i]);
			}
			if (c.xmm)
				for (unsigned i = 0; i < 16; i++) {
					CONTEXT("xmm0 byte %u", i);
					ASSERT_EQ(kvm.xmm0[i], cpu.xmm0[i]);
				}
			if (c.mm)
				for (unsigned i = 0; i < 8; i++) {
					CONTEXT("mm0 byte %u", i);
					ASSERT_EQ(kvm.mm0[i], cpu.mm0[i]);
				}
		}
	}

	std::vector<std::pair<std::uint64_t, Bytes>> writes_;
	bool unemulated_ = false;
};

Access rd(std::int64_t offset, unsigned len) { return {offset, len, false}; }
Access wr(std::int64_t offset, unsigned len) { return {offset, len, true}; }

// A long-mode machine with the hole, SSE on, ready for Differential.
Differential long_mode_differential(Machine &m)
{
	enable_sse(m);
	return Differential(m, 64, kRam, kMmio, kRam + 0x200);
}

void check_all(Differential &d, const std::vector<Case> &cases)
{
	for (const Case &c : cases) {
		note("%s", c.name);
		d.check(c);
	}
}

} // namespace

// 1, 2, 4 and 8-byte reads and writes in every CPU mode: each is one exit
// with the exact address, length and data; a read's answer lands in the
// register (merged for 1 and 2 bytes, zero-extended for 4 bytes in 64-bit
// code), and RIP moves past the instruction. 8-byte accesses outside 64-bit
// code use MMX MOVQ (0F 6F / 0F 7F, which KVM emulates).
KVMPP_TEST(mmio, modes_and_sizes, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : kAllModes) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = mmio_machine(kvm, mode);
		const unsigned bits = code_bits(mode);
		const bool b16 = bits == 16, b64 = bits == 64;
		const std::uint64_t ram = b16 ? kRam16 : kRam;
		auto modrm = [&](unsigned reg) { return b16 ? bx_(reg) : rbx_(reg); };
		// [si]/[esi] for the RAM copy of mm0.
		const std::uint8_t at_si = b16 ? 0x04 : 0x06;
		m.memory.write<std::uint64_t>(ram, 0x8877665544332211);

		Assembler code(bits, layout::kCode);
		std::vector<std::uint64_t> halts;
		auto hlt = [&] { code.hlt(); halts.push_back(code.address()); };
		code.mov(b16 ? Reg::bx : Reg::ebx, kMmio).mov(b16 ? Reg::si : Reg::esi, ram);
		code.mov(Reg::eax, 0x44332211);
		code.raw({0x88, modrm(0)});                    // mov [bx], al
		if (b16) code.raw({0x89, modrm(0)});           // mov [bx], ax
		else code.raw({0x66, 0x89, modrm(0)});
		if (b16) code.raw({0x66, 0x89, modrm(0)});     // mov [bx], eax
		else code.raw({0x89, modrm(0)});
		if (b64) code.mov(Reg::rax, 0x8877665544332211).raw({0x48, 0x89, modrm(0)});
		else code.raw({0x0f, 0x6f, at_si, 0x0f, 0x7f, modrm(0)}); // movq mm0, [si]; movq [bx], mm0
		hlt();
		code.raw({0x8a, modrm(0)});                    // mov al, [bx]
		hlt();
		if (b16) code.raw({0x8b, modrm(0)});           // mov ax, [bx]
		else code.raw({0x66, 0x8b, modrm(0)});
		hlt();
		if (b16) code.raw({0x66, 0x8b, modrm(0)});     // mov eax, [bx]
		else code.raw({0x8b, modrm(0)});
		hlt();
		if (b64) code.raw({0x48, 0x8b, modrm(0)});     // mov rax, [rbx]
		else code.raw({0x0f, 0x6f, modrm(0), 0x0f, 0x7f, at_si}); // movq mm0, [bx]; movq [si], mm0
		hlt();
		m.load(code);

		expect_write(m.vcpu, kMmio, 1, 0x11);
		expect_write(m.vcpu, kMmio, 2, 0x2211);
		expect_write(m.vcpu, kMmio, 4, 0x44332211);
		expect_write(m.vcpu, kMmio, 8, 0x8877665544332211);
		auto halted = [&](std::size_t i) {
			ASSERT_EXIT(exits::Hlt, m.vcpu);
			const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
			ASSERT_EQ(regs.rip, halts[i]);
			return b64 ? regs.rax : regs.rax & 0xffffffff;
		};
		const std::uint64_t rax = halted(0);
		ASSERT_EQ(rax, b64 ? 0x8877665544332211 : 0x44332211);
		expect_read(m.vcpu, kMmio, 1, 0xa1);
		ASSERT_EQ(halted(1), (rax & ~0xffULL) | 0xa1);
		expect_read(m.vcpu, kMmio, 2, 0xb2c3);
		ASSERT_EQ(halted(2), (rax & ~0xffffULL) | 0xb2c3);
		expect_read(m.vcpu, kMmio, 4, 0xd4e5f607);
		ASSERT_EQ(halted(3), 0xd4e5f607u); // zero-extended in 64-bit code
		expect_read(m.vcpu, kMmio, 8, 0x0123456789abcdef);
		const std::uint64_t last = halted(4);
		if (b64)
			ASSERT_EQ(last, 0x0123456789abcdefu);
		else
			ASSERT_EQ(m.memory.read<std::uint64_t>(ram), 0x0123456789abcdefu);
	}
}

// MOV with a memory offset (A0-A3): 8-bit and full-size accumulator, with a
// 64-bit offset in 64-bit code (also one that only the guest's page tables
// map: kAlias + kMmio), a 32-bit one with 0x67, and 16/32-bit code.
KVMPP_TEST(mmio, mov_moffs, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : {Mode::real, Mode::protected32, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = mmio_machine(kvm, mode);
		const unsigned bits = code_bits(mode);
		const Reg acc = bits == 64 ? Reg::rax : bits == 32 ? Reg::eax : Reg::ax;
		const unsigned size = reg_width(acc);
		const std::uint64_t address = bits == 64 ? layout::kAlias + kMmio + 8 : kMmio + 8;
		Assembler code(bits, layout::kCode);
		code.mov(Reg::eax, 0x7a6b5c4d);
		if (bits == 64)
			code.mov(Reg::rax, 0x1a2b3c4d7a6b5c4d);
		code.store(address, Reg::al).store(address + 1, acc);
		code.load(Reg::al, address + 2).load(acc, address + 3);
		if (bits == 64) // 67 A1 moffs32: mov eax, [kMmio + 0x20]
			code.raw({0x67, 0xa1, static_cast<std::uint8_t>(kMmio + 0x20), (kMmio + 0x20) >> 8, 0, 0});
		code.hlt();
		const std::uint64_t end = code.address();
		m.load(code);

		const std::uint64_t phys = kMmio + 8;
		expect_write(m.vcpu, phys, 1, 0x4d);
		expect_write(m.vcpu, phys + 1, size, bits == 64 ? 0x1a2b3c4d7a6b5c4d : bits == 32 ? 0x7a6b5c4d : 0x5c4d);
		expect_read(m.vcpu, phys + 2, 1, 0x99);
		expect_read(m.vcpu, phys + 3, size, 0xfedcba9876543210);
		std::uint64_t want = bits == 64 ? 0xfedcba9876543210 : bits == 32 ? 0x76543210 : 0x7a6b3210;
		if (bits == 64) {
			expect_read(m.vcpu, kMmio + 0x20, 4, 0x31323334);
			want = 0x31323334;
		}
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
		ASSERT_EQ(regs.rip, end);
		ASSERT_EQ(bits == 64 ? regs.rax : regs.rax & 0xffffffff, want);
	}
}

// The MOV forms with a ModRM operand (88/89/8A/8B, C6/C7), MOVZX/MOVSX/MOVSXD,
// REX.W and REX.R (r8), 0x66: one exit each, of the operand's size.
KVMPP_TEST(mmio, mov_forms, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	check_all(d, {
		{"mov [rbx], cl", {0x88, rbx_(1)}, {wr(0, 1)}},
		{"mov [rbx], cx", {0x66, 0x89, rbx_(1)}, {wr(0, 2)}},
		{"mov [rbx], ecx", {0x89, rbx_(1)}, {wr(0, 4)}},
		{"mov [rbx], rcx", {0x48, 0x89, rbx_(1)}, {wr(0, 8)}},
		{"mov [rbx], r8", {0x4c, 0x89, rbx_(0)}, {wr(0, 8)}},
		{"mov [rbx+0x11], edx", {0x89, 0x53, 0x11}, {wr(0x11, 4)}},
		{"mov cl, [rbx]", {0x8a, rbx_(1)}, {rd(0, 1)}},
		{"mov cx, [rbx]", {0x66, 0x8b, rbx_(1)}, {rd(0, 2)}},
		{"mov ecx, [rbx]", {0x8b, rbx_(1)}, {rd(0, 4)}},
		{"mov rcx, [rbx]", {0x48, 0x8b, rbx_(1)}, {rd(0, 8)}},
		{"mov r8, [rbx-0x20]", {0x4c, 0x8b, 0x43, 0xe0}, {rd(-0x20, 8)}},
		{"mov byte [rbx], 0x5a", {0xc6, rbx_(0), 0x5a}, {wr(0, 1)}},
		{"mov word [rbx], 0x1234", {0x66, 0xc7, rbx_(0), 0x34, 0x12}, {wr(0, 2)}},
		{"mov dword [rbx], 0x89abcdef", {0xc7, rbx_(0), 0xef, 0xcd, 0xab, 0x89}, {wr(0, 4)}},
		{"mov qword [rbx], -0x76543211", {0x48, 0xc7, rbx_(0), 0xef, 0xcd, 0xab, 0x89}, {wr(0, 8)}},
		{"movzx ecx, byte [rbx]", {0x0f, 0xb6, rbx_(1)}, {rd(0, 1)}},
		{"movzx ecx, word [rbx]", {0x0f, 0xb7, rbx_(1)}, {rd(0, 2)}},
		{"movsx ecx, byte [rbx]", {0x0f, 0xbe, rbx_(1)}, {rd(0, 1)}},
		{"movsx rcx, word [rbx]", {0x48, 0x0f, 0xbf, rbx_(1)}, {rd(0, 2)}},
		{"movsx cx, byte [rbx]", {0x66, 0x0f, 0xbe, rbx_(1)}, {rd(0, 1)}},
		{"movsxd rcx, dword [rbx]", {0x48, 0x63, rbx_(1)}, {rd(0, 4)}},
		{"movnti [rbx], ecx", {0x0f, 0xc3, rbx_(1)}, {wr(0, 4)}},
		{"movnti [rbx], rcx", {0x48, 0x0f, 0xc3, rbx_(1)}, {wr(0, 8)}},
	});
}

// Read-modify-write and read-only ALU instructions: RMW forms read (one exit)
// then write the result (another); CMP/TEST only read; flags exactly as the
// CPU computes them, with all arithmetic flags clear and set beforehand.
KVMPP_TEST(mmio, alu, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	const std::vector<Access> rmw1 = {rd(0, 1), wr(0, 1)}, rmw2 = {rd(0, 2), wr(0, 2)},
				  rmw4 = {rd(0, 4), wr(0, 4)}, rmw8 = {rd(0, 8), wr(0, 8)};
	check_all(d, {
		{"add [rbx], cl", {0x00, rbx_(1)}, rmw1},
		{"add [rbx], ecx", {0x01, rbx_(1)}, rmw4},
		{"add [rbx], rcx", {0x48, 0x01, rbx_(1)}, rmw8},
		{"add ecx, [rbx]", {0x03, rbx_(1)}, {rd(0, 4)}},
		{"adc [rbx], cx", {0x66, 0x11, rbx_(1)}, rmw2},
		{"sub [rbx], ecx", {0x29, rbx_(1)}, rmw4},
		{"sbb rcx, [rbx]", {0x48, 0x1b, rbx_(1)}, {rd(0, 8)}},
		{"and [rbx], ecx", {0x21, rbx_(1)}, rmw4},
		{"or [rbx], dl", {0x08, rbx_(2)}, rmw1},
		{"xor [rbx], rdx", {0x48, 0x31, rbx_(2)}, rmw8},
		{"cmp [rbx], ecx", {0x39, rbx_(1)}, {rd(0, 4)}},
		{"cmp cl, [rbx]", {0x3a, rbx_(1)}, {rd(0, 1)}},
		{"test [rbx], ecx", {0x85, rbx_(1)}, {rd(0, 4)}},
		{"test byte [rbx], 0x81", {0xf6, rbx_(0), 0x81}, {rd(0, 1)}},
		{"add dword [rbx], -3", {0x83, rbx_(0), 0xfd}, rmw4},
		{"sub dword [rbx], 0x7fffffff", {0x81, rbx_(5), 0xff, 0xff, 0xff, 0x7f}, rmw4},
		{"xor byte [rbx], 0xff", {0x80, rbx_(6), 0xff}, rmw1},
		{"cmp qword [rbx], 1", {0x48, 0x83, rbx_(7), 0x01}, {rd(0, 8)}},
		{"inc dword [rbx]", {0xff, rbx_(0)}, rmw4},
		{"dec byte [rbx]", {0xfe, rbx_(1)}, rmw1},
		{"neg dword [rbx]", {0xf7, rbx_(3)}, rmw4},
		{"neg qword [rbx]", {0x48, 0xf7, rbx_(3)}, rmw8},
		{"not word [rbx]", {0x66, 0xf7, rbx_(2)}, rmw2},
		{"lock add [rbx], ecx", {0xf0, 0x01, rbx_(1)}, rmw4},
		{"lock xadd [rbx], ecx", {0xf0, 0x0f, 0xc1, rbx_(1)}, rmw4},
		{"lock or [rbx], rcx", {0xf0, 0x48, 0x09, rbx_(1)}, rmw8},
	});
}

// XCHG (implicitly locked), CMPXCHG (both outcomes write: the emulator, like
// the CPU, writes back the old value when the comparison fails), BT/BTS/BTR/
// BTC with a register bit offset beyond the operand (the access moves by
// whole operands: bit 35 of a dword is bit 3 of the next one) and with an
// immediate.
KVMPP_TEST(mmio, xchg_cmpxchg_bt, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	// The pattern at offset 0 as a dword, for a CMPXCHG that succeeds.
	std::uint32_t dword0 = 0;
	for (unsigned i = 0; i < 4; i++)
		dword0 |= std::uint32_t(pattern_byte(kPatternCenter + i)) << (8 * i);
	Case cmpxchg_equal{"lock cmpxchg [rbx], ecx (equal)", {0xf0, 0x0f, 0xb1, rbx_(1)}, {rd(0, 4), wr(0, 4)}};
	cmpxchg_equal.rax = dword0;
	Case bt35{"bt [rbx], ecx (bit 35)", {0x0f, 0xa3, rbx_(1)}, {rd(4, 4)}};
	bt35.rcx = 35;
	Case bts35{"bts [rbx], ecx (bit 35)", {0x0f, 0xab, rbx_(1)}, {rd(4, 4), wr(4, 4)}};
	bts35.rcx = 35;
	Case btr70{"btr [rbx], rcx (bit 70)", {0x48, 0x0f, 0xb3, rbx_(1)}, {rd(8, 8), wr(8, 8)}};
	btr70.rcx = 70;
	Case btc{"btc [rbx], cx (bit 9)", {0x66, 0x0f, 0xbb, rbx_(1)}, {rd(0, 2), wr(0, 2)}};
	btc.rcx = 9;
	check_all(d, {
		{"xchg [rbx], cl", {0x86, rbx_(1)}, {rd(0, 1), wr(0, 1)}},
		{"xchg [rbx], ecx", {0x87, rbx_(1)}, {rd(0, 4), wr(0, 4)}},
		{"xchg rcx, [rbx]", {0x48, 0x87, rbx_(1)}, {rd(0, 8), wr(0, 8)}},
		cmpxchg_equal,
		{"cmpxchg [rbx], ecx (not equal)", {0x0f, 0xb1, rbx_(1)}, {rd(0, 4), wr(0, 4)}},
		bt35,
		bts35,
		btr70,
		btc,
		{"bt dword [rbx], 7", {0x0f, 0xba, rbx_(4), 7}, {rd(0, 4)}},
		{"bts dword [rbx], 31", {0x0f, 0xba, rbx_(5), 31}, {rd(0, 4), wr(0, 4)}},
	});
}

// 16-byte SSE moves (MOVDQU/MOVDQA/MOVUPS/MOVAPS, MOVNTDQ) reach userspace as
// two 8-byte exits (vcpu_mmio_read/write and complete_emulated_mmio work in
// pieces of at most 8 bytes), and MMX MOVQ as one of 8.
KVMPP_TEST(mmio, sse_moves, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	const std::vector<Access> read16 = {rd(0, 8), rd(8, 8)}, write16 = {wr(0, 8), wr(8, 8)};
	std::vector<Case> cases = {
		{"movdqu xmm0, [rbx]", {0xf3, 0x0f, 0x6f, rbx_(0)}, read16},
		{"movdqu [rbx], xmm0", {0xf3, 0x0f, 0x7f, rbx_(0)}, write16},
		{"movdqa xmm0, [rbx]", {0x66, 0x0f, 0x6f, rbx_(0)}, read16},
		{"movdqa [rbx], xmm0", {0x66, 0x0f, 0x7f, rbx_(0)}, write16},
		{"movups xmm0, [rbx]", {0x0f, 0x10, rbx_(0)}, read16},
		{"movups [rbx], xmm0", {0x0f, 0x11, rbx_(0)}, write16},
		{"movaps xmm0, [rbx]", {0x0f, 0x28, rbx_(0)}, read16},
		{"movaps [rbx], xmm0", {0x0f, 0x29, rbx_(0)}, write16},
		{"movntdq [rbx], xmm0", {0x66, 0x0f, 0xe7, rbx_(0)}, write16},
		{"movdqu xmm0, [rbx+3]", {0xf3, 0x0f, 0x6f, 0x43, 0x03}, {rd(3, 8), rd(11, 8)}},
		{"movq mm0, [rbx]", {0x0f, 0x6f, rbx_(0)}, {rd(0, 8)}},
		{"movq [rbx], mm0", {0x0f, 0x7f, rbx_(0)}, {wr(0, 8)}},
	};
	for (Case &c : cases) {
		c.mm = std::string_view(c.name).starts_with("movq");
		c.xmm = !c.mm;
		c.rflags_in = {x86::kRflagsFixed}; // moves leave RFLAGS alone
	}
	check_all(d, cases);
}

// Shifts and rotates (group 2: C0/C1 imm8, D0/D1 by 1, D2/D3 by CL) and
// SHLD/SHRD with a memory destination: a read, then a write of the result,
// also for a count of 0 (KVM executes the instruction and writes its
// destination back whatever the count; the CPU leaves every flag alone).
// Compared: the flags the manuals define for the count (OF only for counts
// of 1, AF never, CF for SHL/SHR only below the operand width).
KVMPP_TEST(mmio, shifts_rotates, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	constexpr std::uint64_t kOf = 1ULL << 11, kAf = 1ULL << 4;
	const std::vector<Access> rmw1 = {rd(0, 1), wr(0, 1)}, rmw2 = {rd(0, 2), wr(0, 2)},
				  rmw4 = {rd(0, 4), wr(0, 4)}, rmw8 = {rd(0, 8), wr(0, 8)};
	// A case with the flags its count leaves undefined.
	auto shift = [](const char *name, Bytes insn, std::vector<Access> accesses, std::uint64_t undefined) {
		Case c{name, std::move(insn), std::move(accesses)};
		c.undefined_flags = undefined;
		return c;
	};
	const std::vector<Case> cases = {
		shift("shl dword [rbx], 1", {0xd1, rbx_(4)}, rmw4, kAf),
		shift("shr byte [rbx], 1", {0xd0, rbx_(5)}, rmw1, kAf),
		shift("sar word [rbx], cl (34: 2)", {0x66, 0xd3, rbx_(7)}, rmw2, kOf | kAf),
		shift("shl qword [rbx], cl (34)", {0x48, 0xd3, rbx_(4)}, rmw8, kOf | kAf),
		shift("sal dword [rbx], 7 (/6)", {0xc1, rbx_(6), 0x07}, rmw4, kOf | kAf),
		shift("shr qword [rbx], 63", {0x48, 0xc1, rbx_(5), 0x3f}, rmw8, kOf | kAf),
		shift("shl dword [rbx], 0", {0xc1, rbx_(4), 0x00}, rmw4, 0),
		shift("sar byte [rbx], 32 (masked to 0)", {0xc0, rbx_(7), 0x20}, rmw1, 0),
		shift("rol qword [rbx], 5", {0x48, 0xc1, rbx_(0), 0x05}, rmw8, kOf),
		shift("ror dword [rbx], 1", {0xd1, rbx_(1)}, rmw4, 0),
		shift("rcl byte [rbx], 3", {0xc0, rbx_(2), 0x03}, rmw1, kOf),
		shift("rcr word [rbx], 1", {0x66, 0xd1, rbx_(3)}, rmw2, 0),
		shift("rcr byte [rbx], 9 (a full turn)", {0xc0, rbx_(3), 0x09}, rmw1, kOf),
		shift("rol byte [rbx], cl (34)", {0xd2, rbx_(0)}, rmw1, kOf),
		shift("shld [rbx], ecx, 4", {0x0f, 0xa4, rbx_(1), 0x04}, rmw4, kOf | kAf),
		shift("shld [rbx], rcx, 1", {0x48, 0x0f, 0xa4, rbx_(1), 0x01}, rmw8, kAf),
		shift("shrd [rbx], rcx, cl (34)", {0x48, 0x0f, 0xad, rbx_(1)}, rmw8, kOf | kAf),
		shift("shrd [rbx], cx, 1", {0x66, 0x0f, 0xac, rbx_(1), 0x01}, rmw2, kAf),
		shift("shrd [rbx], edx, 0", {0x0f, 0xac, rbx_(2), 0x00}, rmw4, 0),
	};
	check_all(d, cases);
}

// IMUL with a memory source (0F AF, 69, 6B), and MUL/IMUL/DIV/IDIV r/m
// (F6/F7 /4-/7) on rDX:rAX: one read exit each. Compared: CF and OF for the
// multiplications (SF ZF AF PF are undefined), no flag for the divisions.
KVMPP_TEST(mmio, multiply_divide, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	constexpr std::uint64_t kMulUndefined = 0xd4; // SF ZF AF PF
	constexpr std::uint64_t kDivUndefined = 0x8d5; // CF PF AF ZF SF OF
	std::vector<Case> cases = {
		{"imul ecx, [rbx]", {0x0f, 0xaf, rbx_(1)}, {rd(0, 4)}},
		{"imul rcx, [rbx]", {0x48, 0x0f, 0xaf, rbx_(1)}, {rd(0, 8)}},
		{"imul cx, [rbx], -3", {0x66, 0x6b, rbx_(1), 0xfd}, {rd(0, 2)}},
		{"imul rdx, [rbx], 0x12345", {0x48, 0x69, rbx_(2), 0x45, 0x23, 0x01, 0x00}, {rd(0, 8)}},
		{"mul byte [rbx]", {0xf6, rbx_(4)}, {rd(0, 1)}},
		{"imul byte [rbx]", {0xf6, rbx_(5)}, {rd(0, 1)}},
		{"mul dword [rbx]", {0xf7, rbx_(4)}, {rd(0, 4)}},
		{"imul word [rbx]", {0x66, 0xf7, rbx_(5)}, {rd(0, 2)}},
		{"mul qword [rbx]", {0x48, 0xf7, rbx_(4)}, {rd(0, 8)}},
		{"imul qword [rbx]", {0x48, 0xf7, rbx_(5)}, {rd(0, 8)}},
	};
	for (Case &c : cases)
		c.undefined_flags = kMulUndefined;
	Case div8{"div byte [rbx]", {0xf6, rbx_(6)}, {rd(0, 1)}};
	Case idiv16{"idiv word [rbx]", {0x66, 0xf7, rbx_(7)}, {rd(0, 2)}};
	idiv16.rdx = 0;
	Case div32{"div dword [rbx]", {0xf7, rbx_(6)}, {rd(0, 4)}};
	Case div64{"div qword [rbx]", {0x48, 0xf7, rbx_(6)}, {rd(0, 8)}};
	Case idiv64{"idiv qword [rbx]", {0x48, 0xf7, rbx_(7)}, {rd(0, 8)}};
	idiv64.rdx = 0;
	for (Case *c : {&div8, &idiv16, &div32, &div64, &idiv64}) {
		c->undefined_flags = kDivUndefined;
		cases.push_back(*c);
	}
	check_all(d, cases);
}

// DIV from MMIO with a quotient too large: the operand is read (one exit),
// then #DE is delivered to the guest with RIP on the instruction.
KVMPP_TEST(mmio, divide_error, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Assembler code(64, layout::kCode);
	code.mov(Reg::ebx, kMmio).mov(Reg::edx, 0x10).mov(Reg::eax, 0);
	const std::uint64_t at = code.address();
	code.raw({0xf7, rbx_(6)}); // div dword [rbx]
	code.hlt();
	m.load(code);

	expect_read(m.vcpu, kMmio, 4, 0x10); // 0x10 << 32 / 0x10 does not fit in 32 bits
	const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(io.port, kVectorPort);
	ASSERT_EQ(io.value(), x86::kDivideError);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	const kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(m.memory.read<std::uint64_t>(regs.rsp), at); // #DE is a fault: RIP of the DIV
	ASSERT_EQ(regs.rax, 0u);
	ASSERT_EQ(regs.rdx, 0x10u);
}

// MOVD/MOVQ between XMM or MMX registers and memory (66 0F 6E/7E, REX.W
// for 64 bits, 0F 6E/7E, F3 0F 7E, 66 0F D6): one exit of 4 or 8 bytes; an
// XMM destination is zeroed above the operand. Linux 6.1's KVM does not
// emulate these (its opcode tables have no entries for them): there the
// test accepts the emulation failure; where they are emulated, the result
// must be the CPU's. Each case runs on a machine of its own.
KVMPP_TEST(mmio, movd_movq, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	std::vector<Case> cases = {
		{"movd xmm0, [rbx]", {0x66, 0x0f, 0x6e, rbx_(0)}, {rd(0, 4)}},
		{"movq xmm0, [rbx] (66 REX.W 0F 6E)", {0x66, 0x48, 0x0f, 0x6e, rbx_(0)}, {rd(0, 8)}},
		{"movd [rbx], xmm0", {0x66, 0x0f, 0x7e, rbx_(0)}, {wr(0, 4)}},
		{"movq [rbx], xmm0 (66 REX.W 0F 7E)", {0x66, 0x48, 0x0f, 0x7e, rbx_(0)}, {wr(0, 8)}},
		{"movq xmm0, [rbx] (F3 0F 7E)", {0xf3, 0x0f, 0x7e, rbx_(0)}, {rd(0, 8)}},
		{"movq [rbx], xmm0 (66 0F D6)", {0x66, 0x0f, 0xd6, rbx_(0)}, {wr(0, 8)}},
		{"movd mm0, [rbx]", {0x0f, 0x6e, rbx_(0)}, {rd(0, 4)}},
		{"movq [rbx], mm0 (REX.W 0F 7E)", {0x48, 0x0f, 0x7e, rbx_(0)}, {wr(0, 8)}},
	};
	for (Case &c : cases) {
		c.mm = std::string_view(c.name).find("mm0") != std::string_view::npos;
		c.xmm = !c.mm;
		c.rflags_in = {x86::kRflagsFixed};
		c.may_be_unemulated = true;
		Machine m = mmio_machine(kvm, Mode::long64);
		Differential d = long_mode_differential(m);
		note("%s", c.name);
		d.check(c);
	}
}

// SETcc m8 (one write, nothing read), CMOVcc with a memory source (read
// whatever the condition; a 32-bit destination is zero-extended even when it
// is false), CMPXCHG8B (a read, then a write: the old value when the
// comparison fails), each with all arithmetic flags clear and set. The
// operand is at [rsi]: RCX:RBX is CMPXCHG8B's new value.
KVMPP_TEST(mmio, setcc_cmov_cmpxchg8b, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	constexpr std::uint8_t kRsi = 0x0e; // ModRM [rsi], reg field 1
	std::uint64_t qword0 = 0;
	for (unsigned i = 0; i < 8; i++)
		qword0 |= std::uint64_t(pattern_byte(kPatternCenter + i)) << (8 * i);
	std::vector<Case> cases = {
		{"sete byte [rsi]", {0x0f, 0x94, kRsi}, {wr(0, 1)}},
		{"setl byte [rsi]", {0x0f, 0x9c, kRsi}, {wr(0, 1)}},
		{"setnbe byte [rsi]", {0x0f, 0x97, kRsi}, {wr(0, 1)}},
		{"cmove ecx, [rsi]", {0x0f, 0x44, kRsi}, {rd(0, 4)}},
		{"cmovb rcx, [rsi]", {0x48, 0x0f, 0x42, kRsi}, {rd(0, 8)}},
		{"cmovg cx, [rsi]", {0x66, 0x0f, 0x4f, kRsi}, {rd(0, 2)}},
		{"cmovnp ecx, [rsi]", {0x0f, 0x4b, kRsi}, {rd(0, 4)}},
		{"cmpxchg8b [rsi] (not equal)", {0x0f, 0xc7, kRsi}, {rd(0, 8), wr(0, 8)}},
	};
	Case equal{"lock cmpxchg8b [rsi] (equal)", {0xf0, 0x0f, 0xc7, kRsi}, {rd(0, 8), wr(0, 8)}};
	equal.rax = 0xabcdef0000000000 | (qword0 & 0xffffffff);
	equal.rdx = qword0 >> 32;
	cases.push_back(equal);
	for (Case &c : cases)
		c.address = &kvm_regs::rsi;
	check_all(d, cases);

	// CMPXCHG16B (Linux 6.1's KVM declines it: X86EMUL_UNHANDLEABLE for 16 bytes).
	for (bool same : {false, true}) {
		Case c{"cmpxchg16b [rsi]", {0x48, 0x0f, 0xc7, kRsi}, {rd(0, 8), rd(8, 8), wr(0, 8), wr(8, 8)}};
		c.address = &kvm_regs::rsi;
		c.may_be_unemulated = true;
		if (same) {
			std::uint64_t qword1 = 0;
			for (unsigned i = 0; i < 8; i++)
				qword1 |= std::uint64_t(pattern_byte(kPatternCenter + 8 + i)) << (8 * i);
			c.rax = qword0;
			c.rdx = qword1;
		}
		Machine m16 = mmio_machine(kvm, Mode::long64);
		Differential d16 = long_mode_differential(m16);
		note("%s (%s)", c.name, same ? "equal" : "not equal");
		d16.check(c);
	}
}

// String instructions: one exit per element, with and without REP, forwards
// and (DF = 1) backwards; MOVS between MMIO and RAM both ways and MMIO to
// MMIO; STOS, LODS, CMPS and SCAS; RSI/RDI/RCX and flags as the CPU leaves
// them.
KVMPP_TEST(mmio, string_ops, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	Differential d = long_mode_differential(m);
	auto string_case = [](const char *name, Bytes insn, std::vector<Access> accesses,
			      RegField address, RegField other,
			      std::uint64_t count, bool down) {
		Case c{name, std::move(insn), std::move(accesses)};
		c.address = address;
		c.other = other;
		c.rsi_rdi_rcx_in = count;
		c.rflags_in[0] = x86::kRflagsFixed | (down ? kDf : 0);
		c.rflags_in[1] = kArith | (down ? kDf : 0);
		return c;
	};
	auto rsi = &kvm_regs::rsi;
	auto rdi = &kvm_regs::rdi;
	Case cmps = string_case("repe cmpsb (MMIO at rsi)", {0xf3, 0xa6}, {rd(0, 1)}, rsi, rdi, 5, false);
	Case scas = string_case("repne scasw (MMIO at rdi)", {0xf2, 0x66, 0xaf}, {rd(0, 2), rd(2, 2), rd(4, 2)}, rdi, nullptr, 3, false);
	// SCAS finds ax at the third word.
	scas.rax = std::uint64_t(pattern_byte(kPatternCenter + 4)) | std::uint64_t(pattern_byte(kPatternCenter + 5)) << 8;
	Case scas_down = string_case("repe scasb, DF=1", {0xf3, 0xae}, {rd(0, 1)}, rdi, nullptr, 4, true);
	Case movsq_mmio = string_case("rep movsq, MMIO to MMIO", {0xf3, 0x48, 0xa5},
				      {rd(0x10, 8), wr(0, 8), rd(0x18, 8), wr(8, 8)}, rdi, rsi, 2, false);
	movsq_mmio.other_in_pattern = true;
	movsq_mmio.other_offset = 0x10;
	check_all(d, {
		string_case("movsb, MMIO to RAM", {0xa4}, {rd(0, 1)}, rsi, rdi, 0x77, false),
		string_case("rep movsb, MMIO to RAM", {0xf3, 0xa4}, {rd(0, 1), rd(1, 1), rd(2, 1)}, rsi, rdi, 3, false),
		string_case("rep movsw, MMIO to RAM, DF=1", {0xf3, 0x66, 0xa5}, {rd(0, 2), rd(-2, 2), rd(-4, 2)}, rsi, rdi, 3, true),
		string_case("rep movsd, RAM to MMIO", {0xf3, 0xa5}, {wr(0, 4), wr(4, 4)}, rdi, rsi, 2, false),
		string_case("rep movsq, RAM to MMIO, DF=1", {0xf3, 0x48, 0xa5}, {wr(0, 8), wr(-8, 8)}, rdi, rsi, 2, true),
		string_case("rep stosb", {0xf3, 0xaa}, {wr(0, 1), wr(1, 1), wr(2, 1), wr(3, 1)}, rdi, nullptr, 4, false),
		string_case("rep stosd, DF=1", {0xf3, 0xab}, {wr(0, 4), wr(-4, 4)}, rdi, nullptr, 2, true),
		string_case("stosq", {0x48, 0xab}, {wr(0, 8)}, rdi, nullptr, 9, false),
		string_case("lodsd", {0xad}, {rd(0, 4)}, rsi, nullptr, 9, false),
		string_case("rep lodsb, DF=1", {0xf3, 0xac}, {rd(0, 1), rd(-1, 1)}, rsi, nullptr, 2, true),
		cmps,
		scas,
		scas_down,
		movsq_mmio,
	});
}

// The same families from 32-bit and 16-bit code, with operand-size (0x66),
// address-size (0x67) and segment-override prefixes: the segment base counts,
// the prefixes pick the access size and the address registers.
KVMPP_TEST(mmio, legacy_modes_and_prefixes, .timeout_s = 180, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	{
		note("protected32");
		Machine m = mmio_machine(kvm, Mode::protected32);
		enable_sse(m);
		// RAM below 64 KiB: the 0x67 case uses 16-bit addressing.
		Differential d(m, 32, kRam16, kMmio, kRam16 + 0x200);
		Case movsw = {"rep movsw, MMIO to RAM", {0xf3, 0x66, 0xa5}, {rd(0, 2), rd(2, 2)}};
		movsw.address = &kvm_regs::rsi;
		movsw.other = &kvm_regs::rdi;
		movsw.rsi_rdi_rcx_in = 2;
		Case bts = {"bts [ebx], ecx", {0x0f, 0xab, rbx_(1)}, {rd(0, 4), wr(0, 4)}};
		bts.rcx = 21;
		Case stos = {"rep stosd, DF=1", {0xf3, 0xab}, {wr(0, 4), wr(-4, 4)}};
		stos.address = &kvm_regs::rdi;
		stos.rsi_rdi_rcx_in = 2;
		stos.rflags_in[0] = x86::kRflagsFixed | kDf;
		stos.rflags_in[1] = kArith | kDf;
		check_all(d, {
			{"mov [ebx], ecx", {0x89, rbx_(1)}, {wr(0, 4)}},
			{"mov cx, [ebx] (66)", {0x66, 0x8b, rbx_(1)}, {rd(0, 2)}},
			{"add [ebx], cx (66)", {0x66, 0x01, rbx_(1)}, {rd(0, 2), wr(0, 2)}},
			{"sub ecx, [ebx]", {0x2b, rbx_(1)}, {rd(0, 4)}},
			{"neg byte [ebx]", {0xf6, rbx_(3)}, {rd(0, 1), wr(0, 1)}},
			{"xchg [ebx], edx", {0x87, rbx_(2)}, {rd(0, 4), wr(0, 4)}},
			bts,
			{"movzx ecx, word [ebx]", {0x0f, 0xb7, rbx_(1)}, {rd(0, 2)}},
			{"mov [bx+di] (67), cl", {0x67, 0x88, 0x09}, {wr(0, 1)}}, // [bx+di], di = 0 below
			movsw,
			stos,
		});
	}
	for (Mode mode : {Mode::real, Mode::protected16}) {
		CONTEXT("mode %s", mode_name(mode));
		note("%s", mode_name(mode));
		Machine m = mmio_machine(kvm, mode);
		Differential d(m, 16, kRam16, kMmio, kRam16 + 0x200);
		Case movsb = {"rep movsb, RAM to MMIO", {0xf3, 0xa4}, {wr(0, 1), wr(1, 1)}};
		movsb.address = &kvm_regs::rdi;
		movsb.other = &kvm_regs::rsi;
		movsb.rsi_rdi_rcx_in = 2;
		check_all(d, {
			{"mov [bx], cx", {0x89, bx_(1)}, {wr(0, 2)}},
			{"mov [bx], ecx (66)", {0x66, 0x89, bx_(1)}, {wr(0, 4)}},
			{"mov ecx, [ebx] (66 67)", {0x66, 0x67, 0x8b, rbx_(1)}, {rd(0, 4)}},
			{"mov byte [bx], 0x7e", {0xc6, bx_(0), 0x7e}, {wr(0, 1)}},
			{"add [bx], cl", {0x00, bx_(1)}, {rd(0, 1), wr(0, 1)}},
			{"or cx, [bx]", {0x0b, bx_(1)}, {rd(0, 2)}},
			{"inc word [bx]", {0xff, bx_(0)}, {rd(0, 2), wr(0, 2)}},
			{"not dword [bx] (66)", {0x66, 0xf7, bx_(2)}, {rd(0, 4), wr(0, 4)}},
			{"cmp [bx], dx", {0x39, bx_(2)}, {rd(0, 2)}},
			{"movsx cx, byte [bx]", {0x0f, 0xbe, bx_(1)}, {rd(0, 1)}},
			movsb,
		});
	}
	// A segment override: FS (base 0x1000 in real mode, selector 0x100)
	// relocates [bx].
	{
		note("real mode, fs override");
		Machine m = mmio_machine(kvm, Mode::real);
		kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
		sregs.fs = real_mode_segment(0x100, false);
		ASSERT_RESULT(m.vcpu.set_sregs(sregs));
		Differential d(m, 16, kRam16, kMmio, kRam16 + 0x200, 0x1000);
		check_all(d, {
			{"mov fs:[bx], cx", {0x64, 0x89, bx_(1)}, {wr(0, 2)}},
			{"add cx, fs:[bx]", {0x64, 0x03, bx_(1)}, {rd(0, 2)}},
		});
	}
}

// Accesses that cross a page: from one MMIO page into the next, KVM gives one
// exit per page (emulator_read_write() splits at the page boundary), each
// also cut into pieces of at most 8 bytes. An access that is half RAM, half
// MMIO reads or writes the RAM part in memory and exits only for the MMIO
// part.
KVMPP_TEST(mmio, page_crossing, .timeout_s = 120, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	enable_sse(m);
	constexpr std::uint64_t kEnd = layout::kMinMemory; // RAM ends, nothing is mapped above
	m.memory.write<std::uint64_t>(kEnd - 8, 0x0807060504030201);
	m.memory.write<std::uint64_t>(kMmio - 8, 0x1817161514131211);
	Assembler code(64, layout::kCode);
	std::vector<std::uint64_t> halts;
	auto hlt = [&] { code.hlt(); halts.push_back(code.address()); };
	code.mov(Reg::rcx, 0x8877665544332211);
	code.mov(Reg::ebx, kFar + 0xffe).raw({0x89, rbx_(1)});       // 2 + 2, both MMIO
	code.raw({0x8b, rbx_(0)});                                    // read back
	hlt();
	code.mov(Reg::ebx, kFar + 0xffd).raw({0x48, 0x89, rbx_(1)}); // 3 + 5
	code.raw({0xf3, 0x0f, 0x6f, 0x43, 0xff});                     // movdqu xmm0, [rbx-1]: 4 + 12
	hlt();
	code.mov(Reg::ebx, kEnd - 2).raw({0x89, rbx_(1)});            // RAM 2 bytes, MMIO 2
	code.raw({0x48, 0x8b, 0x43, 0xfd});                            // mov rax, [rbx-3]: RAM 5, MMIO 3
	hlt();
	code.mov(Reg::ebx, kMmio + 0x1000 - 3).raw({0x8b, rbx_(0)});  // MMIO 3, then RAM (code page)
	hlt();
	m.load(code);

	expect_write(m.vcpu, kFar + 0xffe, 2, 0x2211);
	expect_write(m.vcpu, kFar + 0x1000, 2, 0x4433);
	expect_read(m.vcpu, kFar + 0xffe, 2, 0xbbaa);
	expect_read(m.vcpu, kFar + 0x1000, 2, 0xddcc);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rip, halts[0]);
	ASSERT_EQ(regs.rax, 0xddccbbaau);

	expect_write(m.vcpu, kFar + 0xffd, 3, 0x332211);
	expect_write(m.vcpu, kFar + 0x1000, 5, 0x8877665544);
	expect_read(m.vcpu, kFar + 0xffc, 4, 0x03020100);
	expect_read(m.vcpu, kFar + 0x1000, 8, 0x0b0a090807060504);
	expect_read(m.vcpu, kFar + 0x1008, 4, 0x0f0e0d0c);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rip, halts[1]);
	const kvm_fpu fpu = ASSERT_RESULT(m.vcpu.get_fpu());
	for (unsigned i = 0; i < 16; i++)
		ASSERT_EQ(fpu.xmm[0][i], i);

	expect_write(m.vcpu, kEnd, 2, 0x4433);
	ASSERT_EQ(m.memory.read<std::uint16_t>(kEnd - 2), 0x2211u); // the RAM half, in memory
	expect_read(m.vcpu, kEnd, 3, 0xc0b0a0);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rip, halts[2]);
	// RAM kEnd-5..kEnd-1: 04 05 06 (then 11 22 as just written), MMIO a0 b0 c0.
	ASSERT_EQ(regs.rax, 0xc0b0a02211060504u);

	expect_read(m.vcpu, kMmio + 0x1000 - 3, 3, 0x665544);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rip, halts[3]);
	const std::uint32_t code_byte = m.memory.read<std::uint8_t>(kMmio + 0x1000);
	ASSERT_EQ(regs.rax, 0x665544u | code_byte << 24);
}

namespace {

// Long-mode page tables with 4 KiB pages at kHighVa (PML4 entry 256):
// page 0 -> kMmio, page 1 -> RAM at kHighRam, page 2 not present.
constexpr std::uint64_t kHighVa = 0xffff800000000000;
constexpr std::uint64_t kHighRam = 0x33000;
constexpr std::uint64_t kPdpt = 0x30000, kPd = 0x31000, kPt = 0x32000;

void map_high_pages(const Machine &m)
{
	constexpr std::uint64_t kPw = 0x3; // present, writable
	m.memory.write<std::uint64_t>(layout::kPml4 + 256 * 8, kPdpt | kPw);
	m.memory.write<std::uint64_t>(kPdpt, kPd | kPw);
	m.memory.write<std::uint64_t>(kPd, kPt | kPw);
	m.memory.write<std::uint64_t>(kPt, kMmio | kPw);
	m.memory.write<std::uint64_t>(kPt + 8, kHighRam | kPw);
	m.memory.write<std::uint64_t>(kPt + 16, 0);
}

} // namespace

// MMIO through the guest's page tables at a high (kernel-half) virtual
// address: the exit carries the guest-physical address. A REP MOVSB from MMIO
// into a RAM page followed by a not-present page: the elements before the
// fault are copied (one MMIO read exit each), then the guest gets #PF with
// CR2 = the first byte of the missing page and error code 2 (write, not
// present, supervisor), RIP = the MOVSB, and RCX/RSI/RDI counting only the
// elements done.
KVMPP_TEST(mmio, guest_paging_and_page_fault, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = mmio_machine(kvm, Mode::long64);
	map_high_pages(m);
	Assembler code(64, layout::kCode);
	code.mov(Reg::rbx, kHighVa + 0x123).mov(Reg::ecx, 0xcafe1234);
	code.raw({0x89, rbx_(1), 0x8b, rbx_(0)}); // mov [rbx], ecx; mov eax, [rbx]
	code.hlt();
	const std::uint64_t after_first = code.address();
	code.mov(Reg::rsi, kHighVa + 0x20).mov(Reg::rdi, kHighVa + 0x1ffe).mov(Reg::ecx, 4).cld();
	const std::uint64_t movs = code.address();
	code.raw({0xf3, 0xa4}).hlt();
	m.load(code);

	expect_write(m.vcpu, kMmio + 0x123, 4, 0xcafe1234);
	expect_read(m.vcpu, kMmio + 0x123, 4, 0x600d600d);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rip, after_first);
	ASSERT_EQ(regs.rax, 0x600d600du);

	expect_read(m.vcpu, kMmio + 0x20, 1, 0x61);
	expect_read(m.vcpu, kMmio + 0x21, 1, 0x62);
	expect_read(m.vcpu, kMmio + 0x22, 1, 0x63); // read before the write faults
	const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(io.port, kVectorPort);
	ASSERT_EQ(io.value(), x86::kPageFault);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	regs = ASSERT_RESULT(m.vcpu.get_regs());
	const kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	ASSERT_EQ(sregs.cr2, kHighVa + 0x2000);
	ASSERT_EQ(m.memory.read<std::uint64_t>(regs.rsp), 2u);       // error code: W, not P
	ASSERT_EQ(m.memory.read<std::uint64_t>(regs.rsp + 8), movs); // RIP
	ASSERT_EQ(regs.rcx, 2u);
	ASSERT_EQ(regs.rsi, kHighVa + 0x22);
	ASSERT_EQ(regs.rdi, kHighVa + 0x2000);
	ASSERT_EQ(m.memory.read<std::uint16_t>(kHighRam + 0xffe), 0x6261u);
}

// KVM_MEM_READONLY (KVM_CAP_READONLY_MEM is 1 on x86): reads come from the
// slot's memory without an exit; writes exit as KVM_EXIT_MMIO writes with
// the data and leave the memory as it was. A read-modify-write reads memory
// and exits only for the write.
KVMPP_TEST(mmio, readonly_slot, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	ASSERT_EQ(ASSERT_RESULT(kvm.check_extension(KVM_CAP_READONLY_MEM)), 1);
	for (Mode mode : {Mode::real, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		ASSERT_EQ(ASSERT_RESULT(m.vm.check_extension(KVM_CAP_READONLY_MEM)), 1);
		// 64 KiB read-only at 1 MiB: real mode reaches it with ES = 0xffff.
		const std::uint64_t ro = layout::kMinMemory;
		kvmpp::GuestMemory rom = ASSERT_RESULT(kvmpp::GuestMemory::create(0x10000));
		rom.write<std::uint32_t>(0x100, 0x11223344);
		ASSERT_RESULT(m.vm.map_memory(1, ro, rom, KVM_MEM_READONLY));

		const bool b16 = mode == Mode::real;
		Assembler code(code_bits(mode), layout::kCode);
		// 16-bit code: 66 (32-bit operand) and 26 (ES) prefixes, [bx].
		auto insn = [&](std::uint8_t opcode, unsigned reg) {
			if (b16)
				code.raw({0x66, 0x26, opcode, bx_(reg)});
			else
				code.raw({opcode, rbx_(reg)});
		};
		if (b16) {
			kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
			sregs.es = real_mode_segment(0xffff, false); // base 0xffff0
			ASSERT_RESULT(m.vcpu.set_sregs(sregs));
			code.mov(Reg::bx, ro + 0x100 - 0xffff0);
		} else {
			code.mov(Reg::ebx, ro + 0x100);
		}
		code.mov(Reg::ecx, 0x01010101);
		insn(0x8b, 0); // mov eax, [bx]
		code.hlt();
		insn(0x89, 1); // mov [bx], ecx
		code.hlt();
		insn(0x01, 1); // add [bx], ecx
		code.hlt();
		m.load(code);

		ASSERT_EXIT(exits::Hlt, m.vcpu); // the read: no exit
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rax & 0xffffffff, 0x11223344u);
		expect_write(m.vcpu, ro + 0x100, 4, 0x01010101);
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EQ(rom.read<std::uint32_t>(0x100), 0x11223344u);
		expect_write(m.vcpu, ro + 0x100, 4, 0x12233445); // read from memory, no exit
		ASSERT_EXIT(exits::Hlt, m.vcpu);
		ASSERT_EQ(rom.read<std::uint32_t>(0x100), 0x11223344u);
	}
}

// An instruction KVM's emulator does not know (POPCNT, F3 0F B8: an empty
// slot in twobyte_table) with an MMIO operand, at CPL 0: KVM_EXIT_INTERNAL_ERROR,
// suberror KVM_INTERNAL_ERROR_EMULATION, with the instruction bytes
// (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES): the decoder fetched
// 15 bytes from RIP (__do_insn_fetch_bytes fetches up to 15 bytes, or to the
// end of the page or segment), so insn_size is 15 and insn_bytes start with
// the instruction. RIP still points at it, and KVM has queued #UD
// (handle_emulation_failure): the next KVM_RUN delivers it to the guest.
KVMPP_TEST(mmio, emulation_failure, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : {Mode::protected32, Mode::long64}) {
		CONTEXT("mode %s", mode_name(mode));
		note("mode %s", mode_name(mode));
		Machine m = mmio_machine(kvm, mode);
		Assembler code(code_bits(mode), layout::kCode);
		code.mov(Reg::ebx, kMmio);
		const std::uint64_t at = code.address();
		code.raw({0xf3, 0x0f, 0xb8, rbx_(1)}); // popcnt ecx, [rbx]
		code.mov(Reg::eax, 0x12345678).hlt();
		m.load(code);

		const exits::InternalError error = ASSERT_EXIT(exits::InternalError, m.vcpu);
		ASSERT_EQ(error.suberror, static_cast<std::uint32_t>(KVM_INTERNAL_ERROR_EMULATION));
		const kvm_run &run = m.vcpu.run_data();
		note("ndata %u, flags %#llx, insn_size %u", run.emulation_failure.ndata,
		     static_cast<unsigned long long>(run.emulation_failure.flags),
		     run.emulation_failure.insn_size);
		ASSERT_TRUE(run.emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
		ASSERT_EQ(run.emulation_failure.insn_size, 15u);
		for (unsigned i = 0; i < run.emulation_failure.insn_size; i++) {
			CONTEXT("instruction byte %u", i);
			ASSERT_EQ(run.emulation_failure.insn_bytes[i], m.memory.read<std::uint8_t>(at + i));
		}
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, at);

		const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
		ASSERT_EQ(io.port, kVectorPort);
		ASSERT_EQ(io.value(), x86::kInvalidOpcode);
		ASSERT_EXIT(exits::Hlt, m.vcpu);
	}
}

// KVM_TRANSLATE: without paging the identity; under 32-bit, PAE and 4-level
// paging the page tables' answer (offset within the page kept); an unmapped
// address gives valid = 0 and physical_address = ~0 (INVALID_GPA). Linux
// always reports writeable = 1 and usermode = 0
// (kvm_arch_vcpu_ioctl_translate).
KVMPP_TEST(mmio, translate, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	for (Mode mode : kAllModes) {
		CONTEXT("mode %s", mode_name(mode));
		Machine m = ASSERT_RESULT(Machine::create(kvm, mode));
		struct Query {
			std::uint64_t linear;
			bool valid;
			std::uint64_t physical;
		};
		std::vector<Query> queries;
		if (!has_paging(mode)) {
			queries = {{0x12345, true, 0x12345}, {0xfee00abc, true, 0xfee00abc}};
		} else {
			queries = {{0x12345, true, 0x12345},
				   {layout::kAlias + 0x123456, true, 0x123456},
				   {0x80000000 + 0x1000, false, ~0ULL}};
			if (mode == Mode::long64) {
				map_high_pages(m);
				queries.push_back({kHighVa + 0x1abc, true, kHighRam + 0xabc});
				queries.push_back({kHighVa + 0x2abc, false, ~0ULL});
				queries.push_back({kHighVa + 0x0abc, true, kMmio + 0xabc});
			}
		}
		for (const Query &q : queries) {
			CONTEXT("linear address %#llx", static_cast<unsigned long long>(q.linear));
			const kvm_translation t = ASSERT_RESULT(m.vcpu.translate(q.linear));
			ASSERT_EQ(t.linear_address, q.linear);
			ASSERT_EQ(t.valid, q.valid ? 1 : 0);
			ASSERT_EQ(t.physical_address, q.physical);
			ASSERT_EQ(t.writeable, 1);
			ASSERT_EQ(t.usermode, 0);
		}
	}
}
