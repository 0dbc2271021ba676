// SPDX-License-Identifier: GPL-2.0-only
/*
 * x86 instruction decoder and emulator (interface and contract in
 * emulate.h).
 *
 * Decoding turns the bytes at RIP into a struct kvmpp_emul_insn: the
 * prefixes, then the opcode's entry in a table that says what the
 * instruction does and where its operands are, then ModRM, SIB,
 * displacement and immediate.
 *
 * Execution works on a copy of the registers and flags, and commits the copy
 * to the vCPU only once every memory access of the instruction (or of one
 * REP iteration) has succeeded. Every instruction here reads memory before
 * it writes it, so an MMIO read that must wait for userspace stops execution
 * before anything changed: the next call runs the instruction again, and the
 * reads already done come from the context's cache. MMIO writes are queued
 * during execution and reported one by one after the commit.
 */
#include "emulate.h"

/*
 * Architectural values come from the kernel's UAPI headers, which the CMocka
 * tests and the fuzzer include as well: RFLAGS, CR0 and CR4 bits from
 * <asm/processor-flags.h>, exception vectors from <asm/kvm.h>.
 * - RF cleared on completion: Intel SDM vol. 3A, 18.3.1.1.
 * - Prefixes: SDM vol. 2A, 2.1.1 "Instruction Prefixes" and 2.2.1 "REX
 *   Prefixes" (0100WRXB).
 * - Register numbers: SDM vol. 2A, 2.1.5, tables 2-1 to 2-3 and 3.1.1.1.
 */
#include <asm/kvm.h>
#include <asm/processor-flags.h>

#define EFL_ARITH	(X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | \
			 X86_EFLAGS_SF | X86_EFLAGS_OF)

#define PFX_LOCK	0xf0
#define PFX_REPNE	0xf2
#define PFX_REP		0xf3
#define PFX_OPSIZE	0x66
#define PFX_ADSIZE	0x67
#define PFX_ES		0x26
#define PFX_CS		0x2e
#define PFX_SS		0x36
#define PFX_DS		0x3e
#define PFX_FS		0x64
#define PFX_GS		0x65
#define REX_MASK	0xf0
#define REX_BASE	0x40
#define REX_W		0x08
#define REX_R		0x04
#define REX_X		0x02
#define REX_B		0x01
#define OPC_TWO_BYTE	0x0f

#define REG_RAX		0
#define REG_RCX		1
#define REG_RDX		2
#define REG_RBX		3
#define REG_RSP		4
#define REG_RBP		5
#define REG_RSI		6
#define REG_RDI		7
/* Without REX, byte registers 4-7 are AH, CH, DH, BH: bits 15:8 of registers 0-3. */
#define REG_HIGH_BYTE_FIRST	4

/* The smallest page: the unit in which linear memory is mapped. */
#define EMUL_PAGE_SIZE	4096ull
#define SSE_SIZE	16

/* ModRM and SIB fields (SDM vol. 2A, 2.1.3). */
#define MODRM_MOD(b)	((b) >> 6)
#define MODRM_REG(b)	(((b) >> 3) & 7)
#define MODRM_RM(b)	((b) & 7)
#define MOD_REGISTER	3
#define RM_SIB		4	/* 32/64-bit addressing: a SIB byte follows */
#define RM_DISP32	5	/* with mod 0: disp32 (64-bit mode: RIP-relative) */
#define SIB_NO_INDEX	4
#define SIB_NO_BASE	5	/* with mod 0: disp32 instead of a base */
#define RM16_DISP16	6	/* 16-bit addressing, mod 0: disp16 instead of [BP] */

/* Private phases of a context. */
enum {
	PHASE_IDLE,
	PHASE_RUN,		/* decoded, executing */
	PHASE_READ,		/* waiting for the data of an MMIO read in ctxt->io */
	PHASE_WRITES,		/* committed; MMIO writes being reported */
};

/* What an instruction does. */
enum exec {
	EX_NONE,		/* not emulated */
	EX_MOV,			/* dst = src (MOVNTI too) */
	EX_MOVZX,		/* dst = src, zero-extended from src_size */
	EX_MOVSX,		/* dst = src, sign-extended from src_size (MOVSXD too) */
	EX_ALU,			/* sub: enum alu */
	EX_TEST,
	EX_INC,
	EX_DEC,
	EX_NOT,
	EX_NEG,
	EX_XCHG,
	EX_XADD,
	EX_CMPXCHG,
	EX_BT,			/* sub: enum bt */
	EX_STRING,		/* sub: enum string */
	EX_SSE_MOV,
	EX_SHIFT,		/* sub: enum shift; group 2 */
	EX_SHD,			/* SHLD (sub 0), SHRD (sub 1) */
	EX_IMUL,		/* IMUL reg, r/m (, imm) */
	EX_MULDIV,		/* sub: enum muldiv; F6/F7 /4-/7 */
	EX_MOVD,		/* MOVD/MOVQ between MMX/XMM and r/m: sse says which */
	EX_SETCC,		/* the condition: opcode bits 3:0 */
	EX_CMOV,		/* the condition: opcode bits 3:0 */
	EX_CMPXCHG8B,		/* CMPXCHG16B with REX.W */
};

