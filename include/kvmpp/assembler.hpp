// SPDX-License-Identifier: GPL-2.0
//
// A tiny x86 assembler for test guests: the few instructions selftests need,
// each encoded as GNU as encodes it (libkvmpp/tests/assembler_test.cpp
// assembles every form with `as` and compares the bytes).
//
//     kvmpp::guest::Assembler code(16, kvmpp::guest::layout::kCode);
//     code.mov(Reg::al, 0x2a).out(0x10, Reg::al).hlt();
//
// The operand size follows the register: `out(0x10, Reg::ax)` in 32-bit code
// gets the 0x66 prefix, `mov(Reg::rax, ...)` needs 64-bit code. Only the eight
// legacy registers of each width are known (no ah..bh, no r8..r15). A form the
// assembler cannot encode (a 64-bit register in 16-bit code, a jump target out
// of range, an unbound label) throws std::invalid_argument or std::logic_error:
// test code is wrong, not the machine.
//
// Labels: `Label l = code.label();` ... `code.bind(l);`. A backward jump whose
// target is within reach is short (rel8), any other is near (rel16 in 16-bit
// code, rel32 otherwise), as GNU as relaxes them.
//
// Thread safety: none (a value type: one builder per thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

namespace kvmpp::guest {

// Register = width in bytes << 4 | register number.
enum class Reg : std::uint8_t {
	al = 0x10, cl, dl, bl,
	ax = 0x20, cx, dx, bx, sp, bp, si, di,
	eax = 0x40, ecx, edx, ebx, esp, ebp, esi, edi,
	rax = 0x80, rcx, rdx, rbx, rsp, rbp, rsi, rdi,
};

// Width of a register in bytes (1, 2, 4 or 8) and its number (0..7).
constexpr unsigned reg_width(Reg reg) noexcept { return static_cast<unsigned>(reg) >> 4; }
constexpr unsigned reg_number(Reg reg) noexcept { return static_cast<unsigned>(reg) & 7; }

// Segment registers, numbered as in the ModRM reg field of MOV Sreg.
enum class SegReg : std::uint8_t { es, cs, ss, ds, fs, gs };

class Label {
public:
	Label() = default; // not usable: get labels from Assembler::label()

private:
	friend class Assembler;
	explicit Label(std::size_t index) : index_(index) {}
	std::size_t index_ = static_cast<std::size_t>(-1);
};

class Assembler {
public:
	// `bits`: 16, 32 or 64, the mode the code will execute in; `origin`: the
	// guest address of the first byte (for absolute label addresses).
	explicit Assembler(unsigned bits, std::uint64_t origin = 0);

	unsigned bits() const noexcept { return bits_; }
	// The code emitted from here on executes in another mode (after a mode
	// switch the code itself performs).
	Assembler &set_bits(unsigned bits);

	std::uint64_t origin() const noexcept { return origin_; }
	std::size_t size() const noexcept { return code_.size(); }
	std::uint64_t address() const noexcept { return origin_ + code_.size(); } // of the next byte
	// The code; throws std::logic_error while a referenced label is unbound.
	std::span<const std::uint8_t> bytes() const;

	Label label();          // a new, unbound label
	Assembler &bind(Label); // binds it to the current position
	Label here();           // a new label bound to the current position
	std::uint64_t address_of(Label) const; // guest address of a bound label

	// Port I/O with al/ax/eax: OUT imm8 / OUT DX, IN imm8 / IN DX.
	Assembler &out(std::uint8_t port, Reg src);
	Assembler &out_dx(Reg src);
	Assembler &in(Reg dst, std::uint8_t port);
	Assembler &in_dx(Reg dst);
	// OUTS/INS of `size` (1, 2, 4) bytes per element, with REP if `rep`.
	Assembler &outs(unsigned size, bool rep);
	Assembler &ins(unsigned size, bool rep);

	// MOV reg, imm (the imm must fit the register, as signed or unsigned).
	Assembler &mov(Reg dst, std::uint64_t imm);
	// MOV reg, reg (same width).
	Assembler &mov(Reg dst, Reg src);
	// MOV acc, [address] and MOV [address], acc with acc = al/ax/eax/rax
	// (the moffs forms; 64-bit code uses a 64-bit address).
	Assembler &load(Reg acc, std::uint64_t address);
	Assembler &store(std::uint64_t address, Reg acc);

	// Arithmetic.
	Assembler &xor_(Reg dst, Reg src);
	Assembler &or_(Reg dst, std::uint64_t imm);
	Assembler &dec(Reg reg);
	Assembler &div(Reg divisor); // unsigned divide of (e/r)dx:(e/r)ax or ax by it

	// Control flow.
	Assembler &jmp(Label target);
	Assembler &jnz(Label target);
	Assembler &jmp_self(); // jmp $: spins until something (a signal) stops the vCPU
	// JMP FAR selector:target with a 16- or 32-bit offset (not in 64-bit code).
	Assembler &far_jmp(std::uint16_t selector, Label target, unsigned offset_bits);

	// One-byte and two-byte instructions.
	Assembler &hlt();
	Assembler &nop();
	Assembler &cli();
	Assembler &cld();
	Assembler &int3();
	Assembler &int_(std::uint8_t vector);
	Assembler &ud2();
	Assembler &cpuid();
	Assembler &rdmsr();
	Assembler &wrmsr();

	// System state: LGDT/LIDT [address] (a pseudo-descriptor; in 16-bit
	// code they load a 24-bit base), MOV to/from CR0/2/3/4 (with eax..edi, or
	// rax..rdi in 64-bit code), MOV Sreg, r16.
	Assembler &lgdt(std::uint64_t address);
	Assembler &lidt(std::uint64_t address);
	Assembler &mov_to_cr(unsigned cr, Reg src);
	Assembler &mov_from_cr(Reg dst, unsigned cr);
	Assembler &mov_to_seg(SegReg seg, Reg src);

	// Bytes as given, for anything else.
	Assembler &raw(std::initializer_list<std::uint8_t> bytes);

private:
	enum class Fixup : std::uint8_t { rel8, rel16, rel32, abs16, abs32 };
	struct PendingFixup {
		std::size_t at;  // where the field is
		std::size_t end; // end of the instruction (rel fixups are relative to it)
		std::size_t label;
		Fixup kind;
	};
	static constexpr std::size_t kUnbound = static_cast<std::size_t>(-1);

	void emit(std::uint8_t byte) { code_.push_back(byte); }
	void emit_le(std::uint64_t value, unsigned bytes);
	void operand_size(unsigned width);       // 0x66 and/or REX.W for an operand width
	void address_operand(unsigned reg_field, std::uint64_t address, std::uint8_t opcode0,
			     std::uint8_t opcode1); // 0F xx /reg [absolute address]
	void label_field(Label target, Fixup kind, std::size_t end);
	void patch(const PendingFixup &fixup);
	std::size_t bound_position(Label label) const;
	void jump(Label target, std::uint8_t short_opcode, std::initializer_list<std::uint8_t> near);

	unsigned bits_;
	std::uint64_t origin_;
	std::vector<std::uint8_t> code_;
	std::vector<std::size_t> labels_; // position, or kUnbound
	std::vector<PendingFixup> pending_;
};

} // namespace kvmpp::guest
