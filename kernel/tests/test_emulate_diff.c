// SPDX-License-Identifier: GPL-2.0-only
/*
 * Differential test of kernel/x86/emulate.c against the host CPU: each
 * generated instruction runs natively (in an executable buffer, between a
 * prologue that loads every GPR, RFLAGS and XMM register from memory and an
 * epilogue that stores them back) and in the emulator, from the same state
 * and the same data memory; registers, flags, RIP, XMM registers and memory
 * must come out the same. Flags the manuals leave undefined are masked.
 *
 * The instructions are random (fixed seeds: the same cases every run) over
 * the forms the emulator handles, in 64-bit code with 8/16/32/64-bit
 * operands through REX.W and 66, 67, segment overrides (FS and GS count),
 * LOCK, REX bits, stray prefixes, every ModRM/SIB form and RIP-relative
 * addressing, with edge values mixed into the random ones. Half the cases
 * run the emulator with its memory as MMIO, through the KVMPP_EMUL_IO round
 * trip, which must not change the result.
 *
 * x86-64 Linux hosts only (MAP_32BIT, arch_prctl).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <asm/prctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "x86/emulate.h"

/* RFLAGS (SDM vol. 1, 3.4.3), CR4.OSFXSR (vol. 3A, 2.5). */
#define CF		0x001ull
#define PF		0x004ull
#define AF		0x010ull
#define ZF		0x040ull
#define SF		0x080ull
#define DF		0x400ull
#define OF		0x800ull
#define ARITH		(CF | PF | AF | ZF | SF | OF)
#define RFLAGS_USER	0x202ull	/* bit 1, and IF as user mode always has it */
#define CR4_OSFXSR	0x200ull

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI };
enum { ES, CS, SS, DS, FS, GS };

/*
 * The buffer: code, then the register images, then the data the
 * instructions address, all below 2 GiB so that absolute disp32 addressing
 * and 67-truncated addresses reach it.
 */
#define BUF_ADDR	0x40000000ul
#define BUF_SIZE	0x8000ul
#define CODE_OFF	0x0000
#define IN_OFF		0x1000		/* struct regs loaded before the instruction */
#define OUT_OFF		0x1200		/* struct regs stored after it */
#define SAVED_RSP_OFF	0x1400
#define DATA_OFF	0x2000
#define DATA_SIZE	0x4000
/* Operands are placed here, far enough from the data's edges for BT offsets and strings. */
#define TARGET_LO	(DATA_OFF + 0x1000)
#define TARGET_HI	(DATA_OFF + 0x3000)

struct regs {
	u64 gprs[16];
	u64 rflags;
	u64 pad;
	u8 xmm[16][16];
	u64 mm[8];
};

static u8 *buf;
static u64 insn_addr;			/* where the instruction under test sits */
static u8 data_init[DATA_SIZE];
static u8 data_native[DATA_SIZE];
static struct regs native_out;
static u64 fs_base, gs_base;

/* ---- random numbers (xorshift64*) ---- */

static u64 rng_state;

static u64 rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned int below(unsigned int n)
{
	return (unsigned int)(rnd() % n);
}

static bool chance(unsigned int percent)
{
	return below(100) < percent;
}

/* A value for a register or memory: random, or one of the edges where flags flip. */
static u64 value(void)
{
	static const u64 edges[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
		0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, ~0ull - 1, 0x0f, 0x10,
	};
	u64 v;

	switch (below(4)) {
	case 0:
		return edges[below(ARRAY_SIZE(edges))];
	case 1:
		v = edges[below(ARRAY_SIZE(edges))];
		return chance(50) ? ~v : v ^ (rnd() & 0xffffffff00000000ull);
	default:
		return rnd();
	}
}

/* ---- the native harness ---- */

static u8 *emit_bytes(u8 *p, const u8 *b, unsigned int n)
{
	if (n)
		memcpy(p, b, n);
	return p + n;
}

/* An instruction with a [disp32] operand (ModRM mod 0 rm 4, SIB 0x25: no base, no index). */
static u8 *emit_abs(u8 *p, int prefix, int rex, u8 op0, int op1, unsigned int reg, u64 addr)
{
	u32 a = (u32)addr;

	if (prefix)
		*p++ = (u8)prefix;
	if (rex)
		*p++ = (u8)rex;
	*p++ = op0;
	if (op1 >= 0)
		*p++ = (u8)op1;
	*p++ = (u8)(((reg & 7) << 3) | 4);
	*p++ = 0x25;
	memcpy(p, &a, 4);
	return p + 4;
}

/*
 * prologue: save the callee-saved registers and RSP, load RFLAGS, XMM0-15,
 * MM0-7 and all 16 GPRs (RSP too: the instruction may address through it);
 * the instruction; epilogue: store them all, restore RSP, store RFLAGS,
 * CLD, EMMS, restore the callee-saved registers, return.
 */
static void build_harness(const u8 *insn, unsigned int len)
{
	static const u8 save[] = { 0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57 };
	static const u8 restore[] = { 0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3 };
	u64 base = (u64)buf;
	u8 *p = buf + CODE_OFF;
	unsigned int i;

	p = emit_bytes(p, save, sizeof(save));
	p = emit_abs(p, 0, 0x48, 0x89, -1, RSP, base + SAVED_RSP_OFF);	/* mov [saved], rsp */
	p = emit_abs(p, 0, 0, 0xff, -1, 6, base + IN_OFF + offsetof(struct regs, rflags));	/* push */
	*p++ = 0x9d;							/* popfq */
	for (i = 0; i < 16; i++)					/* movdqu xmmi, [in] */
		p = emit_abs(p, 0xf3, i >= 8 ? 0x44 : 0, 0x0f, 0x6f, i,
			     base + IN_OFF + offsetof(struct regs, xmm) + 16 * i);
	for (i = 0; i < 8; i++)						/* movq mmi, [in] */
		p = emit_abs(p, 0, 0, 0x0f, 0x6f, i, base + IN_OFF + offsetof(struct regs, mm) + 8 * i);
	for (i = 0; i < 16; i++)					/* mov ri, [in] */
		p = emit_abs(p, 0, i >= 8 ? 0x4c : 0x48, 0x8b, -1, i, base + IN_OFF + 8 * i);
	insn_addr = (u64)p;
	p = emit_bytes(p, insn, len);
	for (i = 0; i < 16; i++)					/* mov [out], ri */
		p = emit_abs(p, 0, i >= 8 ? 0x4c : 0x48, 0x89, -1, i, base + OUT_OFF + 8 * i);
	for (i = 0; i < 16; i++)					/* movdqu [out], xmmi */
		p = emit_abs(p, 0xf3, i >= 8 ? 0x44 : 0, 0x0f, 0x7f, i,
			     base + OUT_OFF + offsetof(struct regs, xmm) + 16 * i);
	for (i = 0; i < 8; i++)						/* movq [out], mmi */
		p = emit_abs(p, 0, 0, 0x0f, 0x7f, i, base + OUT_OFF + offsetof(struct regs, mm) + 8 * i);
	p = emit_abs(p, 0, 0x48, 0x8b, -1, RSP, base + SAVED_RSP_OFF);	/* mov rsp, [saved] */
	*p++ = 0x9c;							/* pushfq */
	p = emit_abs(p, 0, 0, 0x8f, -1, 0, base + OUT_OFF + offsetof(struct regs, rflags));	/* pop */
	*p++ = 0xfc;							/* cld */
	*p++ = 0x0f;							/* emms */
	*p++ = 0x77;
	p = emit_bytes(p, restore, sizeof(restore));
	assert_true(p <= buf + IN_OFF);
}