/* EX_ALU operations, in the order of opcode bits 5:3 and of ModRM.reg in group 1. */
enum alu { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

/* EX_BT operations, in the order of ModRM.reg 4-7 in group 8 and opcode bits 4:3. */
enum bt { BT_TEST, BT_SET, BT_RESET, BT_COMPLEMENT };

enum string { STR_MOVS, STR_CMPS, STR_STOS, STR_LODS, STR_SCAS };

/* EX_SHIFT operations, in the order of ModRM.reg in group 2 (/6 is SAL, an alias of SHL). */
enum shift { SH_ROL, SH_ROR, SH_RCL, SH_RCR, SH_SHL, SH_SHR, SH_SAL, SH_SAR };

/* EX_MULDIV operations, in the order of ModRM.reg 4-7 in group 3. */
enum muldiv { MD_MUL, MD_IMUL, MD_DIV, MD_IDIV };

/*
 * Operand forms, as bits: where the destination and the source are. RM is
 * the ModRM r/m operand (or the moffs memory operand); REG the ModRM reg
 * operand, the accumulator (F_ACC) or the register in the opcode (F_OPREG).
 */
#define F_MODRM		0x0001
#define F_DST_RM	0x0002
#define F_DST_REG	0x0004
#define F_SRC_RM	0x0008
#define F_SRC_REG	0x0010
#define F_SRC_IMM	0x0020
#define F_ACC		0x0040
#define F_OPREG		0x0080
#define F_MOFFS		0x0100
#define F_STRING	0x0200
#define F_XMM		0x0400	/* the operands are XMM registers or 16 bytes of memory */

#define F_EG	(F_MODRM | F_DST_RM | F_SRC_REG)	/* r/m, reg */
#define F_GE	(F_MODRM | F_DST_REG | F_SRC_RM)	/* reg, r/m */
#define F_EI	(F_MODRM | F_DST_RM | F_SRC_IMM)	/* r/m, imm */
#define F_E	(F_MODRM | F_DST_RM)			/* r/m */
#define F_AI	(F_ACC | F_DST_REG | F_SRC_IMM)		/* accumulator, imm */
#define F_RI	(F_OPREG | F_DST_REG | F_SRC_IMM)	/* opcode register, imm */
#define F_AO	(F_MOFFS | F_ACC | F_DST_REG | F_SRC_RM) /* accumulator, moffs */
#define F_OA	(F_MOFFS | F_ACC | F_DST_RM | F_SRC_REG) /* moffs, accumulator */
#define F_XE	(F_XMM | F_GE)				/* xmm, xmm/m128 */
#define F_EX	(F_XMM | F_EG)				/* xmm/m128, xmm */
#define F_GEI	(F_GE | F_SRC_IMM)			/* reg, r/m, imm (IMUL) */
#define F_EGI	(F_EG | F_SRC_IMM)			/* r/m, reg, imm (SHLD, SHRD) */

/* Opcode flags. */
#define D_BYTE		0x01	/* byte operands */
#define D_LOCK		0x02	/* LOCK allowed (with a memory destination) */
#define D_NO64		0x04	/* invalid in 64-bit mode */
#define D_ONLY64	0x08	/* another instruction outside 64-bit mode */
#define D_MEM_ONLY	0x10	/* a register r/m is invalid */
#define D_NO_PREFIX	0x20	/* invalid with 66, F2 or F3 */
#define D_COUNT_1	0x40	/* shifts: the count is 1 */
#define D_COUNT_CL	0x80	/* shifts: the count is CL */

/* Immediates. */
enum imm {
	IMM_NONE,
	IMM_B,			/* 8 bits */
	IMM_BS,			/* 8 bits, sign-extended to the operand size */
	IMM_Z,			/* 16 bits with 16-bit operands, else 32 sign-extended */
	IMM_V,			/* the operand size, 64 bits included */
};

/* Group opcodes: ModRM.reg picks the instruction. */
enum group { GRP_NONE, GRP_1, GRP_2, GRP_3, GRP_4_5, GRP_8, GRP_9, GRP_11, NR_GROUPS };

/*
 * SSE moves: per mandatory prefix (none, 66, F3, F2), whether the form
 * exists and whether its memory operand must be aligned.
 */
#define SSE_NO		0
#define SSE_U		1	/* unaligned allowed */
#define SSE_A		2	/* 16-byte alignment required */
#define SSE_MMX		3	/* the MMX form: MMn registers, 8 bytes */
#define SSE(np, p66, pf3, pf2)	((np) | (p66) << 2 | (pf3) << 4 | (pf2) << 6)
#define SSE_PICK(sse, idx)	(((sse) >> (2 * (idx))) & 3)
/* EX_MOVD forms, per mandatory prefix as above. */
#define MOVD_MMX	1	/* MOVD/MOVQ mm, r/m32/64 (and back) */
#define MOVD_XMM	2	/* MOVD/MOVQ xmm, r/m32/64 (and back): the rest of xmm zeroed */
#define MOVQ_XMM	3	/* MOVQ xmm, xmm/m64 (and back): the upper half zeroed */

struct op_desc {
	u8 exec;
	u8 sub;
	u16 form;
	u8 flags;
	u8 imm;
	u8 group;
	u8 sse;
};

#define OP(ex, sb, fm, fl, im)	{ .exec = (ex), .sub = (sb), .form = (fm), .flags = (fl), .imm = (im) }
#define GROUP(g, fl, im)	{ .group = (g), .flags = (fl), .imm = (im) }
#define SSE_OP(fm, sse_)	{ .exec = EX_SSE_MOV, .form = (fm), .sse = (sse_) }
#define MOVD_OP(sse_)	{ .exec = EX_MOVD, .form = F_MODRM, .sse = (sse_) }
#define SSE_NT(sse_)	{ .exec = EX_SSE_MOV, .form = F_EX, .flags = D_MEM_ONLY, .sse = (sse_) }

#define ALU_LOCK(op)	((op) == ALU_CMP ? 0 : D_LOCK)
#define ALU_ROW(base, op)						\
	[(base) + 0] = OP(EX_ALU, op, F_EG, D_BYTE | ALU_LOCK(op), IMM_NONE), \
	[(base) + 1] = OP(EX_ALU, op, F_EG, ALU_LOCK(op), IMM_NONE),	\
	[(base) + 2] = OP(EX_ALU, op, F_GE, D_BYTE, IMM_NONE),		\
	[(base) + 3] = OP(EX_ALU, op, F_GE, 0, IMM_NONE),		\
	[(base) + 4] = OP(EX_ALU, op, F_AI, D_BYTE, IMM_B),		\
	[(base) + 5] = OP(EX_ALU, op, F_AI, 0, IMM_Z)

#define RANGE8(first, desc)						\
	[(first) + 0] = desc, [(first) + 1] = desc, [(first) + 2] = desc, \
	[(first) + 3] = desc, [(first) + 4] = desc, [(first) + 5] = desc, \
	[(first) + 6] = desc, [(first) + 7] = desc

static const struct op_desc one_byte[256] = {
	ALU_ROW(0x00, ALU_ADD),
	ALU_ROW(0x08, ALU_OR),
	ALU_ROW(0x10, ALU_ADC),
	ALU_ROW(0x18, ALU_SBB),
	ALU_ROW(0x20, ALU_AND),
	ALU_ROW(0x28, ALU_SUB),
	ALU_ROW(0x30, ALU_XOR),
	ALU_ROW(0x38, ALU_CMP),
	[0x63] = OP(EX_MOVSX, 4, F_GE, D_ONLY64, IMM_NONE),	/* MOVSXD (ARPL outside 64-bit mode) */
	[0x69] = OP(EX_IMUL, 0, F_GEI, 0, IMM_Z),
	[0x6b] = OP(EX_IMUL, 0, F_GEI, 0, IMM_BS),
	[0x80] = GROUP(GRP_1, D_BYTE, IMM_B),
	[0x81] = GROUP(GRP_1, 0, IMM_Z),
	[0x82] = GROUP(GRP_1, D_BYTE | D_NO64, IMM_B),
	[0x83] = GROUP(GRP_1, 0, IMM_BS),
	[0x84] = OP(EX_TEST, 0, F_EG, D_BYTE, IMM_NONE),
	[0x85] = OP(EX_TEST, 0, F_EG, 0, IMM_NONE),
	[0x86] = OP(EX_XCHG, 0, F_EG, D_BYTE | D_LOCK, IMM_NONE),
	[0x87] = OP(EX_XCHG, 0, F_EG, D_LOCK, IMM_NONE),
	[0x88] = OP(EX_MOV, 0, F_EG, D_BYTE, IMM_NONE),
	[0x89] = OP(EX_MOV, 0, F_EG, 0, IMM_NONE),
	[0x8a] = OP(EX_MOV, 0, F_GE, D_BYTE, IMM_NONE),
	[0x8b] = OP(EX_MOV, 0, F_GE, 0, IMM_NONE),
	[0xa0] = OP(EX_MOV, 0, F_AO, D_BYTE, IMM_NONE),
	[0xa1] = OP(EX_MOV, 0, F_AO, 0, IMM_NONE),
	[0xa2] = OP(EX_MOV, 0, F_OA, D_BYTE, IMM_NONE),
	[0xa3] = OP(EX_MOV, 0, F_OA, 0, IMM_NONE),
	[0xa4] = OP(EX_STRING, STR_MOVS, F_STRING, D_BYTE, IMM_NONE),
	[0xa5] = OP(EX_STRING, STR_MOVS, F_STRING, 0, IMM_NONE),
	[0xa6] = OP(EX_STRING, STR_CMPS, F_STRING, D_BYTE, IMM_NONE),
	[0xa7] = OP(EX_STRING, STR_CMPS, F_STRING, 0, IMM_NONE),
	[0xa8] = OP(EX_TEST, 0, F_AI, D_BYTE, IMM_B),
	[0xa9] = OP(EX_TEST, 0, F_AI, 0, IMM_Z),
	[0xaa] = OP(EX_STRING, STR_STOS, F_STRING, D_BYTE, IMM_NONE),
	[0xab] = OP(EX_STRING, STR_STOS, F_STRING, 0, IMM_NONE),
	[0xac] = OP(EX_STRING, STR_LODS, F_STRING, D_BYTE, IMM_NONE),
	[0xad] = OP(EX_STRING, STR_LODS, F_STRING, 0, IMM_NONE),
	[0xae] = OP(EX_STRING, STR_SCAS, F_STRING, D_BYTE, IMM_NONE),
	[0xaf] = OP(EX_STRING, STR_SCAS, F_STRING, 0, IMM_NONE),
	RANGE8(0xb0, OP(EX_MOV, 0, F_RI, D_BYTE, IMM_B)),
	RANGE8(0xb8, OP(EX_MOV, 0, F_RI, 0, IMM_V)),
	[0xc0] = GROUP(GRP_2, D_BYTE, IMM_B),
	[0xc1] = GROUP(GRP_2, 0, IMM_B),
	[0xd0] = GROUP(GRP_2, D_BYTE | D_COUNT_1, IMM_NONE),
	[0xd1] = GROUP(GRP_2, D_COUNT_1, IMM_NONE),
	[0xd2] = GROUP(GRP_2, D_BYTE | D_COUNT_CL, IMM_NONE),
	[0xd3] = GROUP(GRP_2, D_COUNT_CL, IMM_NONE),
	[0xc6] = GROUP(GRP_11, D_BYTE, IMM_B),
	[0xc7] = GROUP(GRP_11, 0, IMM_Z),
	[0xf6] = GROUP(GRP_3, D_BYTE, IMM_B),
	[0xf7] = GROUP(GRP_3, 0, IMM_Z),
	[0xfe] = GROUP(GRP_4_5, D_BYTE, IMM_NONE),
	[0xff] = GROUP(GRP_4_5, 0, IMM_NONE),
};

/* Indexed by the second opcode byte, after 0F. */
static const struct op_desc two_byte[256] = {
	[0x10] = SSE_OP(F_XE, SSE(SSE_U, SSE_U, SSE_NO, SSE_NO)),	/* MOVUPS, MOVUPD */
	[0x11] = SSE_OP(F_EX, SSE(SSE_U, SSE_U, SSE_NO, SSE_NO)),
	[0x28] = SSE_OP(F_XE, SSE(SSE_A, SSE_A, SSE_NO, SSE_NO)),	/* MOVAPS, MOVAPD */
	[0x29] = SSE_OP(F_EX, SSE(SSE_A, SSE_A, SSE_NO, SSE_NO)),
	[0x2b] = SSE_NT(SSE(SSE_A, SSE_A, SSE_NO, SSE_NO)),		/* MOVNTPS, MOVNTPD */
	[0x6f] = SSE_OP(F_XE, SSE(SSE_MMX, SSE_A, SSE_U, SSE_NO)),	/* MOVQ mm, MOVDQA, MOVDQU */
	[0x7f] = SSE_OP(F_EX, SSE(SSE_MMX, SSE_A, SSE_U, SSE_NO)),
	/* MOVD/MOVQ: 6E loads, 7E stores (F3 7E loads), D6 stores. */
	[0x6e] = MOVD_OP(SSE(MOVD_MMX, MOVD_XMM, SSE_NO, SSE_NO)),
	[0x7e] = MOVD_OP(SSE(MOVD_MMX, MOVD_XMM, MOVQ_XMM, SSE_NO)),
	[0xd6] = MOVD_OP(SSE(SSE_NO, MOVQ_XMM, SSE_NO, SSE_NO)),
	[0xa4] = OP(EX_SHD, 0, F_EGI, 0, IMM_B),			/* SHLD */
	[0xa5] = OP(EX_SHD, 0, F_EG, D_COUNT_CL, IMM_NONE),
	[0xac] = OP(EX_SHD, 1, F_EGI, 0, IMM_B),			/* SHRD */
	[0xad] = OP(EX_SHD, 1, F_EG, D_COUNT_CL, IMM_NONE),
	[0xaf] = OP(EX_IMUL, 0, F_GE, 0, IMM_NONE),
	RANGE8(0x40, OP(EX_CMOV, 0, F_GE, 0, IMM_NONE)),
	RANGE8(0x48, OP(EX_CMOV, 0, F_GE, 0, IMM_NONE)),
	RANGE8(0x90, OP(EX_SETCC, 0, F_E, D_BYTE, IMM_NONE)),
	RANGE8(0x98, OP(EX_SETCC, 0, F_E, D_BYTE, IMM_NONE)),
	[0xc7] = GROUP(GRP_9, D_MEM_ONLY, IMM_NONE),
	[0xe7] = SSE_NT(SSE(SSE_NO, SSE_A, SSE_NO, SSE_NO)),		/* MOVNTDQ */
	[0xb0] = OP(EX_CMPXCHG, 0, F_EG, D_BYTE | D_LOCK, IMM_NONE),
	[0xb1] = OP(EX_CMPXCHG, 0, F_EG, D_LOCK, IMM_NONE),
	[0xc0] = OP(EX_XADD, 0, F_EG, D_BYTE | D_LOCK, IMM_NONE),
	[0xc1] = OP(EX_XADD, 0, F_EG, D_LOCK, IMM_NONE),
	[0xa3] = OP(EX_BT, BT_TEST, F_EG, 0, IMM_NONE),
	[0xab] = OP(EX_BT, BT_SET, F_EG, D_LOCK, IMM_NONE),
	[0xb3] = OP(EX_BT, BT_RESET, F_EG, D_LOCK, IMM_NONE),
	[0xbb] = OP(EX_BT, BT_COMPLEMENT, F_EG, D_LOCK, IMM_NONE),
	[0xb6] = OP(EX_MOVZX, 1, F_GE, 0, IMM_NONE),
	[0xb7] = OP(EX_MOVZX, 2, F_GE, 0, IMM_NONE),
	[0xba] = GROUP(GRP_8, 0, IMM_B),
	[0xbe] = OP(EX_MOVSX, 1, F_GE, 0, IMM_NONE),
	[0xbf] = OP(EX_MOVSX, 2, F_GE, 0, IMM_NONE),
	[0xc3] = OP(EX_MOV, 0, F_EG, D_MEM_ONLY | D_NO_PREFIX, IMM_NONE),	/* MOVNTI */
};

/*
 * The instruction a group opcode's ModRM.reg selects: its exec, sub, form
 * and D_LOCK; operand size and immediate come from the opcode.
 */
static const struct op_desc groups[NR_GROUPS][8] = {
	[GRP_1] = {
		OP(EX_ALU, ALU_ADD, F_EI, D_LOCK, 0), OP(EX_ALU, ALU_OR, F_EI, D_LOCK, 0),
		OP(EX_ALU, ALU_ADC, F_EI, D_LOCK, 0), OP(EX_ALU, ALU_SBB, F_EI, D_LOCK, 0),
		OP(EX_ALU, ALU_AND, F_EI, D_LOCK, 0), OP(EX_ALU, ALU_SUB, F_EI, D_LOCK, 0),
		OP(EX_ALU, ALU_XOR, F_EI, D_LOCK, 0), OP(EX_ALU, ALU_CMP, F_EI, 0, 0),
	},
	[GRP_2] = {
		OP(EX_SHIFT, SH_ROL, F_EI, 0, 0), OP(EX_SHIFT, SH_ROR, F_EI, 0, 0),
		OP(EX_SHIFT, SH_RCL, F_EI, 0, 0), OP(EX_SHIFT, SH_RCR, F_EI, 0, 0),
		OP(EX_SHIFT, SH_SHL, F_EI, 0, 0), OP(EX_SHIFT, SH_SHR, F_EI, 0, 0),
		OP(EX_SHIFT, SH_SAL, F_EI, 0, 0), OP(EX_SHIFT, SH_SAR, F_EI, 0, 0),
	},
	[GRP_3] = {
		[0] = OP(EX_TEST, 0, F_EI, 0, 0),
		[2] = OP(EX_NOT, 0, F_E, D_LOCK, 0),
		[3] = OP(EX_NEG, 0, F_E, D_LOCK, 0),
		[4] = OP(EX_MULDIV, MD_MUL, F_E, 0, 0),
		[5] = OP(EX_MULDIV, MD_IMUL, F_E, 0, 0),
		[6] = OP(EX_MULDIV, MD_DIV, F_E, 0, 0),
		[7] = OP(EX_MULDIV, MD_IDIV, F_E, 0, 0),
	},
	[GRP_4_5] = {
		[0] = OP(EX_INC, 0, F_E, D_LOCK, 0),
		[1] = OP(EX_DEC, 0, F_E, D_LOCK, 0),
	},
	[GRP_8] = {
		[4] = OP(EX_BT, BT_TEST, F_EI, 0, 0),
		[5] = OP(EX_BT, BT_SET, F_EI, D_LOCK, 0),
		[6] = OP(EX_BT, BT_RESET, F_EI, D_LOCK, 0),
		[7] = OP(EX_BT, BT_COMPLEMENT, F_EI, D_LOCK, 0),
	},
	[GRP_9] = {
		[1] = OP(EX_CMPXCHG8B, 0, F_E, D_LOCK, 0),
	},
	[GRP_11] = {
		[0] = OP(EX_MOV, 0, F_EI, 0, 0),
	},
};

/* One call of kvmpp_emulate(). */
struct emul {
	const struct kvmpp_emul_ops *ops;
	struct kvmpp_emul_cpu *cpu;
	struct kvmpp_emul_ctxt *c;
	struct kvmpp_emul_insn *in;
	unsigned int pos;		/* decoding: the next instruction byte */
	unsigned int read_idx;		/* executing: the next read piece */
	/* The registers as the instruction leaves them, committed on success. */
	u64 gprs[16];
	u64 rflags;
	u8 xmm[SSE_SIZE];
	int xmm_dst;			/* the XMM register to set from xmm, or -1 */
	u64 mm;
	int mm_dst;			/* the MMX register to set from mm, or -1 */
};

static u64 size_mask(unsigned int size)
{
	return size >= 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

static u64 sign_bit(unsigned int size)
{
	return 1ull << (8 * size - 1);
}

static u64 sign_extend(u64 v, unsigned int size)
{
	unsigned int shift = 64 - 8 * size;

	return (u64)((long long)(v << shift) >> shift);
}

static u64 load_le(const u8 *b, unsigned int n)
{
	u64 v = 0;

	while (n--)
		v = v << 8 | b[n];
	return v;
}

static void store_le(u8 *b, u64 v, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++, v >>= 8)
		b[i] = (u8)v;
}

static unsigned int min_uint(unsigned int a, unsigned int b)
{
	return a < b ? a : b;
}

/* What a callback returned, as kvmpp_emulate() passes it on. */
static int callback_error(int r)
{
	if (r == KVMPP_EMUL_FAULT || r < 0)
		return r;
	return -EIO;	/* not a result the contract allows */
}

static int raise_exception(struct emul *e, u8 vector, bool has_error_code)
{
	e->c->exception.vector = vector;
	e->c->exception.has_error_code = has_error_code;
	e->c->exception.error_code = 0;
	return KVMPP_EMUL_EXCEPTION;
}

/* ---- registers ---- */

static bool is_high_byte(const struct emul *e, unsigned int reg, unsigned int size)
{
	return size == 1 && !e->in->rex && reg >= REG_HIGH_BYTE_FIRST && reg < 8;
}

static u64 get_reg(const struct emul *e, unsigned int reg, unsigned int size)
{
	if (is_high_byte(e, reg, size))
		return (e->gprs[reg - REG_HIGH_BYTE_FIRST] >> 8) & 0xff;
	return e->gprs[reg] & size_mask(size);
}

/* Write @size bytes of a register: 32-bit writes zero the upper half (SDM vol. 1, 3.4.1.1). */
static void set_reg(struct emul *e, unsigned int reg, unsigned int size, u64 v)
{
	u64 *g;

	if (is_high_byte(e, reg, size)) {
		g = &e->gprs[reg - REG_HIGH_BYTE_FIRST];
		*g = (*g & ~0xff00ull) | (v & 0xff) << 8;
		return;
	}
	g = &e->gprs[reg];
	if (size == 4)
		*g = (u32)v;
	else
		*g = (*g & ~size_mask(size)) | (v & size_mask(size));
}

/* ---- flags ---- */

/* AF is the carry (borrow) into bit 4: bit 4 of a ^ b ^ result. */
#define NIBBLE_CARRY	(1ull << 4)

/* PF: an even number of set bits in the low byte. */
static u64 parity_flag(u64 v)
{
	u8 b = (u8)v;

	b ^= b >> 4;
	b ^= b >> 2;
	b ^= b >> 1;
	return (b & 1) ? 0 : X86_EFLAGS_PF;
}

static u64 result_flags(u64 res, unsigned int size)
{
	u64 f = parity_flag(res);

	if (!(res & size_mask(size)))
		f |= X86_EFLAGS_ZF;
	if (res & sign_bit(size))
		f |= X86_EFLAGS_SF;
	return f;
}

/*
 * Flags of @res = @a + @b (+ carry), operands masked to @size. The carry
 * out of each bit is (a & b) | ((a | b) & ~res).
 */
static u64 add_flags(u64 a, u64 b, u64 res, unsigned int size)
{
	u64 carries = (a & b) | ((a | b) & ~res);
	u64 f = result_flags(res, size);

	if (carries & sign_bit(size))
		f |= X86_EFLAGS_CF;
	if ((a ^ b ^ res) & NIBBLE_CARRY)
		f |= X86_EFLAGS_AF;
	if ((a ^ res) & (b ^ res) & sign_bit(size))
		f |= X86_EFLAGS_OF;
	return f;
}

/* Flags of @res = @a - @b (- borrow): the borrow out of each bit is (~a & b) | (~(a ^ b) & res). */
static u64 sub_flags(u64 a, u64 b, u64 res, unsigned int size)
{
	u64 borrows = (~a & b) | (~(a ^ b) & res);
	u64 f = result_flags(res, size);

	if (borrows & sign_bit(size))
		f |= X86_EFLAGS_CF;
	if ((a ^ b ^ res) & NIBBLE_CARRY)
		f |= X86_EFLAGS_AF;
	if ((a ^ b) & (a ^ res) & sign_bit(size))
		f |= X86_EFLAGS_OF;
	return f;
}

static void set_flags(struct emul *e, u64 which, u64 f)
{
	e->rflags = (e->rflags & ~which) | (f & which);
}

/* @op on @a and @b of @size bytes: the result, and the flags set. */
static u64 alu(struct emul *e, unsigned int op, u64 a, u64 b, unsigned int size)
{
	u64 m = size_mask(size), carry = (e->rflags & X86_EFLAGS_CF) ? 1 : 0, res;

	a &= m;
	b &= m;
	switch (op) {
	case ALU_ADD:
	case ALU_ADC:
		res = (a + b + (op == ALU_ADC ? carry : 0)) & m;
		set_flags(e, EFL_ARITH, add_flags(a, b, res, size));
		return res;
	case ALU_SUB:
	case ALU_SBB:
	case ALU_CMP:
		res = (a - b - (op == ALU_SBB ? carry : 0)) & m;
		set_flags(e, EFL_ARITH, sub_flags(a, b, res, size));
		return res;
	case ALU_OR:
		res = a | b;
		break;
	case ALU_AND:
		res = a & b;
		break;
	default:
		res = a ^ b;
		break;
	}
	/* Logical operations: CF = OF = 0, AF undefined (cleared here). */
	set_flags(e, EFL_ARITH, result_flags(res, size));
	return res;
}

/* ---- instruction fetch and decoding ---- */

static bool long_mode64(const struct emul *e)
{
	return e->cpu->code_size == 8;
}

/* Fetch the next bytes of the instruction, at most to the end of the page. */
static int fetch_more(struct emul *e)
{
	struct kvmpp_emul_ctxt *c = e->c;
	unsigned int have = c->insn_len, chunk = KVMPP_EMUL_MAX_INSN - have;
	u64 ip = e->cpu->rip + have, linear;
	int r;

	if (have == KVMPP_EMUL_MAX_INSN)
		return raise_exception(e, GP_VECTOR, true);	/* longer than 15 bytes: #GP(0) */
	if (long_mode64(e)) {
		linear = ip;
	} else {
		/* IP (EIP) wraps within the code segment; linear addresses are 32 bits. */
		u64 ip_mask = size_mask(e->cpu->code_size);

		ip &= ip_mask;
		if (ip_mask - ip + 1 < chunk)
			chunk = ip_mask - ip + 1;
		linear = (u32)(e->cpu->seg_base[KVMPP_EMUL_CS] + ip);
	}
	chunk = min_uint(chunk, EMUL_PAGE_SIZE - (linear & (EMUL_PAGE_SIZE - 1)));
	r = e->ops->fetch(e->ops->ctx, linear, c->insn + have, chunk);
	if (r == KVMPP_EMUL_IO)
		return KVMPP_EMUL_UNHANDLEABLE;	/* executing from MMIO */
	if (r)
		return callback_error(r);
	c->insn_len += chunk;
	return 0;
}

static int fetch(struct emul *e, u8 *buf, unsigned int n)
{
	int r;

	while (n--) {
		if (e->pos == e->c->insn_len) {
			r = fetch_more(e);
			if (r)
				return r;
		}
		*buf++ = e->c->insn[e->pos++];
	}
	return 0;
}

static int fetch_imm(struct emul *e, unsigned int size, u64 *v)
{
	u8 b[8];
	int r = fetch(e, b, size);

	*v = load_le(b, size);
	return r;
}

/* The 16-bit ModRM memory forms (SDM vol. 2A, table 2-1). */
static int decode_mem16(struct emul *e, u8 modrm)
{
	static const u8 base[8] = { 3, 3, REG_RBP, REG_RBP, REG_RSI, REG_RDI, REG_RBP, 3 };
	static const u8 index[8] = { REG_RSI, REG_RDI, REG_RSI, REG_RDI };
	struct kvmpp_emul_insn *in = e->in;
	unsigned int mod = MODRM_MOD(modrm), rm = MODRM_RM(modrm);
	u64 ea = 0, disp = 0;
	int r = 0;

	if (mod == 0 && rm == RM16_DISP16) {
		r = fetch_imm(e, 2, &disp);
	} else {
		ea = e->cpu->gprs[base[rm]];
		if (rm < 4)
			ea += e->cpu->gprs[index[rm]];
		if (base[rm] == REG_RBP)
			in->seg = KVMPP_EMUL_SS;
		if (mod == 1) {
			r = fetch_imm(e, 1, &disp);
			disp = sign_extend(disp, 1);
		} else if (mod == 2) {
			r = fetch_imm(e, 2, &disp);
		}
	}
	in->ea = (ea + disp) & 0xffff;
	return r;
}

/* The 32- and 64-bit ModRM memory forms (SDM vol. 2A, tables 2-2 and 2-3, 2.2.1.6). */
static int decode_mem32(struct emul *e, u8 modrm)
{
	struct kvmpp_emul_insn *in = e->in;
	unsigned int mod = MODRM_MOD(modrm), rm = MODRM_RM(modrm);
	int base = -1, index = -1, scale = 0;
	u64 ea = 0, disp = 0;
	u8 sib;
	int r;

	if (rm == RM_SIB) {
		r = fetch(e, &sib, 1);
		if (r)
			return r;
		scale = MODRM_MOD(sib);
		index = MODRM_REG(sib) | ((in->rex & REX_X) ? 8 : 0);
		if (index == SIB_NO_INDEX)
			index = -1;	/* r12 (with REX.X) is an index */
		if (MODRM_RM(sib) == SIB_NO_BASE && mod == 0)
			mod = 2;	/* disp32, no base */
		else
			base = MODRM_RM(sib) | ((in->rex & REX_B) ? 8 : 0);
	} else if (rm == RM_DISP32 && mod == 0) {
		mod = 2;
		in->rip_relative = long_mode64(e);
	} else {
		base = rm | ((in->rex & REX_B) ? 8 : 0);
	}

	if (mod == 1) {
		r = fetch_imm(e, 1, &disp);
		disp = sign_extend(disp, 1);
	} else if (mod == 2) {
		r = fetch_imm(e, 4, &disp);
		disp = sign_extend(disp, 4);
	} else {
		r = 0;
	}
	if (base >= 0) {
		ea = e->cpu->gprs[base];
		if ((base & 7) == REG_RSP || (base & 7) == REG_RBP)
			in->seg = KVMPP_EMUL_SS;
	}
	if (index >= 0)
		ea += e->cpu->gprs[index] << scale;
	in->ea = ea + disp;	/* truncated to the address size once decoded */
	return r;
}

static int decode_modrm(struct emul *e, const struct op_desc **desc)
{
	struct kvmpp_emul_insn *in = e->in;
	u8 modrm;
	int r;

	r = fetch(e, &modrm, 1);
	if (r)
		return r;
	if ((*desc)->group)
		*desc = &groups[(*desc)->group][MODRM_REG(modrm)];
	in->reg = MODRM_REG(modrm) | ((in->rex & REX_R) ? 8 : 0);
	in->rm = MODRM_RM(modrm) | ((in->rex & REX_B) ? 8 : 0);
	if (MODRM_MOD(modrm) == MOD_REGISTER)
		return 0;
	in->mem = true;
	in->seg = KVMPP_EMUL_DS;
	return in->addr_size == 2 ? decode_mem16(e, modrm) : decode_mem32(e, modrm);
}

static int decode_imm(struct emul *e, enum imm kind)
{
	struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	int r;

	switch (kind) {
	case IMM_B:
		return fetch_imm(e, 1, &in->imm);
	case IMM_BS:
		r = fetch_imm(e, 1, &in->imm);
		in->imm = sign_extend(in->imm, 1);
		return r;
	case IMM_Z:
		size = size == 2 ? 2 : 4;
		r = fetch_imm(e, size, &in->imm);
		in->imm = sign_extend(in->imm, size);
		return r;
	case IMM_V:
		return fetch_imm(e, size, &in->imm);
	default:
		return 0;
	}
}

/* The checks the CPU makes before it touches memory: LOCK, SSE state. */
static int check_insn(struct emul *e)
{
	struct kvmpp_emul_insn *in = e->in;
	const struct kvmpp_emul_cpu *cpu = e->cpu;

	if (in->lock && !((in->flags & D_LOCK) && in->mem))
		return raise_exception(e, UD_VECTOR, false);
	if ((in->flags & D_MEM_ONLY) && !in->mem)
		return raise_exception(e, UD_VECTOR, false);
	if (in->exec == EX_SSE_MOV || in->exec == EX_MOVD) {
		if ((cpu->cr0 & X86_CR0_EM) || (!in->mmx && !(cpu->cr4 & X86_CR4_OSFXSR)))
			return raise_exception(e, UD_VECTOR, false);
		if (cpu->cr0 & X86_CR0_TS)
			return raise_exception(e, NM_VECTOR, false);
	}
	if (in->exec == EX_XCHG && in->mem)
		in->lock = true;	/* XCHG with memory is always locked */
	return 0;
}

static int decode(struct emul *e)
{
	struct kvmpp_emul_insn *in = e->in;
	int code_size = e->cpu->code_size;
	bool opsize = false, adsize = false;
	const struct op_desc *desc, *entry;
	unsigned int sse_idx;
	int seg = -1, r;
	u8 b;

	*in = (struct kvmpp_emul_insn){ 0 };
	e->c->insn_len = 0;
	e->pos = 0;
	if (code_size != 2 && code_size != 4 && code_size != 8)
		return -EINVAL;

	for (;;) {
		r = fetch(e, &b, 1);
		if (r)
			return r;
		switch (b) {
		case PFX_LOCK:
			in->lock = true;
			break;
		case PFX_REPNE:
		case PFX_REP:
			in->rep = b;
			break;
		case PFX_OPSIZE:
			opsize = true;
			break;
		case PFX_ADSIZE:
			adsize = true;
			break;
		case PFX_ES:
			seg = KVMPP_EMUL_ES;
			break;
		case PFX_CS:
			seg = KVMPP_EMUL_CS;
			break;
		case PFX_SS:
			seg = KVMPP_EMUL_SS;
			break;
		case PFX_DS:
			seg = KVMPP_EMUL_DS;
			break;
		case PFX_FS:
			seg = KVMPP_EMUL_FS;
			break;
		case PFX_GS:
			seg = KVMPP_EMUL_GS;
			break;
		default:
			if (code_size == 8 && (b & REX_MASK) == REX_BASE) {
				in->rex = b;
				continue;
			}
			goto opcode;
		}
		in->rex = 0;	/* a REX prefix counts only right before the opcode */
	}

opcode:
	if (code_size == 8) {
		in->op_size = (in->rex & REX_W) ? 8 : opsize ? 2 : 4;
		in->addr_size = adsize ? 4 : 8;
	} else {
		in->op_size = (code_size == 4) != opsize ? 4 : 2;
		in->addr_size = (code_size == 4) != adsize ? 4 : 2;
	}
	in->opcode = b;
	if (b == OPC_TWO_BYTE) {
		r = fetch(e, &b, 1);
		if (r)
			return r;
		in->opcode = OPC_TWO_BYTE << 8 | b;
		desc = &two_byte[b];
	} else {
		desc = &one_byte[b];
	}
	if (((desc->flags & D_NO64) && code_size == 8) ||
	    ((desc->flags & D_ONLY64) && code_size != 8) ||
	    ((desc->flags & D_NO_PREFIX) && (opsize || in->rep)))
		return KVMPP_EMUL_UNHANDLEABLE;
	if (desc->flags & D_BYTE)
		in->op_size = 1;

	/*
	 * A group opcode's entry gives the operand size and the immediate;
	 * ModRM.reg then picks the instruction, its operands and D_LOCK.
	 */
	entry = desc;
	if ((desc->form & F_MODRM) || desc->group) {
		r = decode_modrm(e, &desc);
		if (r)
			return r;
	}
	in->flags = (entry->flags & ~D_LOCK) | (desc->flags & D_LOCK);
	in->form = desc->form;
	in->exec = desc->exec;
	in->sub = desc->sub;
	if (in->exec == EX_NONE)
		return KVMPP_EMUL_UNHANDLEABLE;

	if (in->exec == EX_SSE_MOV) {
		/* The mandatory prefix: F2/F3 (the last one) over 66. */
		sse_idx = in->rep == PFX_REP ? 2 : in->rep == PFX_REPNE ? 3 : opsize ? 1 : 0;
		in->op_size = SSE_SIZE;
		switch (SSE_PICK(desc->sse, sse_idx)) {
		case SSE_A:
			in->aligned = true;
			break;
		case SSE_MMX:
			/* MM0-7: REX.R and REX.B do not extend them. */
			in->mmx = true;
			in->op_size = 8;
			in->reg &= 7;
			if (!in->mem)
				in->rm &= 7;
			break;
		case SSE_NO:
			return KVMPP_EMUL_UNHANDLEABLE;
		}
	}
	if (in->exec == EX_MOVD) {
		sse_idx = in->rep == PFX_REP ? 2 : in->rep == PFX_REPNE ? 3 : opsize ? 1 : 0;
		in->sub = SSE_PICK(desc->sse, sse_idx);
		/* 32 bits, 64 with REX.W; MOVQ xmm is always 64 (66 is a mandatory prefix here). */
		in->op_size = in->sub == MOVQ_XMM || (in->rex & REX_W) ? 8 : 4;
		switch (in->sub) {
		case MOVD_MMX:
			in->mmx = true;
			in->reg &= 7;	/* MM0-7: REX.R does not extend them */
			break;
		case SSE_NO:
			return KVMPP_EMUL_UNHANDLEABLE;
		}
	}
	if (in->exec == EX_MOVZX || in->exec == EX_MOVSX)
		in->src_size = min_uint(in->sub, in->op_size);	/* MOVSXD r32/r16: a plain move */
	else
		in->src_size = in->op_size;

	if (in->form & (F_ACC | F_OPREG))
		in->reg = (in->form & F_ACC) ? REG_RAX :
			  (b & 7) | ((in->rex & REX_B) ? 8 : 0);
	if (in->form & F_MOFFS) {
		r = fetch_imm(e, in->addr_size, &in->ea);
		if (r)
			return r;
		in->mem = true;
		in->seg = KVMPP_EMUL_DS;
	}
	if (in->form & F_SRC_IMM) {
		r = decode_imm(e, entry->imm);
		if (r)
			return r;
	}
	in->len = e->pos;

	if (in->rip_relative)
		in->ea += e->cpu->rip + in->len;
	in->ea &= size_mask(in->addr_size);
	if (in->mem && seg >= 0)
		in->seg = seg;
	if (in->form & F_STRING)
		in->seg = seg >= 0 ? seg : KVMPP_EMUL_DS;	/* the source's; ES:rDI is fixed */
	return check_insn(e);
}

/* ---- memory ---- */

/* The linear address of @seg:@ea (in 64-bit mode only FS and GS have a base). */
static u64 linear(const struct emul *e, unsigned int seg, u64 ea)
{
	u64 base = e->cpu->seg_base[seg];

	if (long_mode64(e))
		return (seg == KVMPP_EMUL_FS || seg == KVMPP_EMUL_GS) ? base + ea : ea;
	return (u32)(base + ea);
}

static u64 next_linear(const struct emul *e, u64 la, unsigned int n)
{
	return long_mode64(e) ? la + n : (u32)(la + n);
}

/* The next piece of an access: at most 8 bytes, within one page. */
static unsigned int piece_len(u64 la, unsigned int size)
{
	unsigned int n = min_uint(size, KVMPP_EMUL_MAX_ACCESS);

	return min_uint(n, EMUL_PAGE_SIZE - (la & (EMUL_PAGE_SIZE - 1)));
}

/*
 * One piece of a read: from the cache when this execution repeats one that
 * stopped for MMIO, else from the callback (and cached).
 */
static int read_piece(struct emul *e, u64 la, u8 *buf, unsigned int n)
{
	struct kvmpp_emul_ctxt *c = e->c;
	struct kvmpp_emul_piece *p;
	int r;

	if (e->read_idx < c->nr_reads) {
		p = &c->reads[e->read_idx];
		if (p->linear == la && p->len == n) {
			e->read_idx++;
			__builtin_memcpy(buf, p->data, n);
			return 0;
		}
		c->nr_reads = e->read_idx;	/* the state changed under us: read again */
	}
	if (c->nr_reads == KVMPP_EMUL_MAX_PIECES)
		return -EIO;
	p = &c->reads[c->nr_reads];
	*p = (struct kvmpp_emul_piece){ .linear = la, .len = n };
	r = e->ops->read(e->ops->ctx, la, p->data, n, &p->gpa);
	if (r == KVMPP_EMUL_IO) {
		c->nr_reads++;
		c->io = (struct kvmpp_emul_io){ .gpa = p->gpa, .linear = la, .len = n };
		c->phase = PHASE_READ;
		return KVMPP_EMUL_IO;
	}
	if (r)
		return callback_error(r);
	c->nr_reads++;
	e->read_idx++;
	__builtin_memcpy(buf, p->data, n);
	return 0;
}

static int read_mem(struct emul *e, u64 la, u8 *buf, unsigned int size)
{
	unsigned int n;
	int r;

	for (; size; size -= n, buf += n, la = next_linear(e, la, n)) {
		n = piece_len(la, size);
		r = read_piece(e, la, buf, n);
		if (r)
			return r;
	}
	return 0;
}

static int queue_write(struct emul *e, u64 gpa, u64 la, const u8 *buf, unsigned int n)
{
	struct kvmpp_emul_ctxt *c = e->c;
	struct kvmpp_emul_piece *p;

	if (c->nr_writes == KVMPP_EMUL_MAX_PIECES)
		return -EIO;
	p = &c->writes[c->nr_writes++];
	*p = (struct kvmpp_emul_piece){ .gpa = gpa, .linear = la, .len = n };
	__builtin_memcpy(p->data, buf, n);
	return 0;
}

static int write_mem(struct emul *e, u64 la, const u8 *buf, unsigned int size)
{
	unsigned int n;
	u64 gpa;
	int r;

	for (; size; size -= n, buf += n, la = next_linear(e, la, n)) {
		n = piece_len(la, size);
		gpa = 0;
		r = e->ops->write(e->ops->ctx, la, buf, n, &gpa);
		if (r == KVMPP_EMUL_IO)
			r = queue_write(e, gpa, la, buf, n);
		if (r)
			return callback_error(r);
	}
	return 0;
}

/*
 * The write of a locked read-modify-write: a compare-and-exchange when the
 * caller offers one and the operand lies in one page.
 */
static int write_locked(struct emul *e, u64 la, const u8 *old, const u8 *new, unsigned int size)
{
	u64 gpa = 0;
	int r;

	if (!e->ops->cmpxchg || piece_len(la, size) != size)
		return write_mem(e, la, new, size);
	r = e->ops->cmpxchg(e->ops->ctx, la, old, new, size, &gpa);
	if (r == KVMPP_EMUL_IO)
		return queue_write(e, gpa, la, new, size);
	if (r == KVMPP_EMUL_CHANGED)
		return r;
	return r ? callback_error(r) : 0;
}

/* ---- execution ---- */

static u64 mem_linear(const struct emul *e)
{
	return linear(e, e->in->seg, e->in->ea);
}

/* The r/m operand's value: a register, or memory. */
static int read_rm(struct emul *e, unsigned int size, u64 *v)
{
	u8 buf[8];
	int r;

	if (!e->in->mem) {
		*v = get_reg(e, e->in->rm, size);
		return 0;
	}
	r = read_mem(e, mem_linear(e), buf, size);
	*v = load_le(buf, size);
	return r;
}

/* Store @v into the r/m operand, whose value was @old. */
static int write_rm(struct emul *e, unsigned int size, u64 old, u64 v)
{
	u8 buf[8], old_buf[8];

	if (!e->in->mem) {
		set_reg(e, e->in->rm, size, v);
		return 0;
	}
	store_le(buf, v, size);
	if (!e->in->lock)
		return write_mem(e, mem_linear(e), buf, size);
	store_le(old_buf, old, size);
	return write_locked(e, mem_linear(e), old_buf, buf, size);
}

/*
 * CMPXCHG r/m, reg: compare the accumulator with the destination (flags as
 * CMP); equal: the destination gets @src; not equal: the accumulator gets the
 * destination, which (in memory) is written back unchanged (SDM vol. 2A,
 * "CMPXCHG": "the destination operand is written back if the comparison
 * fails").
 */
static int exec_cmpxchg(struct emul *e, u64 src)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	u64 dst, acc = get_reg(e, REG_RAX, size);
	bool equal;
	int r;

