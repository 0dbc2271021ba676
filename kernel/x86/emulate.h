/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * x86 instruction decoder and emulator for MMIO: when a guest instruction
 * touches guest-physical memory that no memslot backs, the caller fetches,
 * decodes and executes it here, and the accesses that reach MMIO come back
 * as exits to userspace (KVM_EXIT_MMIO).
 *
 * Pure logic: guest memory is reached only through the caller's callbacks
 * (struct kvmpp_emul_ops), the vCPU state is a plain structure, so the file
 * compiles into kvmpp.ko, into the CMocka tests and into a fuzzer.
 *
 * Instructions (16-, 32- and 64-bit code; 8-, 16-, 32- and 64-bit operands):
 * - MOV 88/89/8A/8B, C6/C7 /0, A0-A3 (moffs), B0-BF (register, immediate);
 *   MOVZX 0F B6/B7, MOVSX 0F BE/BF, MOVSXD 63 (64-bit mode only);
 * - ADD OR ADC SBB AND SUB XOR CMP: 00-3D and 80/81/83 (82 outside 64-bit mode);
 *   TEST 84/85, A8/A9, F6/F7 /0; NOT, NEG F6/F7 /2, /3; INC, DEC FE/FF /0, /1;
 * - XCHG 86/87 (locked when it has a memory operand); XADD 0F C0/C1 and
 *   CMPXCHG 0F B0/B1 (which, like the CPU, writes its destination back
 *   when the comparison fails);
 * - BT BTS BTR BTC 0F A3/AB/B3/BB (register bit offset, which reaches
 *   outside the operand in memory) and 0F BA /4-/7 (immediate);
 * - MOVNTI 0F C3, MOVNTPS/MOVNTPD 0F 2B, MOVNTDQ 66 0F E7 (memory
 *   destination only);
 * - ROL ROR RCL RCR SHL/SAL SHR SAR: C0/C1 (imm8), D0/D1 (1), D2/D3 (CL),
 *   /6 as SHL; SHLD/SHRD 0F A4/A5/AC/AD. The count is masked to 5 bits (6
 *   with 64-bit operands); a masked count of 0 changes no flag, but the
 *   destination is still written back, unchanged (as KVM does: an MMIO
 *   write exit);
 * - IMUL 0F AF, 69, 6B; MUL IMUL DIV IDIV F6/F7 /4-/7 (#DE for a zero
 *   divisor or a quotient that does not fit, after the operand was read);
 * - SETcc 0F 90-9F (a write, nothing read); CMOVcc 0F 40-4F (the source is
 *   read whatever the condition; a 32-bit destination is zero-extended
 *   even when it is false);
 * - CMPXCHG8B 0F C7 /1, CMPXCHG16B with REX.W (16-byte alignment, else
 *   #GP(0)): the operand is written back unchanged when the comparison
 *   fails; CMPXCHG16B's write is two 8-byte ones, not atomic on RAM;
 * - MOVS STOS LODS CMPS SCAS (A4-A7, AA-AF) with REP, REPE, REPNE and the
 *   direction flag; F2 in front of MOVS, STOS and LODS repeats as F3 does;
 * - 16-byte SSE moves: MOVUPS/MOVUPD 0F 10/11, MOVAPS/MOVAPD 0F 28/29,
 *   MOVDQA 66 0F 6F/7F, MOVDQU F3 0F 6F/7F; the MMX move MOVQ 0F 6F/7F;
 * - MOVD/MOVQ (REX.W) between MMX or XMM registers and a general register
 *   or memory: 0F 6E/7E, 66 0F 6E/7E; MOVQ xmm, xmm/m64 F3 0F 7E and
 *   MOVQ xmm/m64, xmm 66 0F D6 (an XMM destination is zeroed above the
 *   operand). Linux 6.1's emulator has neither these nor CMPXCHG16B.
 * Prefixes: 66, 67, segment overrides 26 2E 36 3E 64 65 (only FS and GS
 * bases count in 64-bit mode), REX (64-bit mode; the last one, directly in
 * front of the opcode), LOCK (F0: #UD unless the instruction is lockable and
 * has a memory destination), F2/F3. Addressing: ModRM, SIB, disp8/16/32,
 * RIP-relative in 64-bit mode, the 16-bit forms ([BX+SI] ... [BX]).
 *
 * Flags: CF PF AF ZF SF OF exactly as the manuals define them. Where the
 * manuals leave a flag undefined, the emulator picks as below (CPUs and
 * emulators differ: the AMD host of the differential test sets AF after
 * shifts and computes MUL's SF ZF PF and multi-bit RCL/RCR's OF otherwise;
 * the tests compare only defined flags):
 * - AND/OR/XOR/TEST clear AF; BT* leave OF SF AF PF as they were;
 * - shifts, rotates, SHLD/SHRD by more than 1: OF is what the one-bit rule
 *   gives for the last one-bit step (SHL ROL RCL: top bit of the result
 *   XOR CF; ROR RCR: the two top bits of the result differ; SHR: 0; SAR:
 *   0; SHLD/SHRD: the last step changed the top bit); shifts clear AF;
 *   SHL/SHR by the operand width or more shift zeros (CF 0 past the width);
 *   SHLD/SHRD of words by 17-31 (result undefined too) shift the 48 bits
 *   dst:src:dst (the tests do not compare it); RCL/RCR by a multiple of
 *   9 (bytes) or 17 (words) change nothing, OF included;
 * - MUL/IMUL: SF ZF PF from the (low half of the) result, AF cleared;
 * - DIV/IDIV leave every flag alone.
 * When an instruction completes,
 * RFLAGS.RF is cleared (Intel SDM vol. 3A, 18.3.1.1); TF single-stepping is
 * the caller's (RIP advanced past the instruction: deliver #DB).
 *
 * Exceptions the emulator raises itself (KVMPP_EMUL_EXCEPTION): #GP(0) for
 * an instruction longer than 15 bytes (SDM vol. 2A, 2.3.11; vol. 3A, 6.15
 * "Interrupt 13"; no 16th byte is fetched), #DE for DIV/IDIV, #UD for a
 * misplaced LOCK, #UD
 * for SSE moves when CR0.EM=1 or CR4.OSFXSR=0 (MMX: CR0.EM=1) and #NM when
 * CR0.TS=1, #GP(0)
 * for a misaligned MOVAPS/MOVAPD/MOVDQA or CMPXCHG16B, #UD for MOVNTI or
 * CMPXCHG8B with a register operand.
 * Encodings that are not one of the instructions above (including invalid
 * ones such as 82 in 64-bit mode) are KVMPP_EMUL_UNHANDLEABLE, not #UD.
 *
 * Not modelled: segment limits and access rights, #AC alignment checks,
 * canonical-address checks (the callbacks see every linear address and
 * fault non-canonical ones themselves), VEX/EVEX, atomicity of a page-
 * straddling store (its first page may be written when the second faults).
 */
#ifndef KVMPP_X86_EMULATE_H
#define KVMPP_X86_EMULATE_H

#include <kvmpp/pure.h>

/*
 * Results of the callbacks and of kvmpp_emulate(), besides 0 (done) and
 * -errno (a host error: the caller fails KVM_RUN with it).
 */
#define KVMPP_EMUL_DONE		0
/* A callback queued an exception into the guest (#PF, #GP, #SS): the instruction is dropped. */
#define KVMPP_EMUL_FAULT	1
/* The access is MMIO, to be carried out by userspace: see struct kvmpp_emul_io. */
#define KVMPP_EMUL_IO		2
/* cmpxchg only: memory no longer held the old value; nothing was written. */
#define KVMPP_EMUL_CHANGED	3
/* kvmpp_emul_complete_write() only: the instruction goes on: call kvmpp_emulate(). */
#define KVMPP_EMUL_AGAIN	6
/* kvmpp_emulate() only: queue ctxt->exception into the guest; the instruction is dropped. */
#define KVMPP_EMUL_EXCEPTION	4
/*
 * kvmpp_emulate() only: not an instruction this emulator handles (or one
 * fetched from MMIO). Nothing changed; ctxt->insn holds the bytes fetched,
 * for KVM_EXIT_INTERNAL_ERROR / KVM_INTERNAL_ERROR_EMULATION.
 */
#define KVMPP_EMUL_UNHANDLEABLE	5

/* Segment registers, in their encoding in instructions (SDM vol. 2A, 3.1.1.3 "sreg"). */
enum kvmpp_emul_seg {
	KVMPP_EMUL_ES, KVMPP_EMUL_CS, KVMPP_EMUL_SS, KVMPP_EMUL_DS, KVMPP_EMUL_FS, KVMPP_EMUL_GS,
	KVMPP_EMUL_NR_SEGS
};

/* The largest access a callback is asked for: what one KVM_EXIT_MMIO carries. */
#define KVMPP_EMUL_MAX_ACCESS	8
/* The longest x86 instruction (SDM vol. 2A, 2.3.11 "AVX Instruction Length"). */
#define KVMPP_EMUL_MAX_INSN	15

struct kvmpp_emul_cpu;

/*
 * Guest memory by linear address. Every call lies within one 4 KiB page
 * (the emulator splits accesses at page boundaries and 16-byte operands
 * into 8-byte halves) and @len is 1..8 (fetch: 1..15).
 *
 * Each returns 0; KVMPP_EMUL_FAULT after queueing the exception the CPU
 * would have raised (#PF from the page walk, #GP/#SS for a non-canonical
 * address); KVMPP_EMUL_IO when the address is not backed by a memslot, with
 * the guest-physical address in *@gpa and nothing read or written; or
 * -errno. fetch may not return KVMPP_EMUL_IO (it may return anything else:
 * code in MMIO is unhandleable).
 */
struct kvmpp_emul_ops {
	void *ctx;
	int (*fetch)(void *ctx, u64 linear, void *buf, unsigned int len);
	int (*read)(void *ctx, u64 linear, void *buf, unsigned int len, u64 *gpa);
	int (*write)(void *ctx, u64 linear, const void *buf, unsigned int len, u64 *gpa);
	/*
	 * Optional: the write of a locked read-modify-write (LOCK prefix,
	 * XCHG with memory). Store @new if memory still holds @old, atomically
	 * with respect to other vCPUs: 0 when stored, KVMPP_EMUL_CHANGED when
	 * not, or any result of write. Without it (and for an operand that
	 * straddles a page boundary) locked instructions write with write and
	 * are not atomic, which only matters for RAM.
	 */
	int (*cmpxchg)(void *ctx, u64 linear, const void *old, const void *new,
		       unsigned int len, u64 *gpa);
	/*
	 * Optional: fill cpu->xmm and cpu->mm, called once before an SSE or
	 * MMX instruction first uses them when cpu->fpu_valid is false (the
	 * emulator then sets it). Without it they must always be valid.
	 */
	void (*load_fpu)(void *ctx, struct kvmpp_emul_cpu *cpu);
};

/* The vCPU state the emulator reads and updates. */
struct kvmpp_emul_cpu {
	/* RAX RCX RDX RBX RSP RBP RSI RDI R8-R15: the order of ModRM register numbers. */
	u64 gprs[16];
	u64 rip;
	u64 rflags;
	/* Indexed by enum kvmpp_emul_seg. In 64-bit mode only FS and GS are used. */
	u64 seg_base[KVMPP_EMUL_NR_SEGS];
	/* CR0.EM, CR0.TS and CR4.OSFXSR decide whether SSE moves may run. */
	u64 cr0, cr4;
	/*
	 * 2, 4 or 8: the default operand and address size of the code segment
	 * (CS.D, CS.L). 8 is 64-bit mode; compatibility mode is 2 or 4, as are
	 * real and virtual-8086 mode (with seg_base = selector * 16).
	 */
	int code_size;
	/* XMM0-15 as little-endian bytes: the caller loads the guest's and stores them back. */
	u8 xmm[16][16];
	/*
	 * MM0-7 (the low 64 bits of the x87 registers). The emulator sets bit n
	 * of @mm_written when an instruction wrote MMn: writing an MMX register
	 * also sets bits 79:64 of the x87 register and empties the x87 stack,
	 * which the caller does by executing the MMX move itself.
	 */
	u64 mm[8];
	u8 mm_written;
	bool fpu_valid;		/* xmm and mm hold the guest's (see ops->load_fpu) */
};

/*
 * One access for userspace. A read: the caller exits with KVM_EXIT_MMIO
 * (gpa, len, is_write=0), and before calling kvmpp_emulate() again stores
 * the len bytes userspace returned in data. A write: data holds the bytes;
 * the caller exits with them and calls kvmpp_emulate() again at the next
 * KVM_RUN, with nothing to store.
 */
struct kvmpp_emul_io {
	u64 gpa;		/* as the callback reported it */
	u64 linear;
	unsigned int len;	/* 1..8, within one 4 KiB page */
	bool write;
	u8 data[KVMPP_EMUL_MAX_ACCESS];
};

/*
 * The pieces of memory one instruction (or REP iteration) may read or
 * write: a 16-byte operand straddling a page is 3, CMPS's two operands 2 each.
 */
#define KVMPP_EMUL_MAX_PIECES	6

struct kvmpp_emul_piece {
	u64 gpa;
	u64 linear;
	u8 len;
	u8 data[KVMPP_EMUL_MAX_ACCESS];
};

/* A decoded instruction (private to emulate.c). */
struct kvmpp_emul_insn {
	u64 ea;			/* the memory operand's effective address */
	u64 imm;
	u16 opcode;		/* 0x0fxx for two-byte opcodes */
	u16 form;		/* where the operands are */
	u8 exec, sub, flags;	/* what the instruction does */
	u8 len;
	u8 op_size, src_size, addr_size;
	u8 rex, rep;		/* the REX byte (0: none), 0xf2/0xf3 (0: none) */
	u8 reg, rm;		/* register numbers, REX.R and REX.B included */
	u8 seg;			/* the memory operand's segment */
	bool mem;		/* ModRM r/m (or moffs) is memory */
	bool rip_relative;
	bool lock;		/* LOCK, or XCHG with memory */
	bool aligned;		/* SSE: the memory operand must be 16-byte aligned */
	bool mmx;		/* the SSE-move form on MMX registers (8 bytes) */
};

/*
 * Per-vCPU emulation context: zero it (or kvmpp_emul_reset()) once; it
 * keeps an instruction that waits on userspace between KVM_RUNs. The public
 * part is written by kvmpp_emulate(), the rest is the emulator's own.
 */
struct kvmpp_emul_ctxt {
	struct kvmpp_emul_io io;	/* after KVMPP_EMUL_IO */
	struct {			/* after KVMPP_EMUL_EXCEPTION */
		u8 vector;
		bool has_error_code;
		u32 error_code;
	} exception;
	u8 insn[KVMPP_EMUL_MAX_INSN];	/* the bytes fetched (of the last instruction decoded) */
	unsigned int insn_len;

	/* Private. */
	int phase;
	u64 rip;			/* where the pending instruction is */
	unsigned int iterations;	/* REP iterations since the decode */
	struct kvmpp_emul_piece reads[KVMPP_EMUL_MAX_PIECES];	/* this iteration's, in order */
	unsigned int nr_reads;
	struct kvmpp_emul_piece writes[KVMPP_EMUL_MAX_PIECES];	/* MMIO writes left to report */
	unsigned int nr_writes, next_write;
	bool complete;			/* the instruction is over once the writes are reported */
	struct kvmpp_emul_insn in;	/* the pending instruction */
};

/*
 * Emulate the instruction at cpu->rip, or go on with the one pending in
 * @ctxt. Returns:
 * - KVMPP_EMUL_DONE: the guest continues at cpu->rip. Usually the
 *   instruction completed and RIP moved past it; it stays on a REP string
 *   instruction with iterations left (after KVMPP_EMUL_REP_BATCH of them,
 *   so that the guest can take interrupts; it will exit again) and on a
 *   locked instruction whose cmpxchg returned KVMPP_EMUL_CHANGED (the
 *   guest executes it again).
 * - KVMPP_EMUL_IO: ctxt->io is an MMIO access for userspace. Exit to
 *   userspace with it; on the next KVM_RUN, call kvmpp_emulate() again
 *   (after storing the data of a read), with the same @ops and @cpu.
 *   A read stops the instruction before anything is committed: the call
 *   after completion re-executes it with the completed reads cached in
 *   @ctxt (the instruction is not fetched again). A write is reported
 *   after the instruction (or REP iteration) committed: registers, flags
 *   and RIP are already updated when userspace sees it. One access per
 *   exit, in program order; a 16-byte operand or a page-straddling one is
 *   several. REP string instructions exit once per MMIO element.
 * - KVMPP_EMUL_FAULT, or a -errno from a callback (-EINVAL for a bad
 *   code_size, -EIO for a callback result the contract does not allow):
 *   the instruction (or the current REP iteration; earlier ones stay
 *   committed) is dropped.
 * - KVMPP_EMUL_EXCEPTION: the same, and ctxt->exception is to be queued.
 * - KVMPP_EMUL_UNHANDLEABLE: nothing changed; see ctxt->insn.
 * Anything but KVMPP_EMUL_IO leaves @ctxt idle. A pending instruction is
 * dropped when cpu->rip no longer points at it; a caller that changes the
 * vCPU's registers otherwise (KVM_SET_REGS) calls kvmpp_emul_reset(), as
 * the effective address of a ModRM operand is computed when the
 * instruction is decoded.
 */
int kvmpp_emulate(const struct kvmpp_emul_ops *ops, struct kvmpp_emul_cpu *cpu,
		  struct kvmpp_emul_ctxt *ctxt);

/*
 * After a KVMPP_EMUL_IO write, instead of kvmpp_emulate() when the caller
 * would rather not gather the vCPU state (@rip is the vCPU's RIP now):
 * KVMPP_EMUL_IO with the next write of the instruction, KVMPP_EMUL_DONE when
 * it is over, or KVMPP_EMUL_AGAIN when REP iterations are left (then call
 * kvmpp_emulate() as usual). Not after a read: KVMPP_EMUL_AGAIN.
 */
int kvmpp_emul_complete_write(struct kvmpp_emul_ctxt *ctxt, u64 rip);

/* Whether the pending instruction is a string instruction (MOVS, STOS, ...). */
bool kvmpp_emul_is_string(const struct kvmpp_emul_ctxt *ctxt);

/* REP iterations emulated before the guest gets to run again (RIP stays on the instruction). */
#define KVMPP_EMUL_REP_BATCH	1024

/* Drop any pending instruction. */
void kvmpp_emul_reset(struct kvmpp_emul_ctxt *ctxt);

/* Whether an instruction waits for kvmpp_emulate() to be called again. */
bool kvmpp_emul_pending(const struct kvmpp_emul_ctxt *ctxt);

#endif /* KVMPP_X86_EMULATE_H */