/* A fault in native code (a generator bug): RSP is the test's, so handle it on another stack. */
static sigjmp_buf native_fault;
static volatile sig_atomic_t native_signal;

static void on_native_fault(int sig)
{
	native_signal = sig;
	siglongjmp(native_fault, 1);
}

static int run_native(const struct regs *in)
{
	memcpy(buf + IN_OFF, in, sizeof(*in));
	memcpy(buf + DATA_OFF, data_init, DATA_SIZE);
	__builtin___clear_cache((char *)buf, (char *)buf + IN_OFF);
	native_signal = 0;
	if (sigsetjmp(native_fault, 1)) {
		__asm__ volatile("emms");	/* the x87 stack the MMX loads filled */
		return native_signal;
	}
	((void (*)(void))(buf + CODE_OFF))();
	memcpy(&native_out, buf + OUT_OFF, sizeof(native_out));
	memcpy(data_native, buf + DATA_OFF, DATA_SIZE);
	return 0;
}

/* ---- the emulator's side ---- */

static struct {
	bool mmio;			/* data accesses go through KVMPP_EMUL_IO */
	int bad_accesses;
	u64 bad_linear;
	int exits;
	u64 lo, hi;			/* the bytes data accesses touched: [lo, hi) */
} env;

static bool in_data(u64 linear, unsigned int len)
{
	u64 d = (u64)buf + DATA_OFF;

	return linear >= d && linear + len <= d + DATA_SIZE && linear + len > linear;
}

static int bad_access(u64 linear)
{
	env.bad_accesses++;
	env.bad_linear = linear;
	return KVMPP_EMUL_FAULT;
}

static int env_fetch(void *ctx, u64 linear, void *dst, unsigned int len)
{
	(void)ctx;
	if (linear < (u64)buf || linear + len > (u64)buf + IN_OFF)
		return bad_access(linear);
	memcpy(dst, (void *)linear, len);
	return 0;
}

static int env_access(u64 linear, void *dst, const void *src, unsigned int len, u64 *gpa)
{
	if (len < 1 || len > 8 || (linear & 0xfff) + len > 0x1000 || !in_data(linear, len))
		return bad_access(linear);
	if (linear < env.lo)
		env.lo = linear;
	if (linear + len > env.hi)
		env.hi = linear + len;
	if (env.mmio) {
		*gpa = linear;
		return KVMPP_EMUL_IO;
	}
	memcpy(dst ? dst : (void *)linear, src ? src : (void *)linear, len);
	return 0;
}

static int env_read(void *ctx, u64 linear, void *dst, unsigned int len, u64 *gpa)
{
	(void)ctx;
	return env_access(linear, dst, NULL, len, gpa);
}

static int env_write(void *ctx, u64 linear, const void *src, unsigned int len, u64 *gpa)
{
	(void)ctx;
	return env_access(linear, NULL, src, len, gpa);
}

static int env_cmpxchg(void *ctx, u64 linear, const void *old, const void *new,
		       unsigned int len, u64 *gpa)
{
	int r = env_access(linear, NULL, NULL, len, gpa);

	(void)ctx;
	if (r)
		return r;
	if (memcmp((void *)linear, old, len))
		return KVMPP_EMUL_CHANGED;
	memcpy((void *)linear, new, len);
	return 0;
}

static const struct kvmpp_emul_ops plain_ops = {
	.fetch = env_fetch, .read = env_read, .write = env_write,
};

static const struct kvmpp_emul_ops cmpxchg_ops = {
	.fetch = env_fetch, .read = env_read, .write = env_write, .cmpxchg = env_cmpxchg,
};

static struct kvmpp_emul_cpu emu_cpu;
static struct kvmpp_emul_ctxt emu_ctxt;

/* Emulate until the instruction completed (a REP string one may need several calls). */
static int run_emulator(const struct regs *in, bool mmio, bool with_cmpxchg)
{
	const struct kvmpp_emul_ops *ops = with_cmpxchg ? &cmpxchg_ops : &plain_ops;
	u64 start = insn_addr;
	int r, calls = 0;

	memset(&emu_cpu, 0, sizeof(emu_cpu));
	memset(&emu_ctxt, 0, sizeof(emu_ctxt));
	memcpy(emu_cpu.gprs, in->gprs, sizeof(emu_cpu.gprs));
	memcpy(emu_cpu.xmm, in->xmm, sizeof(emu_cpu.xmm));
	memcpy(emu_cpu.mm, in->mm, sizeof(emu_cpu.mm));
	emu_cpu.rflags = in->rflags;
	emu_cpu.rip = insn_addr;
	emu_cpu.code_size = 8;
	emu_cpu.cr4 = CR4_OSFXSR;
	emu_cpu.seg_base[FS] = fs_base;
	emu_cpu.seg_base[GS] = gs_base;
	memcpy(buf + DATA_OFF, data_init, DATA_SIZE);
	memset(&env, 0, sizeof(env));
	env.mmio = mmio;
	env.lo = ~0ull;

	for (;;) {
		r = kvmpp_emulate(ops, &emu_cpu, &emu_ctxt);
		if (r == KVMPP_EMUL_IO) {
			struct kvmpp_emul_io *io = &emu_ctxt.io;

			if (++env.exits > 1000)
				return -ELOOP;	/* no instruction here needs that many */
			if (io->write)
				memcpy((void *)io->gpa, io->data, io->len);
			else
				memcpy(io->data, (void *)io->gpa, io->len);
			continue;
		}
		/* REP strings come back with RIP on the instruction after a batch. */
		if (r == KVMPP_EMUL_DONE && emu_cpu.rip == start && ++calls < 100)
			continue;
		return r;
	}
}

/* ---- instruction templates ---- */

enum form {
	O_EG,		/* ModRM r/m, reg */
	O_GE,		/* ModRM reg, r/m */
	O_E,		/* ModRM r/m with an opcode extension */
	O_AI,		/* accumulator, immediate */
	O_RI,		/* register in the opcode, immediate */
	O_MOFFS,	/* A0-A3 */
	O_STR,		/* string instructions */
};

#define T_LOCK		0x01	/* lockable with a memory destination */
#define T_MEM_ONLY	0x02
#define T_ALIGN16	0x04
#define T_BITOFF	0x08	/* the reg operand is a bit offset into memory */
#define T_WRITES_RM	0x10	/* for MOFFS: A2/A3 */
#define T_CMP_STR	0x20	/* CMPS/SCAS */
#define T_SHIFT		0x40	/* a shift count (imm8, 1 or CL: T_CL) decides the undefined flags */
#define T_CL		0x80	/* the count is CL */
#define T_DIV		0x100	/* DIV/IDIV: #DE on overflow */
#define T_SHD		0x200	/* SHLD/SHRD */
#define T_CX8		0x400	/* CMPXCHG8B/16B: size 8 without REX.W, 16 with; rDX:rAX often equal */

struct tmpl {
	const char *name;
	u8 op[2];
	u8 op_len;
	u8 form;
	signed char ext;	/* ModRM.reg of a group opcode, or -1 */
	u8 size;		/* 1, 16 (SSE), 4 (32/64 only) or 0 (16/32/64) */
	char imm;		/* 0, 'b', 'z', 'v' */
	u16 flags;
	u64 undef;		/* flags left undefined */
	u8 mandatory;		/* SSE: 0, 0x66 or 0xf3 */
};