	r = read_rm(e, size, &dst);
	if (r)
		return r;
	alu(e, ALU_CMP, acc, dst, size);
	equal = !!(e->rflags & X86_EFLAGS_ZF);
	if (!in->mem && !equal) {
		/* A register destination is left alone (not even zero-extended: measured). */
		set_reg(e, REG_RAX, size, dst);
		return 0;
	}
	r = write_rm(e, size, dst, equal ? src : dst);
	if (!r && !equal)
		set_reg(e, REG_RAX, size, dst);
	return r;
}

/* Instructions of the forms r/m,reg reg,r/m r/m,imm r/m acc,imm reg,imm acc,moffs moffs,acc. */
static int exec_generic(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	u64 src = 0, dst = 0, res;
	bool store = true;
	int r;

	if (in->form & F_SRC_IMM) {
		src = in->imm;
	} else if (in->form & F_SRC_REG) {
		src = get_reg(e, in->reg, size);
	} else if (in->form & F_SRC_RM) {
		r = read_rm(e, in->src_size, &src);
		if (r)
			return r;
	}
	if (in->exec == EX_CMPXCHG)
		return exec_cmpxchg(e, src);
	if (in->exec != EX_MOV && in->exec != EX_MOVZX && in->exec != EX_MOVSX) {
		if (in->form & F_DST_RM) {
			r = read_rm(e, size, &dst);
			if (r)
				return r;
		} else {
			dst = get_reg(e, in->reg, size);
		}
	}

	switch (in->exec) {
	case EX_MOV:
	case EX_MOVZX:
		res = src;
		break;
	case EX_MOVSX:
		res = sign_extend(src, in->src_size);
		break;
	case EX_ALU:
		res = alu(e, in->sub, dst, src, size);
		store = in->sub != ALU_CMP;
		break;
	case EX_TEST:
		alu(e, ALU_AND, dst, src, size);
		return 0;
	case EX_INC:
		res = (dst + 1) & size_mask(size);
		set_flags(e, EFL_ARITH & ~X86_EFLAGS_CF, add_flags(dst, 1, res, size));
		break;
	case EX_DEC:
		res = (dst - 1) & size_mask(size);
		set_flags(e, EFL_ARITH & ~X86_EFLAGS_CF, sub_flags(dst, 1, res, size));
		break;
	case EX_NOT:
		res = ~dst;
		break;
	case EX_NEG:
		res = alu(e, ALU_SUB, 0, dst, size);
		break;
	case EX_XCHG:
		res = src;
		break;
	case EX_XADD:
		/* The source register gets the old destination, then the destination the sum. */
		res = alu(e, ALU_ADD, dst, src, size);
		set_reg(e, in->reg, size, dst);
		break;
	default:
		return -EIO;
	}
	if (!store)
		return 0;
	if (!(in->form & F_DST_RM)) {
		set_reg(e, in->reg, size, res);
		return 0;
	}
	r = write_rm(e, size, dst, res);
	if (!r && in->exec == EX_XCHG)
		set_reg(e, in->reg, size, dst);
	return r;
}

