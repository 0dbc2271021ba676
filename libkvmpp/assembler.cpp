// SPDX-License-Identifier: GPL-2.0
//
// Encodings follow the Intel SDM (volume 2) and are checked byte for byte
// against GNU as by tests/assembler_test.cpp.
#include <kvmpp/assembler.hpp>

#include <limits>
#include <stdexcept>
#include <string>

namespace kvmpp::guest {
namespace {

constexpr std::uint8_t kOperandSizePrefix = 0x66;
constexpr std::uint8_t kAddressSizePrefix = 0x67;
constexpr std::uint8_t kRepPrefix = 0xf3;
constexpr std::uint8_t kRexW = 0x48;

[[noreturn]] void invalid(const std::string &what)
{
	throw std::invalid_argument("guest::Assembler: " + what);
}

// True if `imm` is a `width`-byte value, read as unsigned or as signed.
bool fits(std::uint64_t imm, unsigned width)
{
	if (width >= 8)
		return true;
	const unsigned bits = width * 8;
	const auto as_signed = static_cast<std::int64_t>(imm);
	return imm < (std::uint64_t(1) << bits) || as_signed >= -(std::int64_t(1) << (bits - 1));
}

// True if the low `width` bytes of `imm`, sign-extended, fit in an int8.
bool fits_int8(std::uint64_t imm, unsigned width)
{
	const unsigned bits = width * 8;
	std::int64_t value = static_cast<std::int64_t>(imm);
	if (bits < 64) {
		const std::uint64_t mask = (std::uint64_t(1) << bits) - 1;
		const std::uint64_t sign = std::uint64_t(1) << (bits - 1);
		value = static_cast<std::int64_t>(((imm & mask) ^ sign) - sign);
	}
	return value >= -128 && value <= 127;
}

bool fits_int32(std::uint64_t imm)
{
	const auto value = static_cast<std::int64_t>(imm);
	return value >= std::numeric_limits<std::int32_t>::min() &&
	       value <= std::numeric_limits<std::int32_t>::max();
}

std::uint8_t modrm_reg(unsigned reg_field, unsigned rm)
{
	return static_cast<std::uint8_t>(0xc0 | (reg_field << 3) | rm);
}

} // namespace

Assembler::Assembler(unsigned bits, std::uint64_t origin) : bits_(bits), origin_(origin)
{
	set_bits(bits);
}

Assembler &Assembler::set_bits(unsigned bits)
{
	if (bits != 16 && bits != 32 && bits != 64)
		invalid("bits must be 16, 32 or 64");
	bits_ = bits;
	return *this;
}

std::span<const std::uint8_t> Assembler::bytes() const
{
	if (!pending_.empty())
		throw std::logic_error("guest::Assembler: a referenced label is not bound");
	return code_;
}

Label Assembler::label()
{
	labels_.push_back(kUnbound);
	return Label(labels_.size() - 1);
}

Label Assembler::here()
{
	Label label = this->label();
	bind(label);
	return label;
}

Assembler &Assembler::bind(Label label)
{
	if (label.index_ >= labels_.size())
		invalid("label of another assembler");
	if (labels_[label.index_] != kUnbound)
		invalid("label bound twice");
	labels_[label.index_] = code_.size();
	for (auto it = pending_.begin(); it != pending_.end();) {
		if (it->label == label.index_) {
			patch(*it);
			it = pending_.erase(it);
		} else {
			++it;
		}
	}
	return *this;
}

std::size_t Assembler::bound_position(Label label) const
{
	if (label.index_ >= labels_.size() || labels_[label.index_] == kUnbound)
		throw std::logic_error("guest::Assembler: label not bound");
	return labels_[label.index_];
}

std::uint64_t Assembler::address_of(Label label) const
{
	return origin_ + bound_position(label);
}

void Assembler::emit_le(std::uint64_t value, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		emit(static_cast<std::uint8_t>(value >> (8 * i)));
}

void Assembler::operand_size(unsigned width)
{
	switch (width) {
	case 1:
		break;
	case 2:
		if (bits_ != 16)
			emit(kOperandSizePrefix);
		break;
	case 4:
		if (bits_ == 16)
			emit(kOperandSizePrefix);
		break;
	case 8:
		if (bits_ != 64)
			invalid("64-bit operand outside 64-bit code");
		emit(kRexW);
		break;
	default:
		invalid("bad operand width");
	}
}

void Assembler::label_field(Label target, Fixup kind, std::size_t end)
{
	if (target.index_ >= labels_.size())
		invalid("label of another assembler");
	const std::size_t at = code_.size();
	const unsigned bytes = kind == Fixup::rel8 ? 1 : (kind == Fixup::rel32 || kind == Fixup::abs32) ? 4 : 2;
	emit_le(0, bytes);
	const PendingFixup fixup{at, end, target.index_, kind};
	if (labels_[target.index_] != kUnbound)
		patch(fixup);
	else
		pending_.push_back(fixup);
}

void Assembler::patch(const PendingFixup &fixup)
{
	const std::size_t target = labels_[fixup.label];
	const auto relative = static_cast<std::int64_t>(target) - static_cast<std::int64_t>(fixup.end);
	const std::uint64_t absolute = origin_ + target;
	std::uint64_t value = 0;
	unsigned bytes = 0;
	switch (fixup.kind) {
	case Fixup::rel8:
		if (relative < -128 || relative > 127)
			invalid("short jump out of range");
		value = static_cast<std::uint64_t>(relative);
		bytes = 1;
		break;
	case Fixup::rel16:
		if (relative < -32768 || relative > 32767)
			invalid("rel16 jump out of range");
		value = static_cast<std::uint64_t>(relative);
		bytes = 2;
		break;
	case Fixup::rel32:
		value = static_cast<std::uint64_t>(relative);
		bytes = 4;
		break;
	case Fixup::abs16:
		if (absolute > 0xffff)
			invalid("label address does not fit 16 bits");
		value = absolute;
		bytes = 2;
		break;
	case Fixup::abs32:
		if (absolute > 0xffffffff)
			invalid("label address does not fit 32 bits");
		value = absolute;
		bytes = 4;
		break;
	}
	for (unsigned i = 0; i < bytes; i++)
		code_[fixup.at + i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// --- port I/O ---

Assembler &Assembler::out(std::uint8_t port, Reg src)
{
	if (reg_number(src) != 0 || reg_width(src) == 8)
		invalid("OUT takes al, ax or eax");
	operand_size(reg_width(src));
	emit(reg_width(src) == 1 ? 0xe6 : 0xe7);
	emit(port);
	return *this;
}

Assembler &Assembler::out_dx(Reg src)
{
	if (reg_number(src) != 0 || reg_width(src) == 8)
		invalid("OUT takes al, ax or eax");
	operand_size(reg_width(src));
	emit(reg_width(src) == 1 ? 0xee : 0xef);
	return *this;
}

Assembler &Assembler::in(Reg dst, std::uint8_t port)
{
	if (reg_number(dst) != 0 || reg_width(dst) == 8)
		invalid("IN takes al, ax or eax");
	operand_size(reg_width(dst));
	emit(reg_width(dst) == 1 ? 0xe4 : 0xe5);
	emit(port);
	return *this;
}

Assembler &Assembler::in_dx(Reg dst)
{
	if (reg_number(dst) != 0 || reg_width(dst) == 8)
		invalid("IN takes al, ax or eax");
	operand_size(reg_width(dst));
	emit(reg_width(dst) == 1 ? 0xec : 0xed);
	return *this;
}

Assembler &Assembler::outs(unsigned size, bool rep)
{
	if (size != 1 && size != 2 && size != 4)
		invalid("OUTS size must be 1, 2 or 4");
	operand_size(size);
	if (rep)
		emit(kRepPrefix);
	emit(size == 1 ? 0x6e : 0x6f);
	return *this;
}

Assembler &Assembler::ins(unsigned size, bool rep)
{
	if (size != 1 && size != 2 && size != 4)
		invalid("INS size must be 1, 2 or 4");
	operand_size(size);
	if (rep)
		emit(kRepPrefix);
	emit(size == 1 ? 0x6c : 0x6d);
	return *this;
}

// --- data movement ---

Assembler &Assembler::mov(Reg dst, std::uint64_t imm)
{
	const unsigned width = reg_width(dst);
	if (!fits(imm, width))
		invalid("immediate does not fit the register");
	if (width == 8 && fits_int32(imm)) {
		// MOV r/m64, imm32 (sign-extended): shorter than MOVABS.
		operand_size(8);
		emit(0xc7);
		emit(modrm_reg(0, reg_number(dst)));
		emit_le(imm, 4);
		return *this;
	}
	operand_size(width);
	emit(static_cast<std::uint8_t>((width == 1 ? 0xb0 : 0xb8) + reg_number(dst)));
	emit_le(imm, width);
	return *this;
}

Assembler &Assembler::mov(Reg dst, Reg src)
{
	if (reg_width(dst) != reg_width(src))
		invalid("MOV between registers of different widths");
	operand_size(reg_width(dst));
	emit(reg_width(dst) == 1 ? 0x88 : 0x89);
	emit(modrm_reg(reg_number(src), reg_number(dst)));
	return *this;
}

// A0/A1 (load) and A2/A3 (store) take a "moffs": an address of the current
// address size (16 in 16-bit code unless 0x67 makes it 32; 64 in 64-bit code).
static void check_accumulator(Reg acc)
{
	if (reg_number(acc) != 0)
		invalid("moffs MOV takes al, ax, eax or rax");
}

Assembler &Assembler::load(Reg acc, std::uint64_t address)
{
	check_accumulator(acc);
	unsigned address_bytes = bits_ == 64 ? 8 : 4;
	if (bits_ == 16 && address <= 0xffff)
		address_bytes = 2;
	else if (bits_ == 16)
		emit(kAddressSizePrefix);
	if (bits_ != 64 && address > 0xffffffff)
		invalid("address does not fit 32 bits");
	operand_size(reg_width(acc));
	emit(reg_width(acc) == 1 ? 0xa0 : 0xa1);
	emit_le(address, address_bytes);
	return *this;
}

Assembler &Assembler::store(std::uint64_t address, Reg acc)
{
	check_accumulator(acc);
	unsigned address_bytes = bits_ == 64 ? 8 : 4;
	if (bits_ == 16 && address <= 0xffff)
		address_bytes = 2;
	else if (bits_ == 16)
		emit(kAddressSizePrefix);
	if (bits_ != 64 && address > 0xffffffff)
		invalid("address does not fit 32 bits");
	operand_size(reg_width(acc));
	emit(reg_width(acc) == 1 ? 0xa2 : 0xa3);
	emit_le(address, address_bytes);
	return *this;
}

// --- arithmetic ---

Assembler &Assembler::xor_(Reg dst, Reg src)
{
	if (reg_width(dst) != reg_width(src))
		invalid("XOR between registers of different widths");
	operand_size(reg_width(dst));
	emit(reg_width(dst) == 1 ? 0x30 : 0x31);
	emit(modrm_reg(reg_number(src), reg_number(dst)));
	return *this;
}

Assembler &Assembler::or_(Reg dst, std::uint64_t imm)
{
	const unsigned width = reg_width(dst);
	const bool accumulator = reg_number(dst) == 0;
	if (!fits(imm, width) || (width == 8 && !fits_int32(imm)))
		invalid("OR immediate does not fit");
	operand_size(width);
	if (width == 1) {
		if (accumulator) {
			emit(0x0c);
		} else {
			emit(0x80);
			emit(modrm_reg(1, reg_number(dst)));
		}
		emit_le(imm, 1);
	} else if (fits_int8(imm, width)) {
		emit(0x83); // sign-extended imm8: the shortest form
		emit(modrm_reg(1, reg_number(dst)));
		emit_le(imm, 1);
	} else {
		if (accumulator) {
			emit(0x0d);
		} else {
			emit(0x81);
			emit(modrm_reg(1, reg_number(dst)));
		}
		emit_le(imm, width == 2 ? 2 : 4);
	}
	return *this;
}

Assembler &Assembler::dec(Reg reg)
{
	const unsigned width = reg_width(reg);
	operand_size(width);
	if (width == 1) {
		emit(0xfe);
		emit(modrm_reg(1, reg_number(reg)));
	} else if (bits_ != 64) {
		emit(static_cast<std::uint8_t>(0x48 + reg_number(reg))); // a REX prefix in 64-bit code
	} else {
		emit(0xff);
		emit(modrm_reg(1, reg_number(reg)));
	}
	return *this;
}

Assembler &Assembler::div(Reg divisor)
{
	operand_size(reg_width(divisor));
	emit(reg_width(divisor) == 1 ? 0xf6 : 0xf7);
	emit(modrm_reg(6, reg_number(divisor)));
	return *this;
}

// --- control flow ---

void Assembler::jump(Label target, std::uint8_t short_opcode, std::initializer_list<std::uint8_t> near)
{
	if (target.index_ >= labels_.size())
		invalid("label of another assembler");
	const std::size_t position = labels_[target.index_];
	if (position != kUnbound) {
		const auto relative = static_cast<std::int64_t>(position) -
				      static_cast<std::int64_t>(code_.size() + 2);
		if (relative >= -128 && relative <= 127) {
			emit(short_opcode);
			emit(static_cast<std::uint8_t>(relative));
			return;
		}
	}
	for (std::uint8_t byte : near)
		emit(byte);
	const unsigned bytes = bits_ == 16 ? 2 : 4;
	label_field(target, bits_ == 16 ? Fixup::rel16 : Fixup::rel32, code_.size() + bytes);
}

Assembler &Assembler::jmp(Label target)
{
	jump(target, 0xeb, {0xe9});
	return *this;
}

Assembler &Assembler::jnz(Label target)
{
	jump(target, 0x75, {0x0f, 0x85});
	return *this;
}

Assembler &Assembler::jmp_self()
{
	return jmp(here());
}

Assembler &Assembler::far_jmp(std::uint16_t selector, Label target, unsigned offset_bits)
{
	if (bits_ == 64)
		invalid("JMP FAR ptr16:xx does not exist in 64-bit code");
	if (offset_bits != 16 && offset_bits != 32)
		invalid("far jump offset must be 16 or 32 bits");
	if (offset_bits != bits_)
		emit(kOperandSizePrefix);
	emit(0xea);
	const unsigned bytes = offset_bits / 8;
	label_field(target, offset_bits == 16 ? Fixup::abs16 : Fixup::abs32, code_.size() + bytes + 2);
	emit_le(selector, 2);
	return *this;
}

// --- simple instructions ---

Assembler &Assembler::hlt() { emit(0xf4); return *this; }
Assembler &Assembler::nop() { emit(0x90); return *this; }
Assembler &Assembler::cli() { emit(0xfa); return *this; }
Assembler &Assembler::cld() { emit(0xfc); return *this; }
Assembler &Assembler::int3() { emit(0xcc); return *this; }
Assembler &Assembler::int_(std::uint8_t vector) { emit(0xcd); emit(vector); return *this; }
Assembler &Assembler::ud2() { emit(0x0f); emit(0x0b); return *this; }
Assembler &Assembler::cpuid() { emit(0x0f); emit(0xa2); return *this; }
Assembler &Assembler::rdmsr() { emit(0x0f); emit(0x32); return *this; }
Assembler &Assembler::wrmsr() { emit(0x0f); emit(0x30); return *this; }

// --- system state ---

// 0F op1 /reg with an absolute memory operand: disp16 (16-bit addressing),
// disp32 (32-bit addressing), or SIB "no base, no index" + disp32 in 64-bit
// code (plain ModRM disp32 would be RIP-relative there).
void Assembler::address_operand(unsigned reg_field, std::uint64_t address, std::uint8_t opcode0,
				std::uint8_t opcode1)
{
	if (bits_ == 16 && address <= 0xffff) {
		emit(opcode0);
		emit(opcode1);
		emit(static_cast<std::uint8_t>((reg_field << 3) | 6));
		emit_le(address, 2);
		return;
	}
	if (bits_ == 64) {
		if (address > 0x7fffffff)
			invalid("absolute address does not fit a sign-extended disp32");
		emit(opcode0);
		emit(opcode1);
		emit(static_cast<std::uint8_t>((reg_field << 3) | 4));
		emit(0x25);
		emit_le(address, 4);
		return;
	}
	if (address > 0xffffffff)
		invalid("address does not fit 32 bits");
	if (bits_ == 16)
		emit(kAddressSizePrefix);
	emit(opcode0);
	emit(opcode1);
	emit(static_cast<std::uint8_t>((reg_field << 3) | 5));
	emit_le(address, 4);
}

Assembler &Assembler::lgdt(std::uint64_t address)
{
	address_operand(2, address, 0x0f, 0x01);
	return *this;
}

Assembler &Assembler::lidt(std::uint64_t address)
{
	address_operand(3, address, 0x0f, 0x01);
	return *this;
}

static void check_control_register(unsigned cr, Reg reg, unsigned bits)
{
	if (cr != 0 && cr != 2 && cr != 3 && cr != 4)
		invalid("control register must be CR0, CR2, CR3 or CR4");
	if (reg_width(reg) != (bits == 64 ? 8u : 4u))
		invalid("MOV CRn takes a 32-bit register (64-bit in 64-bit code)");
}

Assembler &Assembler::mov_to_cr(unsigned cr, Reg src)
{
	check_control_register(cr, src, bits_);
	emit(0x0f);
	emit(0x22);
	emit(modrm_reg(cr, reg_number(src)));
	return *this;
}

Assembler &Assembler::mov_from_cr(Reg dst, unsigned cr)
{
	check_control_register(cr, dst, bits_);
	emit(0x0f);
	emit(0x20);
	emit(modrm_reg(cr, reg_number(dst)));
	return *this;
}

Assembler &Assembler::mov_to_seg(SegReg seg, Reg src)
{
	if (reg_width(src) != 2)
		invalid("MOV Sreg takes a 16-bit register");
	if (seg == SegReg::cs)
		invalid("MOV CS is not an instruction");
	emit(0x8e);
	emit(modrm_reg(static_cast<unsigned>(seg), reg_number(src)));
	return *this;
}

Assembler &Assembler::raw(std::initializer_list<std::uint8_t> bytes)
{
	for (std::uint8_t byte : bytes)
		emit(byte);
	return *this;
}

} // namespace kvmpp::guest