#define MUL_UNDEF	(SF | ZF | AF | PF)
#define DIV_UNDEF	ARITH

#define LOGIC_UNDEF	AF
#define BT_UNDEF	(OF | SF | AF | PF)

#define ALU_TMPLS(base, nm, lk, un)						\
	{ nm " Eb,Gb", { base + 0 }, 1, O_EG, -1, 1, 0, lk, un, 0 },		\
	{ nm " Ev,Gv", { base + 1 }, 1, O_EG, -1, 0, 0, lk, un, 0 },		\
	{ nm " Gb,Eb", { base + 2 }, 1, O_GE, -1, 1, 0, 0, un, 0 },		\
	{ nm " Gv,Ev", { base + 3 }, 1, O_GE, -1, 0, 0, 0, un, 0 },		\
	{ nm " AL,Ib", { base + 4 }, 1, O_AI, -1, 1, 'b', 0, un, 0 },		\
	{ nm " rAX,Iz", { base + 5 }, 1, O_AI, -1, 0, 'z', 0, un, 0 },		\
	{ nm " Eb,Ib", { 0x80 }, 1, O_E, (base) >> 3, 1, 'b', lk, un, 0 },	\
	{ nm " Ev,Iz", { 0x81 }, 1, O_E, (base) >> 3, 0, 'z', lk, un, 0 },	\
	{ nm " Ev,Ib", { 0x83 }, 1, O_E, (base) >> 3, 0, 'b', lk, un, 0 }

static const struct tmpl mov_tmpls[] = {
	{ "mov Eb,Gb", { 0x88 }, 1, O_EG, -1, 1, 0, 0, 0, 0 },
	{ "mov Ev,Gv", { 0x89 }, 1, O_EG, -1, 0, 0, 0, 0, 0 },
	{ "mov Gb,Eb", { 0x8a }, 1, O_GE, -1, 1, 0, 0, 0, 0 },
	{ "mov Gv,Ev", { 0x8b }, 1, O_GE, -1, 0, 0, 0, 0, 0 },
	{ "mov Eb,Ib", { 0xc6 }, 1, O_E, 0, 1, 'b', 0, 0, 0 },
	{ "mov Ev,Iz", { 0xc7 }, 1, O_E, 0, 0, 'z', 0, 0, 0 },
	{ "mov AL,Ob", { 0xa0 }, 1, O_MOFFS, -1, 1, 0, 0, 0, 0 },
	{ "mov rAX,Ov", { 0xa1 }, 1, O_MOFFS, -1, 0, 0, 0, 0, 0 },
	{ "mov Ob,AL", { 0xa2 }, 1, O_MOFFS, -1, 1, 0, T_WRITES_RM, 0, 0 },
	{ "mov Ov,rAX", { 0xa3 }, 1, O_MOFFS, -1, 0, 0, T_WRITES_RM, 0, 0 },
	{ "mov r8,Ib", { 0xb0 }, 1, O_RI, -1, 1, 'b', 0, 0, 0 },
	{ "mov r,Iv", { 0xb8 }, 1, O_RI, -1, 0, 'v', 0, 0, 0 },
	{ "movnti My,Gy", { 0x0f, 0xc3 }, 2, O_EG, -1, 4, 0, T_MEM_ONLY, 0, 0 },
};

static const struct tmpl movx_tmpls[] = {
	{ "movzx Gv,Eb", { 0x0f, 0xb6 }, 2, O_GE, -1, 0, 0, 0, 0, 0 },
	{ "movzx Gv,Ew", { 0x0f, 0xb7 }, 2, O_GE, -1, 0, 0, 0, 0, 0 },
	{ "movsx Gv,Eb", { 0x0f, 0xbe }, 2, O_GE, -1, 0, 0, 0, 0, 0 },
	{ "movsx Gv,Ew", { 0x0f, 0xbf }, 2, O_GE, -1, 0, 0, 0, 0, 0 },
	{ "movsxd Gv,Ed", { 0x63 }, 1, O_GE, -1, 0, 0, 0, 0, 0 },
};

static const struct tmpl alu_tmpls[] = {
	ALU_TMPLS(0x00, "add", T_LOCK, 0),
	ALU_TMPLS(0x08, "or", T_LOCK, LOGIC_UNDEF),
	ALU_TMPLS(0x10, "adc", T_LOCK, 0),
	ALU_TMPLS(0x18, "sbb", T_LOCK, 0),
	ALU_TMPLS(0x20, "and", T_LOCK, LOGIC_UNDEF),
	ALU_TMPLS(0x28, "sub", T_LOCK, 0),
	ALU_TMPLS(0x30, "xor", T_LOCK, LOGIC_UNDEF),
	ALU_TMPLS(0x38, "cmp", 0, 0),
};

static const struct tmpl unary_tmpls[] = {
	{ "test Eb,Gb", { 0x84 }, 1, O_EG, -1, 1, 0, 0, LOGIC_UNDEF, 0 },
	{ "test Ev,Gv", { 0x85 }, 1, O_EG, -1, 0, 0, 0, LOGIC_UNDEF, 0 },
	{ "test AL,Ib", { 0xa8 }, 1, O_AI, -1, 1, 'b', 0, LOGIC_UNDEF, 0 },
	{ "test rAX,Iz", { 0xa9 }, 1, O_AI, -1, 0, 'z', 0, LOGIC_UNDEF, 0 },
	{ "test Eb,Ib", { 0xf6 }, 1, O_E, 0, 1, 'b', 0, LOGIC_UNDEF, 0 },
	{ "test Ev,Iz", { 0xf7 }, 1, O_E, 0, 0, 'z', 0, LOGIC_UNDEF, 0 },
	{ "not Eb", { 0xf6 }, 1, O_E, 2, 1, 0, T_LOCK, 0, 0 },
	{ "not Ev", { 0xf7 }, 1, O_E, 2, 0, 0, T_LOCK, 0, 0 },
	{ "neg Eb", { 0xf6 }, 1, O_E, 3, 1, 0, T_LOCK, 0, 0 },
	{ "neg Ev", { 0xf7 }, 1, O_E, 3, 0, 0, T_LOCK, 0, 0 },
	{ "inc Eb", { 0xfe }, 1, O_E, 0, 1, 0, T_LOCK, 0, 0 },
	{ "dec Eb", { 0xfe }, 1, O_E, 1, 1, 0, T_LOCK, 0, 0 },
	{ "inc Ev", { 0xff }, 1, O_E, 0, 0, 0, T_LOCK, 0, 0 },
	{ "dec Ev", { 0xff }, 1, O_E, 1, 0, 0, T_LOCK, 0, 0 },
	{ "xchg Eb,Gb", { 0x86 }, 1, O_EG, -1, 1, 0, T_LOCK, 0, 0 },
	{ "xchg Ev,Gv", { 0x87 }, 1, O_EG, -1, 0, 0, T_LOCK, 0, 0 },
	{ "xadd Eb,Gb", { 0x0f, 0xc0 }, 2, O_EG, -1, 1, 0, T_LOCK, 0, 0 },
	{ "xadd Ev,Gv", { 0x0f, 0xc1 }, 2, O_EG, -1, 0, 0, T_LOCK, 0, 0 },
	{ "cmpxchg Eb,Gb", { 0x0f, 0xb0 }, 2, O_EG, -1, 1, 0, T_LOCK, 0, 0 },
	{ "cmpxchg Ev,Gv", { 0x0f, 0xb1 }, 2, O_EG, -1, 0, 0, T_LOCK, 0, 0 },
};