/*
 * BT, BTS, BTR, BTC. With a register bit offset and a memory operand the
 * offset is a signed number of bits from the operand's address, which the
 * CPU reaches by reading the operand-sized word that holds the bit (SDM
 * vol. 2A, "BT": "Bit(BitBase, BitOffset)").
 */
static int exec_bt(struct emul *e)
{
	struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size, bits = 8 * size;
	u64 offset, value, mask, res, ea = in->ea;
	u8 buf[8], old_buf[8];
	int r;

	if (in->form & F_SRC_IMM) {
		offset = in->imm & (bits - 1);
	} else {
		offset = get_reg(e, in->reg, size);
		if (in->mem) {
			long long words = (long long)sign_extend(offset, size) >> (size == 2 ? 4 : size == 4 ? 5 : 6);

			ea = (ea + (u64)words * size) & size_mask(in->addr_size);
		}
		offset &= bits - 1;
	}
	mask = 1ull << offset;

	if (in->mem) {
		r = read_mem(e, linear(e, in->seg, ea), buf, size);
		if (r)
			return r;
		value = load_le(buf, size);
	} else {
		value = get_reg(e, in->rm, size);
	}
	/* CF is the bit; OF SF AF PF are undefined and left alone; ZF is unaffected. */
	set_flags(e, X86_EFLAGS_CF, (value & mask) ? X86_EFLAGS_CF : 0);

	switch (in->sub) {
	case BT_SET:
		res = value | mask;
		break;
	case BT_RESET:
		res = value & ~mask;
		break;
	case BT_COMPLEMENT:
		res = value ^ mask;
		break;
	default:
		return 0;
	}
	if (!in->mem) {
		set_reg(e, in->rm, size, res);
		return 0;
	}
	store_le(old_buf, value, size);
	store_le(buf, res, size);
	if (in->lock)
		return write_locked(e, linear(e, in->seg, ea), old_buf, buf, size);
	return write_mem(e, linear(e, in->seg, ea), buf, size);
}

