// SPDX-License-Identifier: GPL-2.0
//
// Checks every instruction form guest::Assembler emits against GNU as: each
// case is a line of AT&T assembly and the same instruction built with the
// Assembler; the cases of one mode are assembled together by `as` and the
// bytes compared case by case. Needs `as` and `objcopy` (binutils) on the
// host. Exit status 0 if every encoding matches.
#include <kvmpp/assembler.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

using kvmpp::guest::Assembler;
using kvmpp::guest::Label;
using kvmpp::guest::Reg;
using kvmpp::guest::SegReg;

namespace {

struct Case {
	std::string gas; // one or more lines of GNU as input
	std::function<void(Assembler &)> emit;
	std::uint64_t origin = 0; // of the Assembler (for absolute label addresses)
};

std::vector<Case> cases_for(unsigned bits)
{
	std::vector<Case> c;
	const bool b64 = bits == 64;

	// Port I/O.
	c.push_back({"out %al, $0x10", [](Assembler &a) { a.out(0x10, Reg::al); }});
	c.push_back({"out %ax, $0x11", [](Assembler &a) { a.out(0x11, Reg::ax); }});
	c.push_back({"out %eax, $0xf1", [](Assembler &a) { a.out(0xf1, Reg::eax); }});
	c.push_back({"out %al, (%dx)", [](Assembler &a) { a.out_dx(Reg::al); }});
	c.push_back({"out %ax, (%dx)", [](Assembler &a) { a.out_dx(Reg::ax); }});
	c.push_back({"out %eax, (%dx)", [](Assembler &a) { a.out_dx(Reg::eax); }});
	c.push_back({"in $0x20, %al", [](Assembler &a) { a.in(Reg::al, 0x20); }});
	c.push_back({"in $0x21, %ax", [](Assembler &a) { a.in(Reg::ax, 0x21); }});
	c.push_back({"in $0x22, %eax", [](Assembler &a) { a.in(Reg::eax, 0x22); }});
	c.push_back({"in (%dx), %al", [](Assembler &a) { a.in_dx(Reg::al); }});
	c.push_back({"in (%dx), %ax", [](Assembler &a) { a.in_dx(Reg::ax); }});
	c.push_back({"in (%dx), %eax", [](Assembler &a) { a.in_dx(Reg::eax); }});
	const char *sizes = "bwl";
	for (unsigned size : {1u, 2u, 4u}) {
		const std::string suffix(1, sizes[size == 1 ? 0 : size == 2 ? 1 : 2]);
		c.push_back({"outs" + suffix, [size](Assembler &a) { a.outs(size, false); }});
		c.push_back({"rep outs" + suffix, [size](Assembler &a) { a.outs(size, true); }});
		c.push_back({"ins" + suffix, [size](Assembler &a) { a.ins(size, false); }});
		c.push_back({"rep ins" + suffix, [size](Assembler &a) { a.ins(size, true); }});
	}

	// MOV.
	c.push_back({"mov $0x2a, %al", [](Assembler &a) { a.mov(Reg::al, 0x2a); }});
	c.push_back({"mov $0xff, %bl", [](Assembler &a) { a.mov(Reg::bl, 0xff); }});
	c.push_back({"mov $0x1234, %ax", [](Assembler &a) { a.mov(Reg::ax, 0x1234); }});
	c.push_back({"mov $0xfedc, %di", [](Assembler &a) { a.mov(Reg::di, 0xfedc); }});
	c.push_back({"mov $0x12345678, %eax", [](Assembler &a) { a.mov(Reg::eax, 0x12345678); }});
	c.push_back({"mov $0xffffffff, %ecx", [](Assembler &a) { a.mov(Reg::ecx, 0xffffffff); }});
	c.push_back({"mov $0x10000, %edx", [](Assembler &a) { a.mov(Reg::edx, 0x10000); }});
	c.push_back({"mov $0xc0000080, %ecx", [](Assembler &a) { a.mov(Reg::ecx, 0xc0000080); }});
	c.push_back({"mov %ebx, %eax", [](Assembler &a) { a.mov(Reg::eax, Reg::ebx); }});
	c.push_back({"mov %cl, %al", [](Assembler &a) { a.mov(Reg::al, Reg::cl); }});
	c.push_back({"mov %si, %di", [](Assembler &a) { a.mov(Reg::di, Reg::si); }});
	if (b64) {
		c.push_back({"mov $0x1, %rax", [](Assembler &a) { a.mov(Reg::rax, 1); }});
		c.push_back({"mov $-2, %rdx", [](Assembler &a) { a.mov(Reg::rdx, ~std::uint64_t(1)); }});
		c.push_back({"movabs $0x1122334455667788, %rbx",
			     [](Assembler &a) { a.mov(Reg::rbx, 0x1122334455667788); }});
		c.push_back({"movabs $0x80000000, %rsi", [](Assembler &a) { a.mov(Reg::rsi, 0x80000000); }});
		c.push_back({"mov %rsp, %rbp", [](Assembler &a) { a.mov(Reg::rbp, Reg::rsp); }});
		c.push_back({"movabs 0x20000, %al", [](Assembler &a) { a.load(Reg::al, 0x20000); }});
		c.push_back({"movabs 0x20000, %eax", [](Assembler &a) { a.load(Reg::eax, 0x20000); }});
		c.push_back({"movabs 0x40020000, %rax", [](Assembler &a) { a.load(Reg::rax, 0x40020000); }});
		c.push_back({"movabs %eax, 0x20004", [](Assembler &a) { a.store(0x20004, Reg::eax); }});
		c.push_back({"movabs %ax, 0x20004", [](Assembler &a) { a.store(0x20004, Reg::ax); }});
	} else {
		c.push_back({"mov 0x1234, %al", [](Assembler &a) { a.load(Reg::al, 0x1234); }});
		c.push_back({"mov 0x1234, %ax", [](Assembler &a) { a.load(Reg::ax, 0x1234); }});
		c.push_back({"mov 0x2000, %eax", [](Assembler &a) { a.load(Reg::eax, 0x2000); }});
		c.push_back({"mov %eax, 0x2004", [](Assembler &a) { a.store(0x2004, Reg::eax); }});
		c.push_back({"mov %al, 0x2004", [](Assembler &a) { a.store(0x2004, Reg::al); }});
		const std::string addr32 = bits == 16 ? "addr32 " : "";
		c.push_back({addr32 + "mov 0x20000, %eax", [](Assembler &a) { a.load(Reg::eax, 0x20000); }});
		c.push_back({addr32 + "mov %al, 0x40020000", [](Assembler &a) { a.store(0x40020000, Reg::al); }});
	}

	// Arithmetic.
	c.push_back({"xor %eax, %eax", [](Assembler &a) { a.xor_(Reg::eax, Reg::eax); }});
	c.push_back({"xor %dl, %cl", [](Assembler &a) { a.xor_(Reg::cl, Reg::dl); }});
	c.push_back({"or $1, %eax", [](Assembler &a) { a.or_(Reg::eax, 1); }});
	c.push_back({"or $0x20, %al", [](Assembler &a) { a.or_(Reg::al, 0x20); }});
	c.push_back({"or $0x1, %cl", [](Assembler &a) { a.or_(Reg::cl, 1); }});
	c.push_back({"or $0x100, %eax", [](Assembler &a) { a.or_(Reg::eax, 0x100); }});
	c.push_back({"or $0x80000000, %eax", [](Assembler &a) { a.or_(Reg::eax, 0x80000000); }});
	c.push_back({"or $0x1000, %ebx", [](Assembler &a) { a.or_(Reg::ebx, 0x1000); }});
	c.push_back({"or $0xffffffff, %eax", [](Assembler &a) { a.or_(Reg::eax, 0xffffffff); }});
	c.push_back({"or $0x80, %ax", [](Assembler &a) { a.or_(Reg::ax, 0x80); }});
	c.push_back({"or $0x7f, %si", [](Assembler &a) { a.or_(Reg::si, 0x7f); }});
	c.push_back({"dec %ecx", [](Assembler &a) { a.dec(Reg::ecx); }});
	c.push_back({"dec %cx", [](Assembler &a) { a.dec(Reg::cx); }});
	c.push_back({"dec %cl", [](Assembler &a) { a.dec(Reg::cl); }});
	c.push_back({"div %cl", [](Assembler &a) { a.div(Reg::cl); }});
	c.push_back({"div %ecx", [](Assembler &a) { a.div(Reg::ecx); }});
	c.push_back({"div %bx", [](Assembler &a) { a.div(Reg::bx); }});
	if (b64) {
		c.push_back({"dec %rcx", [](Assembler &a) { a.dec(Reg::rcx); }});
		c.push_back({"or $0x100, %rax", [](Assembler &a) { a.or_(Reg::rax, 0x100); }});
		c.push_back({"xor %rdx, %rdx", [](Assembler &a) { a.xor_(Reg::rdx, Reg::rdx); }});
	}

	// Jumps (GNU as relaxes: short when the target is known to be close).
	c.push_back({"1: jmp 1b", [](Assembler &a) { a.jmp_self(); }});
	c.push_back({"1: nop; nop; jnz 1b", [](Assembler &a) {
			     Label l = a.here();
			     a.nop().nop().jnz(l);
		     }});
	c.push_back({"1: .skip 200, 0x90; jmp 1b", [](Assembler &a) {
			     Label l = a.here();
			     for (int i = 0; i < 200; i++)
				     a.nop();
			     a.jmp(l);
		     }});
	c.push_back({"jmp 1f; .skip 200, 0x90; 1:", [](Assembler &a) {
			     Label l = a.label();
			     a.jmp(l);
			     for (int i = 0; i < 200; i++)
				     a.nop();
			     a.bind(l);
		     }});
	c.push_back({"jnz 1f; .skip 300, 0x90; 1:", [](Assembler &a) {
			     Label l = a.label();
			     a.jnz(l);
			     for (int i = 0; i < 300; i++)
				     a.nop();
			     a.bind(l);
		     }});
	if (!b64) {
		// JMP FAR to a label at 0x1234 / 0x12345 (the Assembler's origin).
		c.push_back({"ljmpw $0x20, $0x1234",
			     [](Assembler &a) { a.far_jmp(0x20, a.here(), 16); }, 0x1234});
		c.push_back({"ljmpl $0x08, $0x12345",
			     [](Assembler &a) { a.far_jmp(0x08, a.here(), 32); }, 0x12345});
	}

	// One- and two-byte instructions.
	c.push_back({"hlt", [](Assembler &a) { a.hlt(); }});
	c.push_back({"nop", [](Assembler &a) { a.nop(); }});
	c.push_back({"cli", [](Assembler &a) { a.cli(); }});
	c.push_back({"cld", [](Assembler &a) { a.cld(); }});
	c.push_back({"int3", [](Assembler &a) { a.int3(); }});
	c.push_back({"int $0x21", [](Assembler &a) { a.int_(0x21); }});
	c.push_back({"ud2", [](Assembler &a) { a.ud2(); }});
	c.push_back({"cpuid", [](Assembler &a) { a.cpuid(); }});
	c.push_back({"rdmsr", [](Assembler &a) { a.rdmsr(); }});
	c.push_back({"wrmsr", [](Assembler &a) { a.wrmsr(); }});

	// System state.
	c.push_back({"lgdt 0xf00", [](Assembler &a) { a.lgdt(0xf00); }});
	c.push_back({"lidt 0xf30", [](Assembler &a) { a.lidt(0xf30); }});
	c.push_back({std::string(bits == 16 ? "addr32 " : "") + "lgdt 0x12345",
		     [](Assembler &a) { a.lgdt(0x12345); }});
	if (b64) {
		c.push_back({"mov %rax, %cr0", [](Assembler &a) { a.mov_to_cr(0, Reg::rax); }});
		c.push_back({"mov %rbx, %cr3", [](Assembler &a) { a.mov_to_cr(3, Reg::rbx); }});
		c.push_back({"mov %cr4, %rax", [](Assembler &a) { a.mov_from_cr(Reg::rax, 4); }});
		c.push_back({"mov %cr2, %rdx", [](Assembler &a) { a.mov_from_cr(Reg::rdx, 2); }});
	} else {
		c.push_back({"mov %eax, %cr0", [](Assembler &a) { a.mov_to_cr(0, Reg::eax); }});
		c.push_back({"mov %ebx, %cr3", [](Assembler &a) { a.mov_to_cr(3, Reg::ebx); }});
		c.push_back({"mov %eax, %cr4", [](Assembler &a) { a.mov_to_cr(4, Reg::eax); }});
		c.push_back({"mov %cr0, %eax", [](Assembler &a) { a.mov_from_cr(Reg::eax, 0); }});
		c.push_back({"mov %cr4, %ecx", [](Assembler &a) { a.mov_from_cr(Reg::ecx, 4); }});
	}
	c.push_back({"mov %ax, %ds", [](Assembler &a) { a.mov_to_seg(SegReg::ds, Reg::ax); }});
	c.push_back({"mov %ax, %es", [](Assembler &a) { a.mov_to_seg(SegReg::es, Reg::ax); }});
	c.push_back({"mov %dx, %ss", [](Assembler &a) { a.mov_to_seg(SegReg::ss, Reg::dx); }});
	c.push_back({"mov %bx, %fs", [](Assembler &a) { a.mov_to_seg(SegReg::fs, Reg::bx); }});
	c.push_back({"mov %ax, %gs", [](Assembler &a) { a.mov_to_seg(SegReg::gs, Reg::ax); }});
	return c;
}

std::string hex(const std::vector<std::uint8_t> &bytes)
{
	std::string text;
	char buffer[4];
	for (std::uint8_t byte : bytes) {
		std::snprintf(buffer, sizeof(buffer), "%02x ", byte);
		text += buffer;
	}
	return text;
}

int run(const std::vector<std::string> &argv)
{
	const pid_t pid = fork();
	if (pid == 0) {
		std::vector<char *> args;
		for (const std::string &arg : argv)
			args.push_back(const_cast<char *>(arg.c_str()));
		args.push_back(nullptr);
		execvp(args[0], args.data());
		_exit(127);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Assembles `source` with GNU as; returns the .text bytes.
bool gas_assemble(const std::string &dir, unsigned bits, const std::string &source,
		  std::vector<std::uint8_t> &bytes)
{
	const std::string base = dir + "/code" + std::to_string(bits);
	std::ofstream(base + ".s") << source;
	if (run({"as", "--64", "-o", base + ".o", base + ".s"}) != 0 ||
	    run({"objcopy", "-O", "binary", "-j", ".text", base + ".o", base + ".bin"}) != 0)
		return false;
	std::ifstream in(base + ".bin", std::ios::binary);
	bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
	return true;
}

} // namespace

int main()
{
	char dir_template[] = "/tmp/kvmpp-asm-XXXXXX";
	const char *dir = mkdtemp(dir_template);
	if (!dir) {
		std::perror("mkdtemp");
		return 2;
	}
	int failures = 0, checked = 0;
	for (unsigned bits : {16u, 32u, 64u}) {
		const std::vector<Case> cases = cases_for(bits);
		std::string source = ".code" + std::to_string(bits) + "\n";
		std::vector<std::vector<std::uint8_t>> ours;
		for (const Case &c : cases) {
			source += c.gas + "\n";
			Assembler a(bits, c.origin);
			c.emit(a);
			const auto bytes = a.bytes();
			ours.emplace_back(bytes.begin(), bytes.end());
		}
		std::vector<std::uint8_t> theirs;
		if (!gas_assemble(dir, bits, source, theirs)) {
			std::printf("FAIL: as/objcopy failed for %u-bit code (see %s)\n", bits, dir);
			return 1;
		}
		std::size_t at = 0;
		for (std::size_t i = 0; i < cases.size(); i++) {
			const std::vector<std::uint8_t> expected(
				theirs.begin() + std::min(at, theirs.size()),
				theirs.begin() + std::min(at + ours[i].size(), theirs.size()));
			checked++;
			if (expected != ours[i]) {
				failures++;
				std::printf("FAIL %u-bit '%s': ours %s, as %s\n", bits, cases[i].gas.c_str(),
					    hex(ours[i]).c_str(), hex(expected).c_str());
				break; // later offsets are off too
			}
			at += ours[i].size();
		}
		if (failures == 0 && at != theirs.size()) {
			failures++;
			std::printf("FAIL %u-bit: as produced %zu bytes, ours %zu\n", bits, theirs.size(), at);
		}
	}
	run({"rm", "-rf", dir});
	std::printf("%s: %d encodings checked against GNU as, %d failed\n",
		    failures ? "FAIL" : "ok", checked, failures);
	return failures ? 1 : 0;
}