static const struct tmpl bt_tmpls[] = {
	{ "bt Ev,Gv", { 0x0f, 0xa3 }, 2, O_EG, -1, 0, 0, T_BITOFF, BT_UNDEF, 0 },
	{ "bts Ev,Gv", { 0x0f, 0xab }, 2, O_EG, -1, 0, 0, T_BITOFF | T_LOCK, BT_UNDEF, 0 },
	{ "btr Ev,Gv", { 0x0f, 0xb3 }, 2, O_EG, -1, 0, 0, T_BITOFF | T_LOCK, BT_UNDEF, 0 },
	{ "btc Ev,Gv", { 0x0f, 0xbb }, 2, O_EG, -1, 0, 0, T_BITOFF | T_LOCK, BT_UNDEF, 0 },
	{ "bt Ev,Ib", { 0x0f, 0xba }, 2, O_E, 4, 0, 'b', 0, BT_UNDEF, 0 },
	{ "bts Ev,Ib", { 0x0f, 0xba }, 2, O_E, 5, 0, 'b', T_LOCK, BT_UNDEF, 0 },
	{ "btr Ev,Ib", { 0x0f, 0xba }, 2, O_E, 6, 0, 'b', T_LOCK, BT_UNDEF, 0 },
	{ "btc Ev,Ib", { 0x0f, 0xba }, 2, O_E, 7, 0, 'b', T_LOCK, BT_UNDEF, 0 },
};

static const struct tmpl sse_tmpls[] = {
	{ "movups Vx,Wx", { 0x0f, 0x10 }, 2, O_GE, -1, 16, 0, 0, 0, 0 },
	{ "movups Wx,Vx", { 0x0f, 0x11 }, 2, O_EG, -1, 16, 0, 0, 0, 0 },
	{ "movupd Vx,Wx", { 0x0f, 0x10 }, 2, O_GE, -1, 16, 0, 0, 0, 0x66 },
	{ "movupd Wx,Vx", { 0x0f, 0x11 }, 2, O_EG, -1, 16, 0, 0, 0, 0x66 },
	{ "movaps Vx,Wx", { 0x0f, 0x28 }, 2, O_GE, -1, 16, 0, T_ALIGN16, 0, 0 },
	{ "movaps Wx,Vx", { 0x0f, 0x29 }, 2, O_EG, -1, 16, 0, T_ALIGN16, 0, 0 },
	{ "movapd Vx,Wx", { 0x0f, 0x28 }, 2, O_GE, -1, 16, 0, T_ALIGN16, 0, 0x66 },
	{ "movapd Wx,Vx", { 0x0f, 0x29 }, 2, O_EG, -1, 16, 0, T_ALIGN16, 0, 0x66 },
	{ "movdqa Vx,Wx", { 0x0f, 0x6f }, 2, O_GE, -1, 16, 0, T_ALIGN16, 0, 0x66 },
	{ "movdqa Wx,Vx", { 0x0f, 0x7f }, 2, O_EG, -1, 16, 0, T_ALIGN16, 0, 0x66 },
	{ "movdqu Vx,Wx", { 0x0f, 0x6f }, 2, O_GE, -1, 16, 0, 0, 0, 0xf3 },
	{ "movdqu Wx,Vx", { 0x0f, 0x7f }, 2, O_EG, -1, 16, 0, 0, 0, 0xf3 },
	{ "movntps Mx,Vx", { 0x0f, 0x2b }, 2, O_EG, -1, 16, 0, T_ALIGN16 | T_MEM_ONLY, 0, 0 },
	{ "movntpd Mx,Vx", { 0x0f, 0x2b }, 2, O_EG, -1, 16, 0, T_ALIGN16 | T_MEM_ONLY, 0, 0x66 },
	{ "movntdq Mx,Vx", { 0x0f, 0xe7 }, 2, O_EG, -1, 16, 0, T_ALIGN16 | T_MEM_ONLY, 0, 0x66 },
};

/* Group 2 on one opcode pair (byte, full size), count from imm8, 1 or CL. */
#define SHIFT_TMPLS(opc, nm, im, fl)							\
	{ "rol " nm, { opc }, 1, O_E, 0, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "ror " nm, { opc }, 1, O_E, 1, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "rcl " nm, { opc }, 1, O_E, 2, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "rcr " nm, { opc }, 1, O_E, 3, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "shl " nm, { opc }, 1, O_E, 4, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "shr " nm, { opc }, 1, O_E, 5, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "sal " nm, { opc }, 1, O_E, 6, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "sar " nm, { opc }, 1, O_E, 7, 1, im, T_SHIFT | fl, 0, 0 },			\
	{ "rol " nm, { opc + 1 }, 1, O_E, 0, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "ror " nm, { opc + 1 }, 1, O_E, 1, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "rcl " nm, { opc + 1 }, 1, O_E, 2, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "rcr " nm, { opc + 1 }, 1, O_E, 3, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "shl " nm, { opc + 1 }, 1, O_E, 4, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "shr " nm, { opc + 1 }, 1, O_E, 5, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "sal " nm, { opc + 1 }, 1, O_E, 6, 0, im, T_SHIFT | fl, 0, 0 },		\
	{ "sar " nm, { opc + 1 }, 1, O_E, 7, 0, im, T_SHIFT | fl, 0, 0 }

static const struct tmpl shift_tmpls[] = {
	SHIFT_TMPLS(0xc0, "E,Ib", 'b', 0),
	SHIFT_TMPLS(0xd0, "E,1", 0, 0),
	SHIFT_TMPLS(0xd2, "E,CL", 0, T_CL),
	{ "shld Ev,Gv,Ib", { 0x0f, 0xa4 }, 2, O_EG, -1, 0, 'b', T_SHIFT | T_SHD, 0, 0 },
	{ "shld Ev,Gv,CL", { 0x0f, 0xa5 }, 2, O_EG, -1, 0, 0, T_SHIFT | T_SHD | T_CL, 0, 0 },
	{ "shrd Ev,Gv,Ib", { 0x0f, 0xac }, 2, O_EG, -1, 0, 'b', T_SHIFT | T_SHD, 0, 0 },
	{ "shrd Ev,Gv,CL", { 0x0f, 0xad }, 2, O_EG, -1, 0, 0, T_SHIFT | T_SHD | T_CL, 0, 0 },
};

static const struct tmpl muldiv_tmpls[] = {
	{ "imul Gv,Ev", { 0x0f, 0xaf }, 2, O_GE, -1, 0, 0, 0, MUL_UNDEF, 0 },
	{ "imul Gv,Ev,Iz", { 0x69 }, 1, O_GE, -1, 0, 'z', 0, MUL_UNDEF, 0 },
	{ "imul Gv,Ev,Ib", { 0x6b }, 1, O_GE, -1, 0, 'b', 0, MUL_UNDEF, 0 },
	{ "mul Eb", { 0xf6 }, 1, O_E, 4, 1, 0, 0, MUL_UNDEF, 0 },
	{ "imul Eb", { 0xf6 }, 1, O_E, 5, 1, 0, 0, MUL_UNDEF, 0 },
	{ "div Eb", { 0xf6 }, 1, O_E, 6, 1, 0, T_DIV, DIV_UNDEF, 0 },
	{ "idiv Eb", { 0xf6 }, 1, O_E, 7, 1, 0, T_DIV, DIV_UNDEF, 0 },
	{ "mul Ev", { 0xf7 }, 1, O_E, 4, 0, 0, 0, MUL_UNDEF, 0 },
	{ "imul Ev", { 0xf7 }, 1, O_E, 5, 0, 0, 0, MUL_UNDEF, 0 },
	{ "div Ev", { 0xf7 }, 1, O_E, 6, 0, 0, T_DIV, DIV_UNDEF, 0 },
	{ "idiv Ev", { 0xf7 }, 1, O_E, 7, 0, 0, T_DIV, DIV_UNDEF, 0 },
};