/* MOVQ between an MMX register and an MMX register or memory. */
static int exec_mmx(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	u8 buf[8];
	int r;

	if (in->form & F_DST_REG) {
		e->mm_dst = in->reg;
		if (!in->mem) {
			e->mm = e->cpu->mm[in->rm];
			return 0;
		}
		r = read_mem(e, mem_linear(e), buf, 8);
		e->mm = load_le(buf, 8);
		return r;
	}
	if (!in->mem) {
		e->mm_dst = in->rm;
		e->mm = e->cpu->mm[in->reg];
		return 0;
	}
	store_le(buf, e->cpu->mm[in->reg], 8);
	return write_mem(e, mem_linear(e), buf, 8);
}

/* Before an instruction reads cpu->xmm or cpu->mm: have the caller fill them. */
static void need_fpu(struct emul *e)
{
	if (!e->cpu->fpu_valid && e->ops->load_fpu) {
		e->ops->load_fpu(e->ops->ctx, e->cpu);
		e->cpu->fpu_valid = true;
	}
}

static int exec_sse(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	u64 la = mem_linear(e);

	need_fpu(e);
	if (in->mmx)
		return exec_mmx(e);
	if (in->mem && in->aligned && (la & (SSE_SIZE - 1)))
		return raise_exception(e, GP_VECTOR, true);
	if (in->form & F_DST_REG) {
		e->xmm_dst = in->reg;
		if (in->mem)
			return read_mem(e, la, e->xmm, SSE_SIZE);
		__builtin_memcpy(e->xmm, e->cpu->xmm[in->rm], SSE_SIZE);
		return 0;
	}
	if (in->mem)
		return write_mem(e, la, e->cpu->xmm[in->reg], SSE_SIZE);
	e->xmm_dst = in->rm;
	__builtin_memcpy(e->xmm, e->cpu->xmm[in->reg], SSE_SIZE);
	return 0;
}