/* MOVD/MOVQ: size 4 is 32 bits or (REX.W) 64; size 8 is MOVQ xmm. */
static const struct tmpl movd_tmpls[] = {
	{ "movd Pq,Ey", { 0x0f, 0x6e }, 2, O_GE, -1, 4, 0, 0, 0, 0 },
	{ "movd Ey,Pq", { 0x0f, 0x7e }, 2, O_EG, -1, 4, 0, 0, 0, 0 },
	{ "movd Vx,Ey", { 0x0f, 0x6e }, 2, O_GE, -1, 4, 0, 0, 0, 0x66 },
	{ "movd Ey,Vx", { 0x0f, 0x7e }, 2, O_EG, -1, 4, 0, 0, 0, 0x66 },
	{ "movq Vx,Wq", { 0x0f, 0x7e }, 2, O_GE, -1, 8, 0, 0, 0, 0xf3 },
	{ "movq Wq,Vx", { 0x0f, 0xd6 }, 2, O_EG, -1, 8, 0, 0, 0, 0x66 },
};

#define CC_TMPLS(nm, opc, form, size)						\
	{ nm "o", { 0x0f, opc + 0 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "no", { 0x0f, opc + 1 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "b", { 0x0f, opc + 2 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "ae", { 0x0f, opc + 3 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "e", { 0x0f, opc + 4 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "ne", { 0x0f, opc + 5 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "be", { 0x0f, opc + 6 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "a", { 0x0f, opc + 7 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "s", { 0x0f, opc + 8 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "ns", { 0x0f, opc + 9 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "p", { 0x0f, opc + 10 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "np", { 0x0f, opc + 11 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "l", { 0x0f, opc + 12 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "ge", { 0x0f, opc + 13 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "le", { 0x0f, opc + 14 }, 2, form, -1, size, 0, 0, 0, 0 },		\
	{ nm "g", { 0x0f, opc + 15 }, 2, form, -1, size, 0, 0, 0, 0 }

/* SETcc (the ModRM reg field, ignored, random), CMOVcc, CMPXCHG8B/16B. */
static const struct tmpl cc_tmpls[] = {
	CC_TMPLS("set", 0x90, O_E, 1),
	CC_TMPLS("cmov", 0x40, O_GE, 0),
	{ "cmpxchg8b Mq", { 0x0f, 0xc7 }, 2, O_E, 1, 8, 0, T_CX8 | T_LOCK | T_MEM_ONLY, 0, 0 },
	{ "cmpxchg16b Mdq", { 0x0f, 0xc7 }, 2, O_E, 1, 16, 0,
	  T_CX8 | T_LOCK | T_MEM_ONLY | T_ALIGN16, 0, 0 },
};

static const struct tmpl string_tmpls[] = {
	{ "movs", { 0xa4 }, 1, O_STR, -1, 1, 0, 0, 0, 0 },
	{ "movs", { 0xa5 }, 1, O_STR, -1, 0, 0, 0, 0, 0 },
	{ "cmps", { 0xa6 }, 1, O_STR, -1, 1, 0, T_CMP_STR, 0, 0 },
	{ "cmps", { 0xa7 }, 1, O_STR, -1, 0, 0, T_CMP_STR, 0, 0 },
	{ "stos", { 0xaa }, 1, O_STR, -1, 1, 0, 0, 0, 0 },
	{ "stos", { 0xab }, 1, O_STR, -1, 0, 0, 0, 0, 0 },
	{ "lods", { 0xac }, 1, O_STR, -1, 1, 0, 0, 0, 0 },
	{ "lods", { 0xad }, 1, O_STR, -1, 0, 0, 0, 0, 0 },
	{ "scas", { 0xae }, 1, O_STR, -1, 1, 0, T_CMP_STR, 0, 0 },
	{ "scas", { 0xaf }, 1, O_STR, -1, 0, 0, T_CMP_STR, 0, 0 },
};

/* ---- the generator ---- */

#define REX_W	8
#define REX_R	4
#define REX_X	2
#define REX_B	1

struct tcase {
	const struct tmpl *t;
	u8 insn[15];
	unsigned int len;
	struct regs in;
	/* The bytes the instruction must access, [lo, hi); none if lo == hi; unknown if !check_span. */
	bool check_span;
	u64 span_lo, span_hi;
	u64 undef;		/* flags left undefined by this case (besides the template's) */
};

struct bytes {
	u8 b[40];
	unsigned int n;
};

static void put(struct bytes *e, unsigned int b)
{
	e->b[e->n++] = (u8)b;
}

static void put_le(struct bytes *e, u64 v, unsigned int n)
{
	for (; n; n--, v >>= 8)
		put(e, v & 0xff);
}

static const u8 seg_prefix[] = { 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };

/* A segment override (or none), and the base it adds to the effective address in 64-bit mode. */
static void pick_segment(struct bytes *pfx, bool a32, u64 *seg_add)
{
	int seg = chance(40) ? (int)below(6) : -1;
	u64 add = seg == FS ? fs_base : seg == GS ? gs_base : 0;

	if (a32 && add > 0xffffffffull)
		return;		/* a 32-bit effective address cannot reach down from there */
	*seg_add = add;
	if (seg >= 0)
		put(pfx, seg_prefix[seg]);
}

static unsigned int pick_size(const struct tmpl *t)
{
	static const unsigned int v[] = { 2, 4, 8 };

	if (t->size == 4)
		return chance(50) ? 4 : 8;	/* MOVNTI: no 16-bit form */
	return t->size ? t->size : v[below(3)];
}

static u64 pick_target(unsigned int align)
{
	u64 t = (u64)buf + TARGET_LO + below(TARGET_HI - TARGET_LO);

	if (align)
		return t & ~(u64)(align - 1);
	if (chance(20))
		t |= 0xfff - below(8);		/* near a page end: straddling accesses */
	return t;
}

/* An address register: in 32-bit addressing, its upper half is garbage. */
static void set_addr_reg(struct regs *in, unsigned int reg, u64 v, bool a32)
{
	in->gprs[reg] = a32 ? (rnd() << 32) | (u32)v : v;
}

static bool fits_disp32(u64 v)
{
	return v + 0x80000000ull < 0x100000000ull;
}

/*
 * The memory operand with effective address @ea: ModRM (reg field
 * @reg_field), SIB, displacement, and the base/index register values that
 * make it. Registers in @avoid are not used. Returns REX.X/REX.B; a
 * RIP-relative displacement is left for the caller to patch at *@rip_at.
 */
static int encode_mem(struct bytes *e, struct regs *in, unsigned int reg_field, u64 ea,
		      bool a32, unsigned int avoid, int *rip_at)
{
	unsigned int base, index, scale = below(4), mod = below(3), r = (reg_field & 7) << 3;
	u64 index_val = (u64)((long long)below(128) - 64), scaled = 0, disp = 0;
	unsigned int kind = below(6);
	int rex = 0;

	do {
		base = below(16);
	} while (avoid & (1u << base));
	do {
		index = below(16);
	} while ((avoid & (1u << index)) || index == base || index == RSP);
	/* Forms whose displacement holds the address need it near: not so with an FS base. */
	if (!a32 && !fits_disp32(ea) && kind >= 3)
		kind = below(3);

	switch (kind) {
	case 0:		/* [base + disp] */
		if (mod == 0 && (base & 7) == RBP)
			mod = 1;	/* mod 0 would mean RIP-relative */
		put(e, mod << 6 | r | (base & 7));
		if ((base & 7) == RSP)
			put(e, 0x24);	/* SIB: no index */
		break;
	case 1:		/* [base + index * scale + disp] */
	case 2:
		if (mod == 0 && (base & 7) == RBP)
			mod = 1;	/* mod 0 would mean no base */
		put(e, mod << 6 | r | 4);
		put(e, scale << 6 | (index & 7) << 3 | (base & 7));
		set_addr_reg(in, index, index_val, a32);
		scaled = index_val << scale;
		rex |= index >= 8 ? REX_X : 0;
		break;
	case 3:		/* [index * scale + disp32] */
		put(e, r | 4);
		put(e, scale << 6 | (index & 7) << 3 | 5);
		set_addr_reg(in, index, index_val, a32);
		put_le(e, ea - (index_val << scale), 4);
		return index >= 8 ? REX_X : 0;
	case 4:		/* [disp32]: SIB with neither base nor index */
		put(e, r | 4);
		put(e, below(4) << 6 | 4 << 3 | 5);
		put_le(e, ea, 4);
		return 0;
	default:	/* [rip + disp32] */
		put(e, r | 5);
		*rip_at = (int)e->n;
		put_le(e, 0, 4);
		return 0;
	}
	if (mod == 1)
		disp = (u64)(long long)(signed char)below(256);
	else if (mod == 2)
		disp = (u64)(long long)(int)rnd();
	set_addr_reg(in, base, ea - scaled - disp, a32);
	put_le(e, disp, mod == 1 ? 1 : mod == 2 ? 4 : 0);
	return rex | (base >= 8 ? REX_B : 0);
}

/*
 * Prefixes in random order, a stray REX before them sometimes (ignored by
 * the CPU: REX counts only right before the opcode), the REX byte, the body.
 */
static bool assemble(struct tcase *c, struct bytes *pfx, int rex, struct bytes *body,
		     int rip_at, u64 rip_ea)
{
	struct bytes e = { 0 };
	unsigned int i;

	for (i = pfx->n; i > 1; i--) {
		unsigned int j = below(i);
		u8 t = pfx->b[i - 1];

		pfx->b[i - 1] = pfx->b[j];
		pfx->b[j] = t;
	}
	if (pfx->n && chance(10))
		put(&e, 0x40 | below(16));
	for (i = 0; i < pfx->n; i++)
		put(&e, pfx->b[i]);
	if (rex || chance(15))
		put(&e, 0x40 | rex);	/* an empty REX changes AH..BH into SPL..DIL */
	if (rip_at >= 0)
		rip_at += (int)e.n;
	for (i = 0; i < body->n; i++)
		put(&e, body->b[i]);
	if (e.n > 15)
		return false;
	if (rip_at >= 0) {
		u64 disp = rip_ea - (insn_addr + e.n);

		memcpy(e.b + rip_at, &disp, 4);
	}
	memcpy(c->insn, e.b, e.n);
	c->len = e.n;
	return true;
}

/* Plant an edge value at the operand now and then, so that memory sees them too. */
static void plant(u64 target, unsigned int size)
{
	u64 v = value();

	if (chance(50))
		memcpy(data_init + (target - (u64)buf - DATA_OFF), &v, size < 8 ? size : 8);
}

/* The size of the memory operand: the source's for MOVZX, MOVSX, MOVSXD. */
static unsigned int memory_operand_size(const struct tmpl *t, unsigned int size)
{
	if (t->op_len == 2 && t->op[0] == 0x0f && (t->op[1] == 0xb6 || t->op[1] == 0xbe))
		return 1;
	if (t->op_len == 2 && t->op[0] == 0x0f && (t->op[1] == 0xb7 || t->op[1] == 0xbf))
		return 2;
	if (t->op_len == 1 && t->op[0] == 0x63)
		return size == 8 ? 4 : size;
	return size;
}

/*
 * A shift count: mostly small (around the operand widths and the 5/6-bit
 * masks), sometimes any byte. SHLD/SHRD of words: no masked count above 16
 * (undefined result).
 */
static unsigned int pick_count(const struct tmpl *t, unsigned int size)
{
	static const unsigned int edges[] = { 0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65 };
	unsigned int count;

	do {
		count = chance(40) ? edges[below(ARRAY_SIZE(edges))] :
			chance(70) ? below(70) : below(256);
	} while ((t->flags & T_SHD) && size == 2 && (count & 31) > 16);
	return count;
}

/* The flags the manuals leave undefined for a shift or rotate by @count (SDM vol. 2B). */
static u64 shift_undef(const struct tmpl *t, unsigned int size, unsigned int count)
{
	unsigned int n = count & (size == 8 ? 63 : 31);
	u64 undef;

	if (!n)
		return 0;			/* no flag changes */
	undef = n != 1 ? OF : 0;		/* OF: single-bit shifts only */
	if (t->flags & T_SHD)
		return undef | AF;
	if (t->ext <= 3)
		return undef;			/* rotates: only CF and OF change */
	undef |= AF;
	if ((t->ext == 4 || t->ext == 5 || t->ext == 6) && n >= 8 * size)
		undef |= CF;			/* SHL/SHR by the width or more */
	return undef;
}

/* An instruction of a ModRM, moffs, accumulator or register-immediate template. */
static bool gen_general(const struct tmpl *t, struct tcase *c)
{
	struct bytes pfx = { 0 }, body = { 0 };
	unsigned int size = pick_size(t), reg, imm_bytes = 0, avoid = 0, i, count = 0;
	bool modrm = t->form == O_EG || t->form == O_GE || t->form == O_E;
	bool a32 = (modrm || t->form == O_MOFFS) && chance(25);
	bool memop = t->form == O_MOFFS || (modrm && ((t->flags & T_MEM_ONLY) || chance(80)));
	int rex = 0, rip_at = -1;
	u64 seg_add = 0, target;

	if (t->mandatory)
		put(&pfx, t->mandatory);
	if (size == 2)
		put(&pfx, 0x66);
	if ((size == 8 && !(t->flags & T_CX8)) || ((t->flags & T_CX8) && size == 16))
		rex |= REX_W;
	if ((size == 8 || size == 1) && t->size != 4 && !(t->flags & T_CX8) && chance(10))
		put(&pfx, 0x66);	/* REX.W wins; bytes ignore it */
	if (size == 1 && chance(10))
		rex |= REX_W;		/* ignored for bytes */
	if (a32)
		put(&pfx, 0x67);
	if (memop)
		pick_segment(&pfx, a32, &seg_add);
	else if (chance(10))
		put(&pfx, seg_prefix[below(6)]);	/* nothing to apply to */
	if (memop && (t->flags & T_LOCK) && chance(30))
		put(&pfx, 0xf0);

	reg = t->ext >= 0 ? (unsigned int)t->ext : below(16);
	if (t->ext < 0 && reg >= 8)
		rex |= REX_R;
	if (t->flags & T_SHIFT) {
		count = (t->flags & T_CL) || t->imm ? pick_count(t, size) : 1;
		if (t->flags & T_CL) {
			c->in.gprs[RCX] = (c->in.gprs[RCX] & ~0xffull) | count;
			avoid |= 1u << RCX;
		}
		c->undef = shift_undef(t, size, count);
	}
	if (t->flags & (T_DIV | T_CX8))
		avoid |= 1u << RAX | 1u << RDX;
	if ((t->flags & T_DIV) && chance(70)) {
		/* A dividend whose quotient mostly fits: the high half 0 or the low half's sign. */
		u64 lo = c->in.gprs[RAX], m = size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
		u64 high = t->ext == 7 && (lo & (1ull << (8 * size - 1))) ? m : 0;

		if (size == 1)
			c->in.gprs[RAX] = (lo & ~0xff00ull) | (high & 0xff) << 8;
		else
			c->in.gprs[RDX] = (c->in.gprs[RDX] & ~m) | high;
	}
	if (t->flags & T_BITOFF) {
		/* A small signed bit offset, with garbage above the operand size. */
		u64 off = (u64)((long long)below(4096) - 2048);

		if (size < 8)
			off = (off & ((1ull << (8 * size)) - 1)) | rnd() << (8 * size);
		c->in.gprs[reg] = off;
		avoid |= 1u << reg;
	}
	target = pick_target((t->flags & T_ALIGN16) ? 16 : 0);
	plant(target, size);
	if ((t->flags & T_CX8) && chance(50)) {
		/* rDX:rAX as memory holds: the exchange happens (32-bit halves: garbage above). */
		const u8 *m = data_init + (target - (u64)buf - DATA_OFF);
		unsigned int half = size / 2;
		u64 lo = 0, hi = 0;

		memcpy(&lo, m, half);
		memcpy(&hi, m + half, half);
		c->in.gprs[RAX] = half == 4 ? (rnd() << 32 | lo) : lo;
		c->in.gprs[RDX] = half == 4 ? (rnd() << 32 | hi) : hi;
	}
	/* What must be accessed: the memory operand, no byte more (MMIO reads have side effects). */
	c->check_span = !(t->flags & T_BITOFF) || !memop;
	if (memop) {
		c->span_lo = target;
		c->span_hi = target + memory_operand_size(t, size);
	}

	for (i = 0; i < t->op_len; i++)
		put(&body, t->op[i]);
	if (t->form == O_RI) {
		unsigned int r = below(16);

		body.b[body.n - 1] |= r & 7;
		rex |= r >= 8 ? REX_B : 0;
	} else if (t->form == O_MOFFS) {
		put_le(&body, target - seg_add, a32 ? 4 : 8);
	} else if (modrm && memop) {
		rex |= encode_mem(&body, &c->in, reg, target - seg_add, a32, avoid, &rip_at);
	} else if (modrm) {
		unsigned int rm = below(16);

		put(&body, 0xc0 | (reg & 7) << 3 | (rm & 7));
		rex |= rm >= 8 ? REX_B : 0;
	}
	if (t->imm == 'b')
		imm_bytes = 1;
	else if (t->imm == 'z')
		imm_bytes = size == 2 ? 2 : 4;
	else if (t->imm == 'v')
		imm_bytes = size;
	put_le(&body, (t->flags & T_SHIFT) ? count : value(), imm_bytes);
	return assemble(c, &pfx, rex, &body, rip_at, target - seg_add);
}

/* MOVS CMPS STOS LODS SCAS, with or without REP, either direction. */
static bool gen_string(const struct tmpl *t, struct tcase *c)
{
	static const unsigned int sizes[] = { 2, 4, 8 };
	struct bytes pfx = { 0 }, body = { 0 };
	unsigned int size = t->size == 1 ? 1 : sizes[below(3)];
	unsigned int rep = below(3), count = below(9), i;
	bool a32 = chance(25), down = chance(50);
	u64 seg_add = 0, src, dst, n;
	u8 *s, *d;
	int rex = size == 8 ? REX_W : 0;

	if (rep)
		put(&pfx, rep == 1 ? 0xf3 : 0xf2);
	if (size == 2)
		put(&pfx, 0x66);
	if (a32)
		put(&pfx, 0x67);
	pick_segment(&pfx, a32, &seg_add);	/* the source's; ES:rDI stays */
	put(&body, t->op[0]);

	src = pick_target(0);
	dst = pick_target(0);
	set_addr_reg(&c->in, RSI, src - seg_add, a32);
	set_addr_reg(&c->in, RDI, dst, a32);
	if (rep)
		set_addr_reg(&c->in, RCX, count, a32);
	c->in.rflags = (c->in.rflags & ~DF) | (down ? DF : 0);

	/* CMPS and SCAS: mostly equal elements, so that REPE runs on; sometimes one differs. */
	n = (u64)(count ? count : 1) * size;
	s = data_init + (src - (u64)buf - DATA_OFF) - (down ? n - size : 0);
	d = data_init + (dst - (u64)buf - DATA_OFF) - (down ? n - size : 0);
	if (t->flags & T_CMP_STR) {
		if (t->op[0] == 0xa6 || t->op[0] == 0xa7) {
			memmove(d, s, n);
		} else {
			for (i = 0; i < n; i++)
				d[i] = (u8)(c->in.gprs[RAX] >> (8 * (i % size)));
		}
		if (chance(70))
			d[below((unsigned int)n)] ^= (u8)(1 + below(255));
	}
	return assemble(c, &pfx, rex, &body, -1, 0);
}

/* ---- running and comparing ---- */

static u8 random_pool[2 * DATA_SIZE];
static int mismatches;
static unsigned int divide_errors;

static void init_case(struct tcase *c, const struct tmpl *t)
{
	unsigned int i;

	memset(c, 0, sizeof(*c));
	c->t = t;
	for (i = 0; i < 16; i++)
		c->in.gprs[i] = value();
	for (i = 0; i < 16 * 16; i += 8) {
		u64 v = value();

		memcpy(&c->in.xmm[0][0] + i, &v, 8);
	}
	for (i = 0; i < 8; i++)
		c->in.mm[i] = value();
	c->in.rflags = RFLAGS_USER | (rnd() & ARITH) | (chance(10) ? DF : 0);
	memcpy(data_init, random_pool + below(DATA_SIZE), DATA_SIZE);
}

static void report(const struct tcase *c, bool mmio, const char *fmt, ...)
{
	va_list ap;
	unsigned int i;

	if (++mismatches > 10)
		return;
	fprintf(stderr, "MISMATCH %s (%s):", c->t->name, mmio ? "mmio" : "ram");
	for (i = 0; i < c->len; i++)
		fprintf(stderr, " %02x", c->insn[i]);
	fprintf(stderr, ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  in:");
	for (i = 0; i < 16; i++)
		fprintf(stderr, " r%u=%llx", i, (unsigned long long)c->in.gprs[i]);
	fprintf(stderr, " rflags=%llx\n", (unsigned long long)c->in.rflags);
}

static void compare(const struct tcase *c, bool mmio, int r)
{
	u64 flag_diff;
	unsigned int i;

	if (r != KVMPP_EMUL_DONE) {
		report(c, mmio, "emulator returned %d (bad accesses %d at %llx)", r,
		       env.bad_accesses, (unsigned long long)env.bad_linear);
		return;
	}
	if (emu_cpu.rip != insn_addr + c->len)
		report(c, mmio, "rip +%lld, expected +%u",
		       (long long)(emu_cpu.rip - insn_addr), c->len);
	for (i = 0; i < 16; i++)
		if (emu_cpu.gprs[i] != native_out.gprs[i])
			report(c, mmio, "r%u: native %llx emulated %llx", i,
			       (unsigned long long)native_out.gprs[i],
			       (unsigned long long)emu_cpu.gprs[i]);
	flag_diff = (emu_cpu.rflags ^ native_out.rflags) & ~(c->t->undef | c->undef);
	if (flag_diff)
		report(c, mmio, "rflags: native %llx emulated %llx",
		       (unsigned long long)native_out.rflags, (unsigned long long)emu_cpu.rflags);
	for (i = 0; i < 16; i++)
		if (memcmp(emu_cpu.xmm[i], native_out.xmm[i], 16))
			report(c, mmio, "xmm%u differs", i);
	for (i = 0; i < 8; i++)
		if (emu_cpu.mm[i] != native_out.mm[i])
			report(c, mmio, "mm%u: native %llx emulated %llx", i,
			       (unsigned long long)native_out.mm[i], (unsigned long long)emu_cpu.mm[i]);
	for (i = 0; i < DATA_SIZE; i++)
		if (buf[DATA_OFF + i] != data_native[i]) {
			report(c, mmio, "memory at +%#x: native %02x emulated %02x (was %02x)",
			       i, data_native[i], buf[DATA_OFF + i], data_init[i]);
			break;
		}
	if (mmio && !env.exits && memcmp(data_init, data_native, DATA_SIZE))
		report(c, mmio, "memory changed without an MMIO exit");
	if (c->check_span && c->span_lo == c->span_hi && env.hi)
		report(c, mmio, "accessed [%llx, %llx) without a memory operand",
		       (unsigned long long)env.lo, (unsigned long long)env.hi);
	if (c->check_span && c->span_lo != c->span_hi &&
	    (env.lo != c->span_lo || env.hi != c->span_hi))
		report(c, mmio, "accessed [+%llx, +%llx), the operand is [+%llx, +%llx)",
		       (unsigned long long)(env.lo - insn_addr),
		       (unsigned long long)(env.hi - insn_addr),
		       (unsigned long long)(c->span_lo - insn_addr),
		       (unsigned long long)(c->span_hi - insn_addr));
}

/* CMocka installs its own handlers around each test: ours, on the alternate stack, go on top. */
static void catch_native_faults(void)
{
	struct sigaction sa = { .sa_handler = on_native_fault, .sa_flags = SA_ONSTACK };
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE };
	unsigned int i;

	sigemptyset(&sa.sa_mask);
	for (i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void run_family(const struct tmpl *tmpls, unsigned int nr, unsigned int cases, u64 seed)
{
	unsigned int i;

	if (!buf)
		skip();
	catch_native_faults();
	rng_state = seed;
	mismatches = 0;
	for (i = 0; i < cases; i++) {
		const struct tmpl *t = &tmpls[below(nr)];
		struct tcase c;
		bool mmio = chance(50), with_cmpxchg = chance(50);
		int sig;

		init_case(&c, t);
		if (!(t->form == O_STR ? gen_string(t, &c) : gen_general(t, &c))) {
			i--;		/* too long: another one */
			continue;
		}
		build_harness(c.insn, c.len);
		sig = run_native(&c.in);
		if (sig == SIGFPE && (t->flags & T_DIV)) {
			/* #DE: the emulator raises it, with nothing changed. */
			int r = run_emulator(&c.in, mmio, with_cmpxchg);

			if (r != KVMPP_EMUL_EXCEPTION || emu_ctxt.exception.vector != 0)
				report(&c, mmio, "native #DE, emulator returned %d (vector %u)", r,
				       emu_ctxt.exception.vector);
			else if (memcmp(emu_cpu.gprs, c.in.gprs, sizeof(c.in.gprs)) ||
				 emu_cpu.rflags != c.in.rflags || emu_cpu.rip != insn_addr)
				report(&c, mmio, "#DE changed registers");
			divide_errors++;
			continue;
		}
		if (sig) {
			report(&c, false, "native execution got signal %d", sig);
			continue;
		}
		compare(&c, mmio, run_emulator(&c.in, mmio, with_cmpxchg));
	}
	if (mismatches)
		fail_msg("%d mismatches in %u cases", mismatches, cases);
}

/* ---- setup and tests ---- */

static u8 alt_stack[64 * 1024];

static int group_setup(void **state)
{
	stack_t ss = { .ss_sp = alt_stack, .ss_size = sizeof(alt_stack) };
	unsigned int i;

	(void)state;
	buf = mmap((void *)BUF_ADDR, BUF_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (buf == MAP_FAILED)
		buf = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
	if (buf == MAP_FAILED) {
		buf = NULL;	/* no executable memory here (W^X policy): the tests skip */
		return 0;
	}
	if (syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_base) ||
	    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_base))
		return -1;
	if (sigaltstack(&ss, NULL))
		return -1;
	rng_state = 0x9e3779b97f4a7c15ull;
	for (i = 0; i < sizeof(random_pool); i++)
		random_pool[i] = (u8)rnd();
	build_harness(NULL, 0);			/* fixes insn_addr */
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (buf)
		munmap(buf, BUF_SIZE);
	return 0;
}

#define CASES 6000

static void diff_mov(void **state)
{
	(void)state;
	run_family(mov_tmpls, ARRAY_SIZE(mov_tmpls), CASES * 2, 1);
}

static void diff_movzx_movsx(void **state)
{
	(void)state;
	run_family(movx_tmpls, ARRAY_SIZE(movx_tmpls), CASES, 2);
}

static void diff_alu(void **state)
{
	(void)state;
	run_family(alu_tmpls, ARRAY_SIZE(alu_tmpls), CASES * 4, 3);
}

static void diff_test_not_neg_inc_dec_xchg(void **state)
{
	(void)state;
	run_family(unary_tmpls, ARRAY_SIZE(unary_tmpls), CASES * 2, 4);
}

static void diff_bt(void **state)
{
	(void)state;
	run_family(bt_tmpls, ARRAY_SIZE(bt_tmpls), CASES, 5);
}

static void diff_sse(void **state)
{
	(void)state;
	run_family(sse_tmpls, ARRAY_SIZE(sse_tmpls), CASES, 6);
}

static void diff_strings(void **state)
{
	(void)state;
	run_family(string_tmpls, ARRAY_SIZE(string_tmpls), CASES * 2, 7);
}

static void diff_shifts_rotates(void **state)
{
	(void)state;
	run_family(shift_tmpls, ARRAY_SIZE(shift_tmpls), CASES * 4, 8);
}

static void diff_mul_div(void **state)
{
	(void)state;
	divide_errors = 0;
	run_family(muldiv_tmpls, ARRAY_SIZE(muldiv_tmpls), CASES * 2, 9);
	/* Both outcomes of DIV/IDIV were tried. */
	assert_true(divide_errors > 100);
}

static void diff_setcc_cmov_cmpxchg8b(void **state)
{
	(void)state;
	run_family(cc_tmpls, ARRAY_SIZE(cc_tmpls), CASES * 2, 11);
}

static void diff_movd_movq(void **state)
{
	(void)state;
	run_family(movd_tmpls, ARRAY_SIZE(movd_tmpls), CASES, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(diff_mov),
		cmocka_unit_test(diff_movzx_movsx),
		cmocka_unit_test(diff_alu),
		cmocka_unit_test(diff_test_not_neg_inc_dec_xchg),
		cmocka_unit_test(diff_bt),
		cmocka_unit_test(diff_sse),
		cmocka_unit_test(diff_strings),
		cmocka_unit_test(diff_shifts_rotates),
		cmocka_unit_test(diff_mul_div),
		cmocka_unit_test(diff_movd_movq),
		cmocka_unit_test(diff_setcc_cmov_cmpxchg8b),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