/*
 * MOVD/MOVQ between an MMX or XMM register and a general register or
 * memory (0F 6E/7E, 66 0F 6E/7E, REX.W for 64 bits), and MOVQ between an
 * XMM register and an XMM register or memory (F3 0F 7E loads, 66 0F D6
 * stores). An XMM destination has the bits above the operand zeroed, an
 * MMX one above 32 bits for MOVD.
 */
static int exec_movd(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	bool load = in->opcode == (OPC_TWO_BYTE << 8 | 0x6e) ||
		    (in->opcode == (OPC_TWO_BYTE << 8 | 0x7e) && in->sub == MOVQ_XMM);
	u8 buf[8];
	u64 v;
	int r;

	need_fpu(e);
	if (load) {
		if (in->mem) {
			r = read_mem(e, mem_linear(e), buf, size);
			if (r)
				return r;
			v = load_le(buf, size);
		} else if (in->sub == MOVQ_XMM) {
			v = load_le(e->cpu->xmm[in->rm], 8);
		} else {
			v = get_reg(e, in->rm, size);
		}
		if (in->mmx) {
			e->mm_dst = in->reg;
			e->mm = v;
		} else {
			e->xmm_dst = in->reg;
			__builtin_memset(e->xmm, 0, SSE_SIZE);
			store_le(e->xmm, v, 8);
		}
		return 0;
	}
	v = in->mmx ? e->cpu->mm[in->reg] : load_le(e->cpu->xmm[in->reg], 8);
	v &= size_mask(size);
	if (in->mem) {
		store_le(buf, v, size);
		return write_mem(e, mem_linear(e), buf, size);
	}
	if (in->sub == MOVQ_XMM) {
		e->xmm_dst = in->rm;
		__builtin_memset(e->xmm, 0, SSE_SIZE);
		store_le(e->xmm, v, 8);
		return 0;
	}
	set_reg(e, in->rm, size, v);
	return 0;
}

/* The count of a shift: CL, 1 or the immediate, masked to 5 bits (6 with 64-bit operands). */
static unsigned int shift_count(const struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	u64 count = (in->flags & D_COUNT_CL) ? e->gprs[REG_RCX] :
		    (in->flags & D_COUNT_1) ? 1 : in->imm;

	return count & (in->op_size == 8 ? 63 : 31);
}

/*
 * Group 2: ROL ROR RCL RCR SHL/SAL SHR SAR, one bit at a time as the SDM's
 * pseudocode (vol. 2B, "RCL/RCR/ROL/ROR", "SAL/SAR/SHL/SHR"). A masked
 * count of 0 changes no flag, and the destination is written back
 * unchanged (KVM executes the instruction and writes its destination
 * operand back whatever the count: an MMIO write exit). Where the manuals
 * leave a flag undefined: OF for counts above 1 is what the one-bit rule
 * gives for the last step; AF is cleared; SHL/SHR counts beyond the
 * operand size shift zeros (CF the last bit out, 0 past the width).
 */
static int exec_shift(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size, bits = 8 * size, count = shift_count(e), i, n;
	u64 m = size_mask(size), msb = sign_bit(size), dst, res, out, cf, of;
	int r;

	r = read_rm(e, size, &dst);
	if (r)
		return r;
	if (!count)
		return write_rm(e, size, dst, dst);
	cf = (e->rflags & X86_EFLAGS_CF) ? 1 : 0;
	res = dst;
	switch (in->sub) {
	case SH_ROL:
	case SH_ROR:
		n = count % bits;
		if (n && in->sub == SH_ROL)
			res = (dst << n | dst >> (bits - n)) & m;
		else if (n)
			res = (dst >> n | dst << (bits - n)) & m;
		/* CF is the bit rotated last, even when the count is a multiple of the width. */
		cf = in->sub == SH_ROL ? res & 1 : !!(res & msb);
		break;
	case SH_RCL:
	case SH_RCR:
		/* Through CF: 9 and 17 bits wide for bytes and words. */
		n = size == 1 ? count % 9 : size == 2 ? count % 17 : count;
		if (!n)
			return write_rm(e, size, dst, dst);
		for (i = 0; i < n; i++) {
			if (in->sub == SH_RCL) {
				out = !!(res & msb);
				res = (res << 1 | cf) & m;
			} else {
				out = res & 1;
				res = res >> 1 | (cf ? msb : 0);
			}
			cf = out;
		}
		break;
	default:
		for (i = 0; i < count; i++) {
			if (in->sub == SH_SHR || in->sub == SH_SAR) {
				cf = res & 1;
				res = res >> 1 | (in->sub == SH_SAR ? res & msb : 0);
			} else {
				cf = !!(res & msb);
				res = (res << 1) & m;
			}
		}
		break;
	}

	switch (in->sub) {
	case SH_ROR:
	case SH_RCR:
		/* One step: the two top bits of the result differ. */
		of = !!(res & msb) ^ !!(res & (msb >> 1));
		break;
	case SH_SHR:
		/* One step: the top bit of its input (0 after more than one). */
		of = count == 1 && (dst & msb);
		break;
	case SH_SAR:
		of = 0;
		break;
	default:
		/* ROL RCL SHL: the top bit of the result differs from CF. */
		of = !!(res & msb) ^ cf;
		break;
	}
	if (in->sub <= SH_RCR)
		set_flags(e, X86_EFLAGS_CF | X86_EFLAGS_OF, (cf ? X86_EFLAGS_CF : 0) | (of ? X86_EFLAGS_OF : 0));
	else
		set_flags(e, EFL_ARITH, result_flags(res, size) | (cf ? X86_EFLAGS_CF : 0) |
			  (of ? X86_EFLAGS_OF : 0));
	return write_rm(e, size, dst, res);
}

/*
 * @dst shifted by 0 <= @count < 32 (64), with the bits of @src coming in:
 * SHLD (@left) or SHRD. With 16-bit operands a count above 16 shifts the
 * 48 bits dst:src:dst (one model of what CPUs do; the manuals leave the
 * result undefined).
 */
static u64 double_shift(u64 dst, u64 src, unsigned int count, unsigned int size, bool left)
{
	unsigned int bits = 8 * size;
	u64 wide;

	if (!count)
		return dst;
	if (size == 2) {
		wide = dst << 32 | src << 16 | dst;
		return (left ? wide >> (32 - count) : wide >> count) & 0xffff;
	}
	if (left)
		return (dst << count | src >> (bits - count)) & size_mask(size);
	return (dst >> count | src << (bits - count)) & size_mask(size);
}

/*
 * SHLD, SHRD (SDM vol. 2B): count 0 as group 2. CF is the last bit shifted
 * out; OF (defined for a count of 1: the sign changed) is, for larger
 * counts, whether the last one-bit step changed the top bit; AF cleared.
 */
static int exec_shd(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size, count = shift_count(e);
	bool left = in->sub == 0;
	u64 msb = sign_bit(size), dst, src, prev, res, f;
	int r;

	r = read_rm(e, size, &dst);
	if (r)
		return r;
	if (!count)
		return write_rm(e, size, dst, dst);
	src = get_reg(e, in->reg, size);
	prev = double_shift(dst, src, count - 1, size, left);
	res = double_shift(dst, src, count, size, left);
	f = result_flags(res, size);
	if (left ? prev & msb : prev & 1)
		f |= X86_EFLAGS_CF;
	if ((prev ^ res) & msb)
		f |= X86_EFLAGS_OF;
	set_flags(e, EFL_ARITH, f);
	return write_rm(e, size, dst, res);
}

/*
 * IMUL reg, r/m (, imm): the product truncated to the operand size; CF and
 * OF set when that lost significant bits. SF ZF PF (undefined) follow the
 * truncated product, AF (undefined) is cleared.
 */
static int exec_imul(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	long long prod;
	u64 src, other;
	bool lost;
	int r;

	r = read_rm(e, size, &src);
	if (r)
		return r;
	other = (in->form & F_SRC_IMM) ? in->imm : get_reg(e, in->reg, size);
	lost = __builtin_mul_overflow((long long)sign_extend(src, size),
				      (long long)sign_extend(other, size), &prod);
	if (sign_extend((u64)prod, size) != (u64)prod)
		lost = true;
	set_flags(e, EFL_ARITH, result_flags((u64)prod, size) | (lost ? X86_EFLAGS_CF | X86_EFLAGS_OF : 0));
	set_reg(e, in->reg, size, (u64)prod);
	return 0;
}

/* @a * @b, unsigned, 128 bits: the low half, the high half in *@hi. */
static u64 mul_wide(u64 a, u64 b, u64 *hi)
{
	u64 al = (u32)a, ah = a >> 32, bl = (u32)b, bh = b >> 32;
	u64 ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	u64 mid = (ll >> 32) + (u32)lh + (u32)hl;

	*hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
	return mid << 32 | (u32)ll;
}

/* @hi:@lo / @d, unsigned, for @hi < @d (the quotient fits in 64 bits): restoring division. */
static u64 div_wide(u64 hi, u64 lo, u64 d, u64 *rem)
{
	unsigned int i;
	bool carry;

	for (i = 0; i < 64; i++) {
		carry = hi >> 63;
		hi = hi << 1 | lo >> 63;
		lo <<= 1;
		if (carry || hi >= d) {
			hi -= d;
			lo |= 1;
		}
	}
	*rem = hi;
	return lo;
}

/*
 * MUL, IMUL, DIV, IDIV r/m (F6/F7 /4-/7) on rDX:rAX (AH:AL for bytes, as
 * AX). MUL/IMUL: CF = OF = the upper half is significant; SF ZF PF
 * (undefined) follow the lower half, AF (undefined) is cleared. DIV/IDIV:
 * #DE for a zero divisor or a quotient that does not fit; the flags (all
 * undefined) are left alone.
 */
static int exec_muldiv(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size, bits = 8 * size;
	u64 m = size_mask(size), msb = sign_bit(size), src, lo, hi, q, rem, n, d;
	bool neg_n, neg_d, lost;
	int r;

	r = read_rm(e, size, &src);
	if (r)
		return r;
	lo = get_reg(e, REG_RAX, size);
	hi = size == 1 ? get_reg(e, REG_RAX, 2) >> 8 : get_reg(e, REG_RDX, size);

	switch (in->sub) {
	case MD_MUL:
	case MD_IMUL:
		lo = mul_wide(lo, src, &hi);
		if (in->sub == MD_IMUL && size == 8) {
			/* The signed product from the unsigned one. */
			hi -= (get_reg(e, REG_RAX, 8) & msb ? src : 0) +
			      (src & msb ? get_reg(e, REG_RAX, 8) : 0);
		} else if (in->sub == MD_IMUL) {
			lo = (u64)((long long)sign_extend(get_reg(e, REG_RAX, size), size) *
				   (long long)sign_extend(src, size));
		}
		if (size < 8)
			hi = (in->sub == MD_IMUL ? (u64)((long long)lo >> bits) : lo >> bits) & m;
		lo &= m;
		lost = in->sub == MD_MUL ? hi != 0 : hi != ((lo & msb) ? m : 0);
		set_flags(e, EFL_ARITH, result_flags(lo, size) | (lost ? X86_EFLAGS_CF | X86_EFLAGS_OF : 0));
		q = lo;
		rem = hi;
		break;
	default:
		if (!src)
			return raise_exception(e, DE_VECTOR, false);
		neg_n = in->sub == MD_IDIV && (hi & msb);
		neg_d = in->sub == MD_IDIV && (src & msb);
		d = neg_d ? -sign_extend(src, size) : src;
		if (size == 8) {
			if (neg_n) {	/* the magnitude of the 128-bit dividend */
				hi = ~hi + !lo;
				lo = -lo;
			}
			if (hi >= d)
				return raise_exception(e, DE_VECTOR, false);
			q = div_wide(hi, lo, d, &rem);
		} else {
			n = hi << bits | lo;
			if (neg_n)
				n = -sign_extend(n, 2 * size);
			q = n / d;
			rem = n % d;
		}
		if (in->sub == MD_DIV ? q > m : q > (neg_n != neg_d ? msb : msb - 1))
			return raise_exception(e, DE_VECTOR, false);
		q = (neg_n != neg_d ? -q : q) & m;
		rem = (neg_n ? -rem : rem) & m;
		break;
	}
	if (size == 1) {
		set_reg(e, REG_RAX, 2, rem << 8 | q);
	} else {
		set_reg(e, REG_RAX, size, q);
		set_reg(e, REG_RDX, size, rem);
	}
	return 0;
}

/* Condition @cc (the low nibble of Jcc, SETcc, CMOVcc: SDM vol. 1, table B-1) in @rflags. */
static bool condition(u64 rflags, unsigned int cc)
{
	const bool of = rflags & X86_EFLAGS_OF, cf = rflags & X86_EFLAGS_CF;
	const bool zf = rflags & X86_EFLAGS_ZF, sf = rflags & X86_EFLAGS_SF;
	const bool pf = rflags & X86_EFLAGS_PF;
	/* The even conditions: O, B, E, BE, S, P, L, LE; an odd one is the negation. */
	const bool even[8] = { of, cf, zf, cf || zf, sf, pf, sf != of, zf || sf != of };

	return even[(cc >> 1) & 7] != (cc & 1);
}

/* SETcc r/m8: a write of 0 or 1 (nothing read; the ModRM reg field is ignored). */
static int exec_setcc(struct emul *e)
{
	return write_rm(e, 1, 0, condition(e->rflags, e->in->opcode & 0xf));
}

/*
 * CMOVcc reg, r/m: the source is read whatever the condition; a 32-bit
 * destination is written (zero-extended) even when the condition is false.
 */
static int exec_cmov(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	u64 src;
	int r;

	r = read_rm(e, size, &src);
	if (r)
		return r;
	if (condition(e->rflags, in->opcode & 0xf))
		set_reg(e, in->reg, size, src);
	else if (size == 4)
		set_reg(e, in->reg, size, get_reg(e, in->reg, size));
	return 0;
}

/*
 * CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W): compare rDX:rAX with the
 * operand; equal: ZF = 1 and the operand gets rCX:rBX; not equal: ZF = 0,
 * rDX:rAX get the operand, which is written back unchanged (the SDM: "the
 * destination operand receives a write cycle without regard to the result
 * of the comparison"). CMPXCHG16B needs 16-byte alignment (#GP(0)); its
 * write is two 8-byte ones, not atomic on RAM.
 */
static int exec_cmpxchg8b(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int half = (in->rex & REX_W) ? 8 : 4, size = 2 * half;
	u64 la = mem_linear(e), lo, hi;
	u8 old[SSE_SIZE], new[SSE_SIZE];
	bool equal;
	int r;

	if (size == SSE_SIZE && (la & (SSE_SIZE - 1)))
		return raise_exception(e, GP_VECTOR, true);
	r = read_mem(e, la, old, size);
	if (r)
		return r;
	lo = load_le(old, half);
	hi = load_le(old + half, half);
	equal = lo == get_reg(e, REG_RAX, half) && hi == get_reg(e, REG_RDX, half);
	set_flags(e, X86_EFLAGS_ZF, equal ? X86_EFLAGS_ZF : 0);
	if (equal) {
		store_le(new, get_reg(e, REG_RBX, half), half);
		store_le(new + half, get_reg(e, REG_RCX, half), half);
	} else {
		__builtin_memcpy(new, old, size);
		set_reg(e, REG_RAX, half, lo);
		set_reg(e, REG_RDX, half, hi);
	}
	if (in->lock && size <= KVMPP_EMUL_MAX_ACCESS)
		return write_locked(e, la, old, new, size);
	return write_mem(e, la, new, size);
}

/* Advance a string pointer register by one element, as wide as the address size. */
static void string_step(struct emul *e, unsigned int reg)
{
	const struct kvmpp_emul_insn *in = e->in;
	u64 v = e->gprs[reg];

	v = (e->rflags & X86_EFLAGS_DF) ? v - in->op_size : v + in->op_size;
	set_reg(e, reg, in->addr_size, v);
}

/* One element of MOVS, CMPS, STOS, LODS or SCAS. */
static int exec_string(struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;
	unsigned int size = in->op_size;
	u64 amask = size_mask(in->addr_size);
	u64 src = linear(e, in->seg, e->gprs[REG_RSI] & amask);
	u64 dst = linear(e, KVMPP_EMUL_ES, e->gprs[REG_RDI] & amask);
	u8 a[8], b[8];
	int r;

	switch (in->sub) {
	case STR_MOVS:
		r = read_mem(e, src, a, size);
		if (!r)
			r = write_mem(e, dst, a, size);
		break;
	case STR_STOS:
		store_le(a, get_reg(e, REG_RAX, size), size);
		r = write_mem(e, dst, a, size);
		break;
	case STR_LODS:
		r = read_mem(e, src, a, size);
		if (!r)
			set_reg(e, REG_RAX, size, load_le(a, size));
		break;
	case STR_CMPS:
		r = read_mem(e, src, a, size);
		if (!r)
			r = read_mem(e, dst, b, size);
		if (!r)
			alu(e, ALU_CMP, load_le(a, size), load_le(b, size), size);
		break;
	default:	/* STR_SCAS */
		r = read_mem(e, dst, b, size);
		if (!r)
			alu(e, ALU_CMP, get_reg(e, REG_RAX, size), load_le(b, size), size);
		break;
	}
	if (r)
		return r;
	if (in->sub == STR_MOVS || in->sub == STR_CMPS || in->sub == STR_LODS)
		string_step(e, REG_RSI);
	if (in->sub != STR_LODS)
		string_step(e, REG_RDI);
	if (in->rep)
		set_reg(e, REG_RCX, in->addr_size, e->gprs[REG_RCX] - 1);
	return 0;
}

/* Whether a string instruction is over after the iteration just executed. */
static bool string_done(const struct emul *e)
{
	const struct kvmpp_emul_insn *in = e->in;

	if (!in->rep || !(e->gprs[REG_RCX] & size_mask(in->addr_size)))
		return true;
	if (in->sub != STR_CMPS && in->sub != STR_SCAS)
		return false;
	/* REPE stops on inequality, REPNE on equality. */
	return in->rep == PFX_REP ? !(e->rflags & X86_EFLAGS_ZF) : !!(e->rflags & X86_EFLAGS_ZF);
}

static u64 next_rip(const struct emul *e)
{
	return (e->cpu->rip + e->in->len) & size_mask(e->cpu->code_size);
}

static void commit(struct emul *e, bool complete)
{
	struct kvmpp_emul_cpu *cpu = e->cpu;

	__builtin_memcpy(cpu->gprs, e->gprs, sizeof(cpu->gprs));
	cpu->rflags = e->rflags;
	if (e->xmm_dst >= 0)
		__builtin_memcpy(cpu->xmm[e->xmm_dst], e->xmm, SSE_SIZE);
	if (e->mm_dst >= 0) {
		cpu->mm[e->mm_dst] = e->mm;
		cpu->mm_written |= 1u << e->mm_dst;
	}
	if (complete) {
		cpu->rip = next_rip(e);
		cpu->rflags &= ~X86_EFLAGS_RF;
	}
}

static void report_write(struct kvmpp_emul_ctxt *c)
{
	const struct kvmpp_emul_piece *p = &c->writes[c->next_write];

	c->io = (struct kvmpp_emul_io){ .gpa = p->gpa, .linear = p->linear,
					.len = p->len, .write = true };
	__builtin_memcpy(c->io.data, p->data, p->len);
}

void kvmpp_emul_reset(struct kvmpp_emul_ctxt *c)
{
	c->phase = PHASE_IDLE;
	c->nr_reads = 0;
	c->nr_writes = 0;
	c->next_write = 0;
	c->complete = false;
	c->iterations = 0;
}

bool kvmpp_emul_pending(const struct kvmpp_emul_ctxt *c)
{
	return c->phase != PHASE_IDLE;
}

bool kvmpp_emul_is_string(const struct kvmpp_emul_ctxt *c)
{
	return c->in.exec == EX_STRING;
}

/* The PHASE_WRITES step of kvmpp_emulate(), for a caller without the vCPU state. */
int kvmpp_emul_complete_write(struct kvmpp_emul_ctxt *c, u64 rip)
{
	if (c->phase != PHASE_WRITES)
		return KVMPP_EMUL_AGAIN;
	if (c->next_write + 1 < c->nr_writes) {
		c->next_write++;
		report_write(c);
		return KVMPP_EMUL_IO;
	}
	if (c->complete || rip != c->rip || c->iterations >= KVMPP_EMUL_REP_BATCH) {
		kvmpp_emul_reset(c);
		return KVMPP_EMUL_DONE;
	}
	return KVMPP_EMUL_AGAIN;
}

/* Execute the decoded instruction, iteration by iteration for REP strings. */
static int run(struct emul *e)
{
	struct kvmpp_emul_ctxt *c = e->c;
	const struct kvmpp_emul_insn *in = e->in;
	bool string = in->exec == EX_STRING, complete;
	int r;

	for (;;) {
		if (string && in->rep && !(e->cpu->gprs[REG_RCX] & size_mask(in->addr_size))) {
			/* REP with a zero count: nothing but RIP. */
			e->cpu->rip = next_rip(e);
			e->cpu->rflags &= ~X86_EFLAGS_RF;
			kvmpp_emul_reset(c);
			return KVMPP_EMUL_DONE;
		}
		__builtin_memcpy(e->gprs, e->cpu->gprs, sizeof(e->gprs));
		e->rflags = e->cpu->rflags;
		e->xmm_dst = -1;
		e->mm_dst = -1;
		e->read_idx = 0;
		c->nr_writes = 0;

		switch (in->exec) {
		case EX_STRING:
			r = exec_string(e);
			break;
		case EX_BT:
			r = exec_bt(e);
			break;
		case EX_SSE_MOV:
			r = exec_sse(e);
			break;
		case EX_MOVD:
			r = exec_movd(e);
			break;
		case EX_SHIFT:
			r = exec_shift(e);
			break;
		case EX_SHD:
			r = exec_shd(e);
			break;
		case EX_IMUL:
			r = exec_imul(e);
			break;
		case EX_MULDIV:
			r = exec_muldiv(e);
			break;
		case EX_SETCC:
			r = exec_setcc(e);
			break;
		case EX_CMOV:
			r = exec_cmov(e);
			break;
		case EX_CMPXCHG8B:
			r = exec_cmpxchg8b(e);
			break;
		default:
			r = exec_generic(e);
			break;
		}
		if (r == KVMPP_EMUL_IO)
			return r;	/* an MMIO read: PHASE_READ */
		if (r) {
			kvmpp_emul_reset(c);
			return r == KVMPP_EMUL_CHANGED ? KVMPP_EMUL_DONE : r;
		}

		complete = !string || string_done(e);
		commit(e, complete);
		c->nr_reads = 0;
		c->iterations++;
		if (c->nr_writes) {
			c->complete = complete;
			c->next_write = 0;
			c->phase = PHASE_WRITES;
			report_write(c);
			return KVMPP_EMUL_IO;
		}
		if (complete || c->iterations >= KVMPP_EMUL_REP_BATCH) {
			kvmpp_emul_reset(c);
			return KVMPP_EMUL_DONE;
		}
	}
}

int kvmpp_emulate(const struct kvmpp_emul_ops *ops, struct kvmpp_emul_cpu *cpu,
		  struct kvmpp_emul_ctxt *ctxt)
{
	struct emul e = { .ops = ops, .cpu = cpu, .c = ctxt, .in = &ctxt->in };
	struct kvmpp_emul_ctxt *c = ctxt;
	int r;

	switch (c->phase) {
	case PHASE_WRITES:
		/* The write reported last is done. */
		if (++c->next_write < c->nr_writes) {
			report_write(c);
			return KVMPP_EMUL_IO;
		}
		c->nr_writes = 0;
		if (c->complete || cpu->rip != c->rip || c->iterations >= KVMPP_EMUL_REP_BATCH) {
			kvmpp_emul_reset(c);
			return KVMPP_EMUL_DONE;
		}
		c->phase = PHASE_RUN;	/* the next REP iteration */
		break;
	case PHASE_READ:
		if (cpu->rip != c->rip || !c->nr_reads) {
			kvmpp_emul_reset(c);
			return KVMPP_EMUL_DONE;
		}
		__builtin_memcpy(c->reads[c->nr_reads - 1].data, c->io.data,
				 c->reads[c->nr_reads - 1].len);
		c->phase = PHASE_RUN;
		break;
	default:
		kvmpp_emul_reset(c);
		r = decode(&e);
		if (r)
			return r;
		c->rip = cpu->rip;
		c->phase = PHASE_RUN;
		break;
	}
	return run(&e);
}
