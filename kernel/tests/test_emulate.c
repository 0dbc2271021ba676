// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of kernel/x86/emulate.c: instructions placed in a fake guest
 * whose linear address space has RAM, an MMIO range (served by a fake
 * device through the KVMPP_EMUL_IO round trip, as userspace would) and
 * holes that fault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "x86/emulate.h"

/*
 * Architectural values, written out again from the manuals rather than
 * taken from emulate.c, so that a wrong bit there shows: RFLAGS (SDM vol. 1,
 * 3.4.3), CR0/CR4 (vol. 3A, 2.5), vectors (vol. 3A, table 6-1).
 */
#define CF		0x001ull
#define PF		0x004ull
#define AF		0x010ull
#define ZF		0x040ull
#define SF		0x080ull
#define DF		0x400ull
#define OF		0x800ull
#define RF		0x10000ull
#define ARITH		(CF | PF | AF | ZF | SF | OF)
#define FIXED1		0x2ull		/* RFLAGS bit 1 is always set */
#define CR0_PE		0x1ull
#define CR0_EM		0x4ull
#define CR0_TS		0x8ull
#define CR4_OSFXSR	0x200ull
#define UD		6
#define NM		7
#define GP		13

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
enum { ES, CS, SS, DS, FS, GS };

/* ---- the fake guest ---- */

#define RAM_BASE	0x10000ull	/* linear 0x10000-0x1ffff: RAM */
#define RAM_SIZE	0x10000ull
#define MMIO_BASE	0x20000ull	/* linear 0x20000-0x2ffff: MMIO, right after the RAM */
#define MMIO_SIZE	0x10000ull
#define MMIO_GPA	0xfed00000ull	/* where the MMIO range is guest-physically */
#define CODE		(RAM_BASE + 0x1000)
#define DATA		(RAM_BASE + 0x4000)
#define HOLE		0x80000ull	/* nothing there: faults */
#define HIGH_ALIAS	0x100000000ull	/* fetches see the RAM 4 GiB higher too */
#define CODE16		(CODE - RAM_BASE)	/* IP of CODE in 16-bit code (CS base RAM_BASE) */
#define MAX_CALLS	64
#define MAX_EXITS	64

static u8 ram[RAM_SIZE];
static u8 mmio[MMIO_SIZE];		/* the device behind the MMIO range */

struct call {
	char kind;			/* f(etch), r(ead), w(rite), x (cmpxchg) */
	u64 linear;
	unsigned int len;
};

static struct {
	struct call calls[MAX_CALLS];
	int nr_calls;
	int faults;
	u64 fault_linear;
	int error;			/* every data callback fails with this when nonzero */
	int cmpxchg_changed;		/* cmpxchg answers KVMPP_EMUL_CHANGED this many times */
	u64 no_fetch_page;		/* fetches from this page fault */
} fake;

static struct kvmpp_emul_cpu cpu;
static struct kvmpp_emul_ctxt ctxt;

static void log_call(char kind, u64 linear, unsigned int len)
{
	if (fake.nr_calls < MAX_CALLS)
		fake.calls[fake.nr_calls++] = (struct call){ kind, linear, len };
	/* The contract: within one 4 KiB page; data accesses 1..8 bytes. */
	assert_true(len >= 1);
	assert_true(len <= (kind == 'f' ? 15u : 8u));
	assert_true((linear & 0xfff) + len <= 0x1000);
}

static bool in_ram(u64 linear, unsigned int len)
{
	return linear >= RAM_BASE && linear + len <= RAM_BASE + RAM_SIZE;
}

static bool in_mmio(u64 linear, unsigned int len)
{
	return linear >= MMIO_BASE && linear + len <= MMIO_BASE + MMIO_SIZE;
}

static int fault(u64 linear)
{
	fake.faults++;
	fake.fault_linear = linear;
	return KVMPP_EMUL_FAULT;
}

static int fake_fetch(void *ctx, u64 linear, void *buf, unsigned int len)
{
	(void)ctx;
	log_call('f', linear, len);
	if (linear >= HIGH_ALIAS)
		linear -= HIGH_ALIAS;
	if (fake.no_fetch_page && (linear & ~0xfffull) == fake.no_fetch_page)
		return fault(linear);
	if (in_mmio(linear, len))
		return KVMPP_EMUL_IO;
	if (!in_ram(linear, len))
		return fault(linear);
	memcpy(buf, ram + (linear - RAM_BASE), len);
	return 0;
}

static int fake_read(void *ctx, u64 linear, void *buf, unsigned int len, u64 *gpa)
{
	(void)ctx;
	log_call('r', linear, len);
	if (fake.error)
		return fake.error;
	if (in_mmio(linear, len)) {
		*gpa = MMIO_GPA + linear - MMIO_BASE;
		return KVMPP_EMUL_IO;
	}
	if (!in_ram(linear, len))
		return fault(linear);
	memcpy(buf, ram + (linear - RAM_BASE), len);
	return 0;
}

static int fake_write(void *ctx, u64 linear, const void *buf, unsigned int len, u64 *gpa)
{
	(void)ctx;
	log_call('w', linear, len);
	if (fake.error)
		return fake.error;
	if (in_mmio(linear, len)) {
		*gpa = MMIO_GPA + linear - MMIO_BASE;
		return KVMPP_EMUL_IO;
	}
	if (!in_ram(linear, len))
		return fault(linear);
	memcpy(ram + (linear - RAM_BASE), buf, len);
	return 0;
}

static int fake_cmpxchg(void *ctx, u64 linear, const void *old, const void *new,
			unsigned int len, u64 *gpa)
{
	(void)ctx;
	log_call('x', linear, len);
	if (in_mmio(linear, len)) {
		*gpa = MMIO_GPA + linear - MMIO_BASE;
		return KVMPP_EMUL_IO;
	}
	if (!in_ram(linear, len))
		return fault(linear);
	if (fake.cmpxchg_changed) {
		fake.cmpxchg_changed--;
		return KVMPP_EMUL_CHANGED;
	}
	if (memcmp(ram + (linear - RAM_BASE), old, len))
		return KVMPP_EMUL_CHANGED;
	memcpy(ram + (linear - RAM_BASE), new, len);
	return 0;
}

static const struct kvmpp_emul_ops ops = {
	.fetch = fake_fetch, .read = fake_read, .write = fake_write,
};

static const struct kvmpp_emul_ops locked_ops = {
	.fetch = fake_fetch, .read = fake_read, .write = fake_write, .cmpxchg = fake_cmpxchg,
};

/* The exits of one instruction, as userspace saw them. */
static struct {
	struct kvmpp_emul_io io[MAX_EXITS];
	u64 rip[MAX_EXITS];		/* RIP when userspace saw the exit */
	int n;
} exits;

/*
 * Emulate until the instruction is over, serving each KVMPP_EMUL_IO from the
 * fake device as userspace would: reads get the device's bytes, writes
 * store into it.
 */
static int run_with(const struct kvmpp_emul_ops *o)
{
	int r;

	exits.n = 0;
	for (;;) {
		r = kvmpp_emulate(o, &cpu, &ctxt);
		if (r != KVMPP_EMUL_IO) {
			assert_false(kvmpp_emul_pending(&ctxt));
			return r;
		}
		assert_true(kvmpp_emul_pending(&ctxt));
		assert_true(exits.n < MAX_EXITS);
		assert_true(in_mmio(ctxt.io.linear, ctxt.io.len));
		assert_int_equal(ctxt.io.gpa, MMIO_GPA + ctxt.io.linear - MMIO_BASE);
		exits.rip[exits.n] = cpu.rip;
		if (ctxt.io.write)
			memcpy(mmio + (ctxt.io.linear - MMIO_BASE), ctxt.io.data, ctxt.io.len);
		else
			memcpy(ctxt.io.data, mmio + (ctxt.io.linear - MMIO_BASE), ctxt.io.len);
		exits.io[exits.n++] = ctxt.io;
	}
}

static int run(void)
{
	return run_with(&ops);
}

static void expect_exit(int i, bool write, u64 linear, unsigned int len)
{
	assert_true(i < exits.n);
	assert_int_equal(exits.io[i].write, write);
	assert_int_equal(exits.io[i].linear, linear);
	assert_int_equal(exits.io[i].len, len);
}

static u64 exit_value(int i)
{
	u64 v = 0;

	memcpy(&v, exits.io[i].data, exits.io[i].len);
	return v;
}

static void put_code_at(u64 at, const u8 *bytes, size_t n)
{
	assert_true(in_ram(at, n));
	memcpy(ram + (at - RAM_BASE), bytes, n);
	cpu.rip = cpu.code_size == 8 ? at : at - cpu.seg_base[CS];
}

#define CODE_AT(at, ...)						\
	do {								\
		static const u8 bytes_[] = { __VA_ARGS__ };		\
		put_code_at(at, bytes_, sizeof(bytes_));		\
	} while (0)
/* The instruction at CODE in 64-bit mode; its length for the RIP checks. */
#define INSN(...)	CODE_AT(CODE, __VA_ARGS__)
#define LEN(...)	sizeof((const u8[]){ __VA_ARGS__ })

static u64 rd_mmio(u64 linear, unsigned int len)
{
	u64 v = 0;

	memcpy(&v, mmio + (linear - MMIO_BASE), len);
	return v;
}

static void wr_mmio(u64 linear, u64 v, unsigned int len)
{
	memcpy(mmio + (linear - MMIO_BASE), &v, len);
}

static u64 rd_ram(u64 linear, unsigned int len)
{
	u64 v = 0;

	memcpy(&v, ram + (linear - RAM_BASE), len);
	return v;
}

static void wr_ram(u64 linear, u64 v, unsigned int len)
{
	memcpy(ram + (linear - RAM_BASE), &v, len);
}

static int count_calls(char kind)
{
	int i, n = 0;

	for (i = 0; i < fake.nr_calls; i++)
		n += fake.calls[i].kind == kind;
	return n;
}

/* 16-bit code runs with CS based at RAM_BASE, other code with CS based at 0. */
static void set_mode(int code_size)
{
	cpu.code_size = code_size;
	cpu.seg_base[CS] = code_size == 2 ? RAM_BASE : 0;
}

static int setup(void **state)
{
	int i;

	(void)state;
	memset(ram, 0xcc, sizeof(ram));
	for (i = 0; i < (int)sizeof(mmio); i++)
		mmio[i] = (u8)(i * 7 + 1);
	memset(&fake, 0, sizeof(fake));
	memset(&cpu, 0, sizeof(cpu));
	memset(&ctxt, 0, sizeof(ctxt));
	cpu.code_size = 8;
	cpu.rflags = FIXED1;
	cpu.cr0 = CR0_PE;
	cpu.cr4 = CR4_OSFXSR;
	for (i = 0; i < 16; i++)
		cpu.gprs[i] = 0x1111111111111111ull * (u64)(i + 1);
	exits.n = 0;
	return 0;
}

#define T(name) cmocka_unit_test_setup(name, setup)

/* ---- MOV and the decoder ---- */

static void mov_store_to_mmio_each_size(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x10;
	cpu.gprs[RAX] = 0x8877665544332211ull;

	INSN(0x88, 0x03);			/* mov [rbx], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE + 0x10, 1);
	assert_int_equal(exit_value(0), 0x11);
	assert_int_equal(exits.rip[0], CODE + 2);	/* committed before the exit */

	INSN(0x66, 0x89, 0x03);			/* mov [rbx], ax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 2);
	assert_int_equal(exit_value(0), 0x2211);
	assert_int_equal(cpu.rip, CODE + 3);

	INSN(0x89, 0x03);			/* mov [rbx], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 4);
	assert_int_equal(exit_value(0), 0x44332211);

	INSN(0x48, 0x89, 0x03);			/* mov [rbx], rax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 8);
	assert_int_equal(exit_value(0), 0x8877665544332211ull);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x10, 8), 0x8877665544332211ull);
	assert_int_equal(cpu.rip, CODE + 3);
}

static void mov_load_from_mmio_each_size(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x20;
	wr_mmio(MMIO_BASE + 0x20, 0xf1f2f3f4f5f6f7f8ull, 8);

	cpu.gprs[RCX] = ~0ull;
	INSN(0x8a, 0x0b);			/* mov cl, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, false, MMIO_BASE + 0x20, 1);
	assert_int_equal(exits.rip[0], CODE);	/* a read stops before the commit */
	assert_int_equal(cpu.gprs[RCX], 0xffffffffffffff00ull | 0xf8);
	assert_int_equal(cpu.rip, CODE + 2);

	cpu.gprs[RCX] = ~0ull;
	INSN(0x66, 0x8b, 0x0b);			/* mov cx, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0xffffffffffff0000ull | 0xf7f8);

	cpu.gprs[RCX] = ~0ull;
	INSN(0x8b, 0x0b);			/* mov ecx, [rbx]: zero-extends */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0xf5f6f7f8ull);

	INSN(0x4c, 0x8b, 0x0b);			/* mov r9, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[R9], 0xf1f2f3f4f5f6f7f8ull);
	expect_exit(0, false, MMIO_BASE + 0x20, 8);
	assert_int_equal(cpu.rip, CODE + 3);
}

static void byte_registers_with_and_without_rex(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.gprs[RAX] = 0x1234;
	cpu.gprs[RSP] = 0x5678;

	INSN(0x88, 0x23);			/* mov [rbx], ah */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exit_value(0), 0x12);

	INSN(0x40, 0x88, 0x23);			/* mov [rbx], spl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exit_value(0), 0x78);

	wr_mmio(MMIO_BASE, 0xab, 1);
	INSN(0x8a, 0x3b);			/* mov bh, [rbx] */
	cpu.gprs[RBX] = MMIO_BASE;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RBX], MMIO_BASE | 0xab00);

	cpu.gprs[RBX] = MMIO_BASE;
	INSN(0x40, 0x8a, 0x3b);			/* mov dil, [rbx] */
	cpu.gprs[RDI] = 0xffff;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RDI], 0xffab);
	assert_int_equal(cpu.gprs[RBX], MMIO_BASE);

	INSN(0x44, 0x8a, 0x33);			/* mov r14b, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[R14] & 0xff, 0xab);
}

static void mov_immediate_to_memory(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;

	INSN(0xc6, 0x03, 0x9a);			/* mov byte [rbx], 0x9a */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 1);
	assert_int_equal(exit_value(0), 0x9a);
	assert_int_equal(cpu.rip, CODE + 3);

	INSN(0x66, 0xc7, 0x03, 0x34, 0x12);	/* mov word [rbx], 0x1234 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 2);
	assert_int_equal(exit_value(0), 0x1234);
	assert_int_equal(cpu.rip, CODE + 5);

	INSN(0xc7, 0x03, 0x78, 0x56, 0x34, 0x12);	/* mov dword [rbx], 0x12345678 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exit_value(0), 0x12345678);

	/* mov qword [rbx], -2: imm32 sign-extended */
	INSN(0x48, 0xc7, 0x03, 0xfe, 0xff, 0xff, 0xff);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 8);
	assert_int_equal(exit_value(0), 0xfffffffffffffffeull);
	assert_int_equal(cpu.rip, CODE + 7);
}

static void mov_register_immediate(void **state)
{
	(void)state;
	INSN(0xb4, 0x55);			/* mov ah, 0x55 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x1111111111115511ull);

	INSN(0x41, 0xb8, 0x01, 0x00, 0x00, 0x80);	/* mov r8d, 0x80000001 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[R8], 0x80000001ull);
	assert_int_equal(cpu.rip, CODE + 6);

	/* mov r15, imm64 */
	INSN(0x49, 0xbf, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[R15], 0x1122334455667788ull);
	assert_int_equal(cpu.rip, CODE + 10);

	INSN(0x66, 0xb9, 0xcd, 0xab);		/* mov cx, 0xabcd */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x222222222222abcdull);
	assert_int_equal(exits.n, 0);
	assert_int_equal(count_calls('r') + count_calls('w'), 0);
}

static void mov_moffs(void **state)
{
	(void)state;
	wr_mmio(MMIO_BASE + 0x40, 0x0123456789abcdefull, 8);

	/* mov eax, [moffs64] */
	INSN(0xa1, 0x40, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x40, 4);
	assert_int_equal(cpu.gprs[RAX], 0x89abcdefull);
	assert_int_equal(cpu.rip, CODE + 9);

	/* mov rax, [moffs64] */
	INSN(0x48, 0xa1, 0x40, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x0123456789abcdefull);
	assert_int_equal(cpu.rip, CODE + 10);

	/* mov [moffs32], al with 67: a 4-byte offset in 64-bit mode */
	INSN(0x67, 0xa2, 0x48, 0x00, 0x02, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x48, 1);
	assert_int_equal(exit_value(0), 0xef);
	assert_int_equal(cpu.rip, CODE + 6);

	/* mov gs:[moffs64], ax: the GS base counts in 64-bit mode */
	cpu.seg_base[GS] = MMIO_BASE;
	INSN(0x65, 0x66, 0xa3, 0x50, 0, 0, 0, 0, 0, 0, 0);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x50, 2);
	assert_int_equal(exit_value(0), 0xcdef);
}

static void moffs_in_16_and_32_bit_code(void **state)
{
	(void)state;
	set_mode(2);
	cpu.seg_base[DS] = MMIO_BASE;
	wr_mmio(MMIO_BASE + 0x1234, 0xbeef, 2);
	CODE_AT(CODE, 0xa1, 0x34, 0x12);	/* mov ax, [0x1234] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x1234, 2);
	assert_int_equal(cpu.gprs[RAX], 0x111111111111beefull);
	assert_int_equal(cpu.rip, CODE16 + 3);

	set_mode(4);
	cpu.seg_base[DS] = 0;
	cpu.seg_base[ES] = MMIO_BASE - 0x100;
	CODE_AT(CODE, 0x26, 0xa3, 0x00, 0x01, 0x00, 0x00);	/* mov es:[0x100], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);
	assert_int_equal(exit_value(0), 0x1111beef);
	assert_int_equal(cpu.rip, CODE + 6);
}

static void movzx_movsx(void **state)
{
	(void)state;
	cpu.gprs[RSI] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x8180, 2);

	INSN(0x0f, 0xb6, 0x06);			/* movzx eax, byte [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 1);
	assert_int_equal(cpu.gprs[RAX], 0x80);

	INSN(0x0f, 0xb7, 0x06);			/* movzx eax, word [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 2);
	assert_int_equal(cpu.gprs[RAX], 0x8180);

	INSN(0x48, 0x0f, 0xbe, 0x06);		/* movsx rax, byte [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xffffffffffffff80ull);

	INSN(0x0f, 0xbf, 0x06);			/* movsx eax, word [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xffff8180ull);

	cpu.gprs[RAX] = ~0ull;
	INSN(0x66, 0x0f, 0xbe, 0x06);		/* movsx ax, byte [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xffffffffffffff80ull);

	cpu.gprs[RAX] = 0;
	INSN(0x66, 0x0f, 0xb6, 0x06);		/* movzx ax, byte [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x80);
	assert_int_equal(cpu.rip, CODE + 4);
}

static void movsxd(void **state)
{
	(void)state;
	cpu.gprs[RSI] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x80000001ull, 4);

	INSN(0x48, 0x63, 0x06);			/* movsxd rax, dword [rsi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 4);
	assert_int_equal(cpu.gprs[RAX], 0xffffffff80000001ull);

	INSN(0x63, 0x06);			/* without REX.W: a 32-bit move */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 4);
	assert_int_equal(cpu.gprs[RAX], 0x80000001ull);

	cpu.gprs[RAX] = ~0ull;
	INSN(0x66, 0x63, 0x06);			/* with 66: a 16-bit move, 2 bytes read */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 2);
	assert_int_equal(cpu.gprs[RAX], 0xffffffffffff0001ull);

	set_mode(4);				/* 63 is ARPL outside 64-bit mode */
	INSN(0x63, 0x06);
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

static void sib_and_displacements(void **state)
{
	(void)state;
	cpu.gprs[RAX] = 0x55;
	cpu.gprs[RBX] = MMIO_BASE + 0x100;
	cpu.gprs[RCX] = 0x10;

	INSN(0x88, 0x44, 0x8b, 0xf0);		/* mov [rbx+rcx*4-0x10], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x130, 1);

	INSN(0x88, 0x84, 0x0b, 0x00, 0x01, 0x00, 0x00);	/* mov [rbx+rcx+0x100], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x210, 1);
	assert_int_equal(cpu.rip, CODE + 7);

	INSN(0x88, 0x04, 0x25, 0x08, 0x00, 0x02, 0x00);	/* mov [0x20008], al: no base, no index */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 8, 1);

	INSN(0x88, 0x04, 0xcd, 0x00, 0x00, 0x02, 0x00);	/* mov [rcx*8+0x20000], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x80, 1);

	INSN(0x88, 0x04, 0x23);			/* mov [rbx], al: SIB without an index */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x100, 1);

	cpu.gprs[R12] = 0x3;
	INSN(0x42, 0x88, 0x04, 0x23);		/* mov [rbx+r12], al: REX.X makes index 4 r12 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x103, 1);

	cpu.gprs[R13] = MMIO_BASE + 0x300;
	INSN(0x41, 0x88, 0x45, 0x01);		/* mov [r13+1], al: r13 needs a displacement */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x301, 1);

	/* mov [0x20004+rcx], al with REX.B: SIB base 5 and mod 0 still means no base */
	INSN(0x41, 0x88, 0x04, 0x0d, 0x04, 0x00, 0x02, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x14, 1);
	assert_int_equal(cpu.rip, CODE + 8);

	cpu.gprs[RSP] = MMIO_BASE + 0x400;
	INSN(0x88, 0x44, 0x24, 0x02);		/* mov [rsp+2], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x402, 1);
}

static void rip_relative(void **state)
{
	u64 disp = MMIO_BASE + 0x20 - (CODE + 10);

	(void)state;
	/* mov dword [rip+disp], imm32: relative to the end, after the immediate */
	CODE_AT(CODE, 0xc7, 0x05, 0, 0, 0, 0, 0x01, 0x02, 0x03, 0x04);
	memcpy(ram + (CODE - RAM_BASE) + 2, &disp, 4);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x20, 4);
	assert_int_equal(exit_value(0), 0x04030201);

	/* REX.B does not turn RIP-relative into [r13] */
	disp = MMIO_BASE + 0x30 - (CODE + 7);
	CODE_AT(CODE, 0x49, 0x8b, 0x05, 0, 0, 0, 0);	/* mov rax, [rip+disp] */
	memcpy(ram + (CODE - RAM_BASE) + 3, &disp, 4);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x30, 8);
	assert_int_equal(cpu.rip, CODE + 7);

	/* With 67, RIP-relative is truncated to 32 bits (the code is also at HIGH_ALIAS + CODE). */
	disp = MMIO_BASE + 0x38 - (CODE + 7);
	CODE_AT(CODE, 0x67, 0x8b, 0x05, 0, 0, 0, 0);
	memcpy(ram + (CODE - RAM_BASE) + 3, &disp, 4);
	cpu.rip = HIGH_ALIAS + CODE;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x38, 4);

	/* In 32-bit code, mod 0 rm 5 is an absolute disp32. */
	set_mode(4);
	CODE_AT(CODE, 0x8b, 0x05, 0x40, 0x00, 0x02, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x40, 4);
}

static void addressing_16_bit(void **state)
{
	static const struct {
		u8 modrm;
		u64 ea;
		int seg;
		unsigned int disp_len;
	} forms[] = {
		{ 0x00, 0x0110 + 0x0006, DS, 0 },	/* [bx+si] */
		{ 0x01, 0x0110 + 0x0007, DS, 0 },	/* [bx+di] */
		{ 0x02, 0x0105 + 0x0006, SS, 0 },	/* [bp+si] */
		{ 0x03, 0x0105 + 0x0007, SS, 0 },	/* [bp+di] */
		{ 0x04, 0x0006, DS, 0 },		/* [si] */
		{ 0x05, 0x0007, DS, 0 },		/* [di] */
		{ 0x06, 0x0200, DS, 2 },		/* [disp16] */
		{ 0x07, 0x0110, DS, 0 },		/* [bx] */
		{ 0x46, 0x0105 - 2, SS, 1 },		/* [bp-2] */
		{ 0x87, 0x0110 + 0x0200, DS, 2 },	/* [bx+0x200] */
	};
	unsigned int i;

	(void)state;
	set_mode(2);
	cpu.seg_base[DS] = MMIO_BASE;
	cpu.seg_base[SS] = MMIO_BASE + 0x1000;
	for (i = 0; i < ARRAY_SIZE(forms); i++) {
		u8 code[5] = { 0x88, forms[i].modrm };	/* mov [...], al */
		unsigned int n = 2;

		if (forms[i].disp_len == 1) {
			code[n++] = 0xfe;
		} else if (forms[i].disp_len == 2) {
			code[n++] = 0x00;
			code[n++] = 0x02;
		}
		cpu.gprs[RBX] = 0xffff0110;	/* upper bits are not part of 16-bit addresses */
		cpu.gprs[RBP] = 0x105;
		cpu.gprs[RSI] = 0x6;
		cpu.gprs[RDI] = 0x7;
		put_code_at(CODE, code, n);
		assert_int_equal(run(), KVMPP_EMUL_DONE);
		expect_exit(0, true, cpu.seg_base[forms[i].seg] + forms[i].ea, 1);
		assert_int_equal(cpu.rip, CODE16 + n);
	}

	/* Effective addresses wrap at 64 KiB. */
	cpu.gprs[RBX] = 0xfff0;
	cpu.gprs[RSI] = 0x20;
	CODE_AT(CODE, 0x88, 0x00);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 1);

	/* 67 in 16-bit code: 32-bit addressing (SIB) */
	cpu.gprs[RAX] = 0x100;
	CODE_AT(CODE, 0x67, 0x88, 0x04, 0x40);	/* mov [eax+eax*2], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x300, 1);
	assert_int_equal(cpu.rip, CODE16 + 4);
}

static void operand_size_in_each_mode(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.gprs[RAX] = 0x8877665544332211ull;

	set_mode(2);
	cpu.seg_base[DS] = MMIO_BASE;		/* BX is 0 */
	CODE_AT(CODE, 0x89, 0x07);		/* 16-bit code: mov [bx], ax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 2);
	CODE_AT(CODE, 0x66, 0x89, 0x07);	/* mov [bx], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);

	set_mode(4);
	cpu.seg_base[DS] = 0;
	CODE_AT(CODE, 0x89, 0x03);		/* 32-bit code: mov [ebx], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);
	CODE_AT(CODE, 0x66, 0x89, 0x03);	/* mov [ebx], ax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 2);
	CODE_AT(CODE, 0x48, 0x89, 0x03);	/* 48 is DEC EAX here */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);

	set_mode(8);
	CODE_AT(CODE, 0x66, 0x48, 0x89, 0x03);	/* REX.W wins over 66 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 8);
	CODE_AT(CODE, 0x48, 0x66, 0x89, 0x03);	/* a REX before another prefix is ignored */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 2);
	CODE_AT(CODE, 0x48, 0x40, 0x89, 0x03);	/* of two REX, the last counts */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);
}

static void segments_in_64_and_32_bit_mode(void **state)
{
	(void)state;
	cpu.gprs[RBX] = 0x40;
	cpu.gprs[RBP] = 0x80;
	cpu.seg_base[ES] = cpu.seg_base[CS] = cpu.seg_base[SS] = cpu.seg_base[DS] = 0x1000;
	cpu.seg_base[FS] = MMIO_BASE;
	cpu.seg_base[GS] = MMIO_BASE + 0x100;

	INSN(0x64, 0x88, 0x03);			/* mov fs:[rbx], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x40, 1);
	INSN(0x65, 0x88, 0x03);			/* mov gs:[rbx], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x140, 1);
	INSN(0x65, 0x26, 0x88, 0x03);		/* the last override counts: ES, base ignored */
	cpu.gprs[RBX] = MMIO_BASE;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 1);

	set_mode(4);
	cpu.seg_base[DS] = MMIO_BASE;
	cpu.seg_base[SS] = MMIO_BASE + 0x800;
	cpu.gprs[RBX] = 0x40;
	CODE_AT(CODE, 0x88, 0x03);		/* mov [ebx], al: DS */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x40, 1);
	CODE_AT(CODE, 0x88, 0x45, 0x00);	/* mov [ebp], al: SS */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x880, 1);
	cpu.gprs[RSP] = 0x10;
	CODE_AT(CODE, 0x88, 0x04, 0x24);	/* mov [esp], al: SS */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x810, 1);
	CODE_AT(CODE, 0x3e, 0x88, 0x45, 0x00);	/* mov ds:[ebp], al */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x80, 1);

	/* Linear addresses wrap at 4 GiB outside 64-bit mode. */
	cpu.seg_base[DS] = 0xffff0000;
	cpu.gprs[RBX] = MMIO_BASE + 0x10000 + 0x44;
	CODE_AT(CODE, 0x88, 0x03);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x44, 1);
}

/* ---- ALU and flags ---- */

struct alu_case {
	u8 opcode;		/* the r/m,reg form: 00 ADD ... 38 CMP (+1 for full size) */
	unsigned int size;
	u64 a, b, cf_in;
	u64 res, flags;
};

/* Results and flags as the CPU computes them (checked on hardware). */
static const struct alu_case alu_cases[] = {
	{ 0x00, 1, 0x7f, 0x01, 0, 0x80, OF | SF | AF },
	{ 0x00, 1, 0xff, 0x01, 0, 0x00, CF | ZF | AF | PF },
	{ 0x00, 1, 0x80, 0x80, 0, 0x00, CF | OF | ZF | PF },
	{ 0x00, 1, 0x01, 0x02, 0, 0x03, PF },
	{ 0x10, 1, 0xff, 0x00, 1, 0x00, CF | ZF | AF | PF },
	{ 0x10, 1, 0x7f, 0x00, 1, 0x80, OF | SF | AF },
	{ 0x10, 1, 0x7f, 0x00, 0, 0x7f, 0 },
	{ 0x28, 1, 0x00, 0x01, 0, 0xff, CF | SF | AF | PF },
	{ 0x28, 1, 0x80, 0x01, 0, 0x7f, OF | AF },
	{ 0x28, 1, 0x05, 0x05, 0, 0x00, ZF | PF },
	{ 0x18, 1, 0x00, 0x00, 1, 0xff, CF | SF | AF | PF },
	{ 0x18, 1, 0x80, 0x7f, 1, 0x00, OF | ZF | AF | PF },
	{ 0x20, 1, 0xf0, 0x0f, 1, 0x00, ZF | PF },
	{ 0x08, 1, 0x80, 0x01, 1, 0x81, SF | PF },
	{ 0x30, 1, 0xff, 0xff, 1, 0x00, ZF | PF },
	{ 0x20, 1, 0x1f, 0x1f, 0, 0x1f, 0 },
	{ 0x01, 2, 0x7fff, 0x0001, 0, 0x8000, OF | SF | AF | PF },
	{ 0x01, 2, 0xffff, 0x0001, 0, 0x0000, CF | ZF | AF | PF },
	{ 0x01, 4, 0xffffffff, 1, 0, 0, CF | ZF | AF | PF },
	{ 0x01, 4, 0x7fffffff, 1, 0, 0x80000000, OF | SF | AF | PF },
	{ 0x01, 8, ~0ull, 1, 0, 0, CF | ZF | AF | PF },
	{ 0x29, 8, 0x8000000000000000ull, 1, 0, 0x7fffffffffffffffull, OF | AF | PF },
	{ 0x19, 8, 0, ~0ull, 1, 0, CF | ZF | AF | PF },
	{ 0x11, 8, ~0ull, ~0ull, 1, ~0ull, CF | SF | AF | PF },
	{ 0x39, 8, 1, 2, 0, 1, CF | SF | AF | PF },	/* CMP leaves the operand */
	{ 0x39, 4, 0x80000000, 1, 0, 0x80000000, OF | AF | PF },
};

/* Each case with the destination in MMIO (op [rbx], reg) and in a register (op reg, [rbx]). */
static void alu_flags_edge_values(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(alu_cases); i++) {
		const struct alu_case *t = &alu_cases[i];
		u8 code[3];
		unsigned int n = 0;
		bool cmp = (t->opcode & 0xf8) == 0x38;
		u64 mask = t->size == 8 ? ~0ull : (1ull << (8 * t->size)) - 1;

		if (t->size == 2)
			code[n++] = 0x66;
		if (t->size == 8)
			code[n++] = 0x48;
		code[n++] = t->opcode;
		code[n++] = 0x0b;		/* [rbx], ecx */

		setup(NULL);
		cpu.rflags = FIXED1 | (ARITH & ~(t->cf_in ? 0 : CF));
		cpu.gprs[RBX] = MMIO_BASE + 0x100;
		cpu.gprs[RCX] = t->b;
		wr_mmio(MMIO_BASE + 0x100, t->a, 8);
		put_code_at(CODE, code, n);
		assert_int_equal(run(), KVMPP_EMUL_DONE);
		assert_int_equal(cpu.rflags, FIXED1 | t->flags);
		assert_int_equal(cpu.rip, CODE + n);
		expect_exit(0, false, MMIO_BASE + 0x100, t->size);
		if (cmp) {
			assert_int_equal(exits.n, 1);
		} else {
			assert_int_equal(exits.n, 2);
			expect_exit(1, true, MMIO_BASE + 0x100, t->size);
			assert_int_equal(exit_value(1), t->res & mask);
		}

		/* reg, r/m: the register is the destination */
		setup(NULL);
		cpu.rflags = FIXED1 | (t->cf_in ? CF : 0);
		cpu.gprs[RBX] = MMIO_BASE + 0x100;
		cpu.gprs[RCX] = t->a | (t->size == 1 ? 0xabcd00 : 0);
		wr_mmio(MMIO_BASE + 0x100, t->b, 8);
		code[n - 2] = t->opcode + 2;	/* the reg,r/m form */
		put_code_at(CODE, code, n);
		assert_int_equal(run(), KVMPP_EMUL_DONE);
		assert_int_equal(cpu.rflags, FIXED1 | t->flags);
		if (cmp)
			assert_int_equal(cpu.gprs[RCX], t->a | (t->size == 1 ? 0xabcd00 : 0));
		else if (t->size == 4)
			assert_int_equal(cpu.gprs[RCX], t->res & mask);	/* zero-extended */
		else
			assert_int_equal(cpu.gprs[RCX] & mask, t->res & mask);
		if (t->size == 1)
			assert_int_equal(cpu.gprs[RCX] >> 8, 0xabcd);
	}
}

static void alu_immediate_forms(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x10, 8);

	INSN(0x80, 0x03, 0x05);			/* add byte [rbx], 5 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x15);
	assert_int_equal(cpu.rip, CODE + 3);

	INSN(0x48, 0x83, 0x2b, 0x20);		/* sub qword [rbx], 0x20: imm8 sign-extended */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0x15 - 0x20);
	assert_true(cpu.rflags & CF);

	wr_mmio(MMIO_BASE, 0, 8);
	INSN(0x48, 0x83, 0x0b, 0xff);		/* or qword [rbx], -1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), ~0ull);

	INSN(0x48, 0x81, 0x23, 0x00, 0xff, 0x00, 0x80);	/* and qword [rbx], 0xffffffff8000ff00 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0xffffffff8000ff00ull);
	assert_int_equal(cpu.rip, CODE + 7);

	INSN(0x66, 0x81, 0x33, 0xff, 0xff);	/* xor word [rbx], 0xffff */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0xffffffff800000ffull);

	INSN(0x80, 0x3b, 0xff);			/* cmp byte [rbx], 0xff */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	assert_true(cpu.rflags & ZF);

	cpu.rflags = FIXED1 | CF;
	cpu.gprs[RAX] = 0x1111111111111110ull;
	INSN(0x14, 0x0f);			/* adc al, 0x0f: no memory at all */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x1111111111111120ull);
	assert_int_equal(cpu.rflags, FIXED1 | AF);

	INSN(0x48, 0x2d, 0x00, 0x00, 0x00, 0x80);	/* sub rax, -0x80000000 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x1111111191111120ull);
	assert_int_equal(cpu.rip, CODE + 6);

	set_mode(4);				/* 82 is 80 outside 64-bit mode */
	cpu.gprs[RBX] = MMIO_BASE;
	CODE_AT(CODE, 0x82, 0x03, 0x01);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x00);
	set_mode(8);
	INSN(0x82, 0x03, 0x01);
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

static void test_instructions(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x80, 8);
	cpu.rflags = FIXED1 | ARITH;

	cpu.gprs[RCX] = 0x80;
	INSN(0x84, 0x0b);			/* test [rbx], cl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	assert_int_equal(cpu.rflags, FIXED1 | SF);

	INSN(0xf6, 0x03, 0x7f);			/* test byte [rbx], 0x7f */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | PF);
	assert_int_equal(cpu.rip, CODE + 3);

	INSN(0x48, 0xf7, 0x03, 0x80, 0, 0, 0x80);	/* test qword [rbx], 0xffffffff80000080 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1);
	assert_int_equal(cpu.rip, CODE + 7);

	INSN(0x66, 0x85, 0x0b);			/* test [rbx], cx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1);

	INSN(0xa8, 0x01);			/* test al, 1 */
	cpu.gprs[RAX] = 0x100;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | PF);
	assert_int_equal(cpu.gprs[RAX], 0x100);
}

static void inc_dec_keep_cf(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0xff, 8);

	cpu.rflags = FIXED1 | CF;
	INSN(0xfe, 0x03);			/* inc byte [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 2), 0x00);
	assert_int_equal(cpu.rflags, FIXED1 | CF | ZF | AF | PF);

	cpu.rflags = FIXED1;
	INSN(0xfe, 0x0b);			/* dec byte [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0xff);
	assert_int_equal(cpu.rflags, FIXED1 | SF | AF | PF);

	wr_mmio(MMIO_BASE, 0x7fffffff, 4);
	INSN(0xff, 0x03);			/* inc dword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 4), 0x80000000);
	assert_int_equal(cpu.rflags, FIXED1 | OF | SF | AF | PF);

	INSN(0x48, 0xff, 0x0b);			/* dec qword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0x7fffffffull);

	cpu.gprs[RCX] = 0xffff;
	cpu.rflags = FIXED1;
	INSN(0x66, 0xff, 0xc1);			/* inc cx: a carry out, CF stays clear */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | AF | PF);

	cpu.rflags = FIXED1 | CF;
	INSN(0x48, 0xff, 0xc9);			/* dec rcx: a borrow out, CF stays set */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], ~0ull);
	assert_int_equal(cpu.rflags, FIXED1 | CF | SF | AF | PF);
	INSN(0x48, 0xff, 0xc1);			/* inc rcx: CF stays set */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1 | CF | ZF | AF | PF);
}

static void neg_not(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x80, 8);

	INSN(0xf6, 0x1b);			/* neg byte [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x80);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF | SF);

	wr_mmio(MMIO_BASE, 0, 8);
	INSN(0x48, 0xf7, 0x1b);			/* neg qword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | PF);

	wr_mmio(MMIO_BASE, 5, 8);
	INSN(0xf7, 0x1b);			/* neg dword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0xfffffffbull);
	assert_int_equal(cpu.rflags, FIXED1 | CF | SF | AF);

	cpu.rflags = FIXED1 | ARITH;
	INSN(0x66, 0xf7, 0x13);			/* not word [rbx]: no flags */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0xffff0004ull);
	assert_int_equal(cpu.rflags, FIXED1 | ARITH);

	INSN(0xf6, 0x0b);			/* F6 /1 is not emulated */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

static void xchg(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.gprs[RCX] = 0x1234567890abcdefull;
	wr_mmio(MMIO_BASE, 0x1122334455667788ull, 8);

	INSN(0x87, 0x0b);			/* xchg [rbx], ecx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE, 4);
	expect_exit(1, true, MMIO_BASE, 4);
	assert_int_equal(exit_value(1), 0x90abcdef);
	assert_int_equal(cpu.gprs[RCX], 0x55667788);

	cpu.gprs[RAX] = 0xaabb;
	INSN(0x86, 0x23);			/* xchg [rbx], ah */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exit_value(1), 0xaa);
	assert_int_equal(cpu.gprs[RAX], 0xefbb);

	cpu.gprs[RDX] = 1;
	INSN(0x48, 0x87, 0xd1);			/* xchg rcx, rdx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 1);
	assert_int_equal(cpu.gprs[RDX], 0x55667788);
}

/* XCHG with RAM and LOCKed RMWs go through cmpxchg when the caller has one. */
static void locked_rmw_uses_cmpxchg(void **state)
{
	(void)state;
	cpu.gprs[RBX] = DATA;
	cpu.gprs[RCX] = 7;
	wr_ram(DATA, 5, 8);

	INSN(0xf0, 0x01, 0x0b);			/* lock add [rbx], ecx */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(rd_ram(DATA, 8), 12);
	assert_int_equal(count_calls('x'), 1);
	assert_int_equal(count_calls('w'), 0);

	INSN(0x48, 0x87, 0x0b);			/* xchg [rbx], rcx: locked without a prefix */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(rd_ram(DATA, 8), 7);
	assert_int_equal(cpu.gprs[RCX], 12);
	assert_int_equal(count_calls('x'), 2);

	/* Memory changed under the cmpxchg: nothing committed, RIP stays. */
	fake.cmpxchg_changed = 1;
	INSN(0xf0, 0x48, 0x0f, 0xab, 0x0b);	/* lock bts [rbx], rcx */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rip, CODE);
	assert_int_equal(rd_ram(DATA, 8), 7);
	assert_int_equal(cpu.gprs[RCX], 12);
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);	/* again: done */
	assert_int_equal(rd_ram(DATA, 8), 7 | 1 << 12);
	assert_int_equal(cpu.rip, CODE + 5);

	/* To MMIO, the cmpxchg answers KVMPP_EMUL_IO: an ordinary write exit. */
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 1, 4);
	INSN(0xf0, 0xff, 0x03);			/* lock inc dword [rbx] */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	assert_int_equal(rd_mmio(MMIO_BASE, 4), 2);

	/* Without cmpxchg, a plain write. */
	cpu.gprs[RBX] = DATA;
	INSN(0xf0, 0xf6, 0x13);			/* lock not byte [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_ram(DATA, 1), 0xf8);

	/* Straddling a page: no cmpxchg, two plain writes. */
	cpu.gprs[RBX] = DATA + 0xffe;
	wr_ram(DATA + 0xffe, 0x01020304, 4);
	INSN(0xf0, 0x83, 0x03, 0x01);		/* lock add dword [rbx], 1 */
	fake.nr_calls = 0;
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(rd_ram(DATA + 0xffe, 4), 0x01020305);
	assert_int_equal(count_calls('x'), 0);
	assert_int_equal(count_calls('w'), 2);
}

static void lock_prefix_rules(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;

	INSN(0xf0, 0x89, 0x03);			/* lock mov */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	assert_false(ctxt.exception.has_error_code);
	assert_int_equal(cpu.rip, CODE);

	INSN(0xf0, 0x01, 0xc3);			/* lock add ebx, eax: register destination */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);

	INSN(0xf0, 0x39, 0x03);			/* lock cmp */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	INSN(0xf0, 0x0f, 0xa3, 0x03);		/* lock bt */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	INSN(0xf0, 0x85, 0x03);			/* lock test */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	INSN(0xf0, 0xa4);			/* lock movsb */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	INSN(0xf0, 0x0f, 0x10, 0x03);		/* lock movups */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(count_calls('r') + count_calls('w'), 0);

	INSN(0xf0, 0x66, 0x31, 0x03);		/* lock xor word [rbx], ax */
	wr_mmio(MMIO_BASE, 0xffff, 2);
	cpu.gprs[RAX] = 0xf0f0;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 2), 0x0f0f);

	INSN(0x66, 0xf0, 0x80, 0x33, 0x01);	/* prefixes in any order */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 2), 0x0f0e);
}

/* ---- bit tests ---- */

static void bt_family(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x100;
	wr_mmio(MMIO_BASE + 0x100, 0x8000000000000001ull, 8);

	cpu.rflags = FIXED1 | ZF | SF;
	INSN(0x0f, 0xba, 0x23, 0x00);		/* bt dword [rbx], 0 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	assert_int_equal(cpu.rflags, FIXED1 | CF | ZF | SF);	/* ZF, SF untouched */
	assert_int_equal(cpu.rip, CODE + 4);

	INSN(0x0f, 0xba, 0x23, 0x21);		/* bt dword [rbx], 33: taken mod 32 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | SF);

	INSN(0x48, 0x0f, 0xba, 0x2b, 0x3f);	/* bts qword [rbx], 63 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_true(cpu.rflags & CF);
	assert_int_equal(exits.n, 2);

	INSN(0x48, 0x0f, 0xba, 0x33, 0x3f);	/* btr qword [rbx], 63 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_true(cpu.rflags & CF);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x100, 8), 1);

	INSN(0x66, 0x0f, 0xba, 0x3b, 0x14);	/* btc word [rbx], 20 -> bit 4 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_false(cpu.rflags & CF);
	expect_exit(1, true, MMIO_BASE + 0x100, 2);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x100, 8), 0x11);

	INSN(0x0f, 0xba, 0x03, 0x01);		/* 0F BA /0 does not exist */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

/* A register bit offset addresses memory outside the operand, in operand-sized steps. */
static void bt_register_offset_reaches_outside(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x100;

	cpu.gprs[RCX] = 100;			/* dword 3 (0x10c), bit 4 */
	INSN(0x0f, 0xab, 0x0b);			/* bts [rbx], ecx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x10c, 4);
	expect_exit(1, true, MMIO_BASE + 0x10c, 4);
	assert_int_equal(exit_value(1), rd_mmio(MMIO_BASE + 0x10c, 4));
	assert_true(rd_mmio(MMIO_BASE + 0x10c, 4) & 0x10);

	cpu.gprs[RCX] = (u64)-1;		/* the top bit of the dword before */
	INSN(0x0f, 0xb3, 0x0b);			/* btr [rbx], ecx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0xfc, 4);

	cpu.gprs[RCX] = 0xfff0;			/* -16 as a 16-bit offset: word -1 */
	INSN(0x66, 0x0f, 0xa3, 0x0b);		/* bt [rbx], cx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0xfe, 2);

	cpu.gprs[RCX] = 64 * 3 + 5;
	INSN(0x48, 0x0f, 0xbb, 0x0b);		/* btc [rbx], rcx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE + 0x118, 8);

	/* Register destination: the offset is taken modulo the size. */
	cpu.gprs[RDX] = 0;
	cpu.gprs[RCX] = 35;
	INSN(0x0f, 0xab, 0xca);			/* bts edx, ecx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RDX], 8);
	assert_false(cpu.rflags & CF);
	INSN(0x0f, 0xa3, 0xca);			/* bt edx, ecx */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_true(cpu.rflags & CF);
}

static void movnti(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.gprs[RAX] = 0x1122334455667788ull;

	INSN(0x0f, 0xc3, 0x03);			/* movnti [rbx], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);
	assert_int_equal(exit_value(0), 0x55667788);

	INSN(0x48, 0x0f, 0xc3, 0x03);		/* movnti [rbx], rax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 8);
	assert_int_equal(cpu.rip, CODE + 4);

	INSN(0x0f, 0xc3, 0xc3);			/* register destination: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	INSN(0x66, 0x0f, 0xc3, 0x03);		/* no 66 form */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

/* XADD: the register gets the old value, memory the sum; flags as ADD. */
static void xadd(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x40;
	wr_mmio(MMIO_BASE + 0x40, 0xfffffff0, 4);
	cpu.gprs[RCX] = 0xffffffff00000010ull;
	cpu.rflags = FIXED1;

	INSN(0xf0, 0x0f, 0xc1, 0x0b);		/* lock xadd [rbx], ecx */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0x40, 4);
	expect_exit(1, true, MMIO_BASE + 0x40, 4);
	assert_int_equal(exit_value(1), 0);
	assert_int_equal(cpu.gprs[RCX], 0xfffffff0);	/* 32-bit result: zero-extended */
	assert_int_equal(cpu.rflags & ARITH, CF | ZF | PF);
	assert_int_equal(cpu.rip, CODE + 4);

	wr_mmio(MMIO_BASE + 0x40, 0x7f, 1);
	cpu.gprs[RDX] = 0x1234;
	INSN(0x0f, 0xc0, 0x33);			/* xadd [rbx], dh */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x40, 1), 0x91);
	assert_int_equal(cpu.gprs[RDX], 0x7f34);
	assert_int_equal(cpu.rflags & (OF | SF | CF), OF | SF);

	wr_ram(DATA, 40, 8);
	cpu.gprs[RBX] = DATA;
	cpu.gprs[RAX] = 2;
	INSN(0xf0, 0x48, 0x0f, 0xc1, 0x03);	/* lock xadd [rbx], rax: RAM, no exit */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 0);
	assert_int_equal(rd_ram(DATA, 8), 42);
	assert_int_equal(cpu.gprs[RAX], 40);
}

/*
 * CMPXCHG compares the accumulator with memory. Equal: memory gets the
 * source. Not equal: the accumulator gets memory, which is written back.
 */
static void cmpxchg(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x80;
	wr_mmio(MMIO_BASE + 0x80, 7, 4);
	cpu.gprs[RAX] = 0xabcd000000000007ull;
	cpu.gprs[RCX] = 9;

	INSN(0xf0, 0x0f, 0xb1, 0x0b);		/* lock cmpxchg [rbx], ecx */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0x80, 4);
	expect_exit(1, true, MMIO_BASE + 0x80, 4);
	assert_int_equal(exit_value(1), 9);
	assert_true(cpu.rflags & ZF);
	assert_int_equal(cpu.gprs[RAX], 0xabcd000000000007ull);	/* untouched */

	INSN(0x0f, 0xb1, 0x0b);			/* cmpxchg [rbx], ecx: 7 != 9 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(1, true, MMIO_BASE + 0x80, 4);
	assert_int_equal(exit_value(1), 9);	/* written back unchanged */
	assert_false(cpu.rflags & ZF);
	assert_true(cpu.rflags & CF);		/* 7 - 9 borrows */
	assert_int_equal(cpu.gprs[RAX], 9);	/* EAX loaded, zero-extended */

	wr_mmio(MMIO_BASE + 0x80, 0x55, 1);
	cpu.gprs[RAX] = 0x55;
	cpu.gprs[RDX] = 0x66;
	INSN(0x0f, 0xb0, 0x13);			/* cmpxchg [rbx], dl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x80, 1), 0x66);

	wr_ram(DATA, 5, 8);
	cpu.gprs[RBX] = DATA;
	cpu.gprs[RAX] = 5;
	cpu.gprs[RCX] = 6;
	INSN(0xf0, 0x48, 0x0f, 0xb1, 0x0b);	/* lock cmpxchg [rbx], rcx: RAM */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 0);
	assert_int_equal(rd_ram(DATA, 8), 6);
}

/* ---- SSE moves ---- */

/* MOVQ to and from MMX registers: 8 bytes, one exit; MMn written is reported. */
static void mmx_movq(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x300;
	wr_mmio(MMIO_BASE + 0x300, 0x0102030405060708ull, 8);
	cpu.mm_written = 0;

	INSN(0x41, 0x0f, 0x6f, 0x1b);		/* movq mm3, [r11]: REX.B picks r11, not mm11 */
	cpu.gprs[R11] = MMIO_BASE + 0x300;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, false, MMIO_BASE + 0x300, 8);
	assert_int_equal(cpu.mm[3], 0x0102030405060708ull);
	assert_int_equal(cpu.mm_written, 1u << 3);

	cpu.mm[5] = 0x1122334455667788ull;
	INSN(0x44, 0x0f, 0x7f, 0x6b, 0x08);	/* movq [rbx+8], mm5 (REX.R ignored) */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE + 0x308, 8);
	assert_int_equal(exit_value(0), 0x1122334455667788ull);
	assert_int_equal(cpu.mm_written, 1u << 3);	/* a store writes no register */

	cpu.cr0 |= CR0_TS;
	INSN(0x0f, 0x7f, 0x2b);			/* movq [rbx], mm5 */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, NM);
	cpu.cr0 &= ~CR0_TS;
	cpu.cr0 |= CR0_EM;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	cpu.cr0 &= ~CR0_EM;
	cpu.cr4 = 0;				/* MMX does not need OSFXSR */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	INSN(0x0f, 0x6f, 0xc5);			/* movq mm0, mm5: no memory */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.mm[0], cpu.mm[5]);
	assert_int_equal(cpu.mm_written, 1u << 3 | 1u << 0);
}

static int fpu_loads;

static void count_fpu_load(void *ctx, struct kvmpp_emul_cpu *c)
{
	(void)ctx;
	fpu_loads++;
	memset(c->xmm[2], 0x3c, 16);
}

/*
 * ops->load_fpu is called only for the instructions that use XMM or MMX
 * registers; kvmpp_emul_complete_write() goes through the writes of a
 * finished instruction without the vCPU state.
 */
static void lazy_fpu_and_write_completion(void **state)
{
	struct kvmpp_emul_ops lazy = ops;
	int r;

	(void)state;
	lazy.load_fpu = count_fpu_load;
	fpu_loads = 0;
	cpu.gprs[RBX] = MMIO_BASE + 0x500;
	cpu.fpu_valid = false;

	INSN(0x89, 0x03);			/* mov [rbx], eax */
	assert_int_equal(run_with(&lazy), KVMPP_EMUL_DONE);
	assert_int_equal(fpu_loads, 0);

	INSN(0x0f, 0x11, 0x13);			/* movups [rbx], xmm2 */
	r = kvmpp_emulate(&lazy, &cpu, &ctxt);
	assert_int_equal(r, KVMPP_EMUL_IO);
	assert_int_equal(fpu_loads, 1);
	assert_true(cpu.fpu_valid);
	assert_true(ctxt.io.write);
	assert_int_equal(ctxt.io.linear, MMIO_BASE + 0x500);
	assert_int_equal(ctxt.io.data[0], 0x3c);
	assert_int_equal(cpu.rip, CODE + 3);	/* committed before the first write exit */
	assert_int_equal(kvmpp_emul_complete_write(&ctxt, cpu.rip), KVMPP_EMUL_IO);
	assert_int_equal(ctxt.io.linear, MMIO_BASE + 0x508);
	assert_int_equal(kvmpp_emul_complete_write(&ctxt, cpu.rip), KVMPP_EMUL_DONE);
	assert_false(kvmpp_emul_pending(&ctxt));

	/* A REP STOS with iterations left goes back to kvmpp_emulate(). */
	cpu.gprs[RDI] = MMIO_BASE + 0x600;
	cpu.gprs[RCX] = 2;
	INSN(0xf3, 0xab);			/* rep stosd */
	assert_int_equal(kvmpp_emulate(&lazy, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(kvmpp_emul_complete_write(&ctxt, cpu.rip), KVMPP_EMUL_AGAIN);
	assert_int_equal(kvmpp_emulate(&lazy, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(ctxt.io.linear, MMIO_BASE + 0x604);
	assert_int_equal(kvmpp_emul_complete_write(&ctxt, cpu.rip), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0);

	/* After a read there is nothing to complete this way. */
	INSN(0x8b, 0x03);			/* mov eax, [rbx] */
	assert_int_equal(kvmpp_emulate(&lazy, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(kvmpp_emul_complete_write(&ctxt, cpu.rip), KVMPP_EMUL_AGAIN);
	kvmpp_emul_reset(&ctxt);
	assert_int_equal(fpu_loads, 1);
}

/* Non-temporal stores: 16 bytes in two exits, aligned, memory destination only. */
static void movnt_stores(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x400;
	memset(cpu.xmm[1], 0x77, 16);

	INSN(0x66, 0x0f, 0xe7, 0x0b);		/* movntdq [rbx], xmm1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, true, MMIO_BASE + 0x400, 8);
	expect_exit(1, true, MMIO_BASE + 0x408, 8);
	INSN(0x0f, 0x2b, 0x0b);			/* movntps [rbx], xmm1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	INSN(0x66, 0x0f, 0x2b, 0x0b);		/* movntpd [rbx], xmm1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);

	cpu.gprs[RBX] = MMIO_BASE + 0x408 + 4;
	INSN(0x66, 0x0f, 0xe7, 0x0b);		/* misaligned: #GP(0) */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, GP);
	INSN(0x66, 0x0f, 0xe7, 0xcb);		/* register destination: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	INSN(0x0f, 0xe7, 0x0b);			/* movntq (MMX): not emulated, as in KVM */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

static void sse_loads_and_stores_split_in_halves(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < 16; i++)
		mmio[0x100 + i] = (u8)(0xa0 + i);
	cpu.gprs[RBX] = MMIO_BASE + 0x100;

	INSN(0xf3, 0x0f, 0x6f, 0x03);		/* movdqu xmm0, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0x100, 8);
	expect_exit(1, false, MMIO_BASE + 0x108, 8);
	assert_int_equal(exits.rip[1], CODE);
	assert_memory_equal(cpu.xmm[0], mmio + 0x100, 16);
	assert_int_equal(cpu.rip, CODE + 4);
	/* The second exit re-executed the instruction without fetching it. */
	assert_int_equal(count_calls('f'), 1);

	memset(cpu.xmm[9], 0x5a, 16);
	INSN(0x66, 0x44, 0x0f, 0x7f, 0x4b, 0x10);	/* movdqa [rbx+0x10], xmm9 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, true, MMIO_BASE + 0x110, 8);
	expect_exit(1, true, MMIO_BASE + 0x118, 8);
	assert_int_equal(exits.rip[0], CODE + 6);	/* committed before the first exit */
	assert_int_equal(exit_value(1), 0x5a5a5a5a5a5a5a5aull);

	INSN(0x0f, 0x28, 0x13);			/* movaps xmm2, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_memory_equal(cpu.xmm[2], mmio + 0x100, 16);

	INSN(0x41, 0x0f, 0x11, 0x12);		/* movups [r10], xmm2 */
	cpu.gprs[R10] = MMIO_BASE + 0x203;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x203, 8);
	expect_exit(1, true, MMIO_BASE + 0x20b, 8);

	INSN(0x66, 0x0f, 0x29, 0x13);		/* movapd [rbx], xmm2 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	INSN(0x66, 0x0f, 0x10, 0x1b);		/* movupd xmm3, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_memory_equal(cpu.xmm[3], cpu.xmm[2], 16);

	memset(cpu.xmm[15], 0x77, 16);
	INSN(0x45, 0x0f, 0x28, 0xc7);		/* movaps xmm8, xmm15: no memory */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_memory_equal(cpu.xmm[8], cpu.xmm[15], 16);
	INSN(0xf3, 0x41, 0x0f, 0x7f, 0xc0);	/* movdqu xmm8, xmm0 (store form) */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_memory_equal(cpu.xmm[8], cpu.xmm[0], 16);
	assert_int_equal(exits.n, 0);
}

static void sse_alignment_and_state_checks(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x108;

	INSN(0x66, 0x0f, 0x6f, 0x03);		/* movdqa xmm0, [rbx]: misaligned */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, GP);
	assert_true(ctxt.exception.has_error_code);
	assert_int_equal(ctxt.exception.error_code, 0);
	INSN(0x0f, 0x29, 0x03);			/* movaps [rbx], xmm0 */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(exits.n, 0);
	INSN(0xf3, 0x0f, 0x6f, 0x03);		/* movdqu: fine */
	assert_int_equal(run(), KVMPP_EMUL_DONE);

	cpu.rip = CODE;
	cpu.cr0 |= CR0_TS;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, NM);
	cpu.cr0 = CR0_PE | CR0_EM;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	cpu.cr0 = CR0_PE;
	cpu.cr4 = 0;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
	assert_int_equal(cpu.rip, CODE);

	cpu.cr4 = CR4_OSFXSR;
	INSN(0xf2, 0x0f, 0x6e, 0x03);		/* no F2 form of movd */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
	INSN(0xf3, 0x0f, 0xd6, 0xc1);		/* movq2dq */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
	INSN(0xf2, 0x0f, 0x6f, 0x03);
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
	INSN(0xf3, 0x0f, 0x10, 0x03);		/* movss */
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
	INSN(0x66, 0xf3, 0x0f, 0x6f, 0x03);	/* F3 wins over 66: movdqu */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
}

/* ---- strings ---- */

static void rep_stos_to_mmio_exits_per_element(void **state)
{
	(void)state;
	cpu.gprs[RDI] = MMIO_BASE + 0x10;
	cpu.gprs[RCX] = 3;
	cpu.gprs[RAX] = 0xdeadbeef;

	INSN(0xf3, 0xab);			/* rep stosd */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 3);
	expect_exit(0, true, MMIO_BASE + 0x10, 4);
	expect_exit(1, true, MMIO_BASE + 0x14, 4);
	expect_exit(2, true, MMIO_BASE + 0x18, 4);
	assert_int_equal(exits.rip[0], CODE);	/* still on the instruction */
	assert_int_equal(exits.rip[1], CODE);
	assert_int_equal(exits.rip[2], CODE + 2);
	assert_int_equal(exit_value(2), 0xdeadbeef);
	assert_int_equal(cpu.gprs[RCX], 0);
	assert_int_equal(cpu.gprs[RDI], MMIO_BASE + 0x1c);
	assert_int_equal(count_calls('f'), 1);

	/* Direction flag: downwards. */
	cpu.rflags |= DF;
	cpu.gprs[RCX] = 2;
	INSN(0xf3, 0x66, 0xab);			/* rep stosw */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x1c, 2);
	expect_exit(1, true, MMIO_BASE + 0x1a, 2);
	assert_int_equal(cpu.gprs[RDI], MMIO_BASE + 0x18);

	/* Without REP: one element, RCX untouched. */
	cpu.rflags &= ~DF;
	cpu.gprs[RCX] = 5;
	INSN(0x48, 0xab);			/* stosq */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE + 0x18, 8);
	assert_int_equal(cpu.gprs[RCX], 5);
	assert_int_equal(cpu.gprs[RDI], MMIO_BASE + 0x20);
	assert_int_equal(cpu.rip, CODE + 2);
}

static void rep_with_zero_count_does_nothing(void **state)
{
	(void)state;
	cpu.gprs[RCX] = 0;
	cpu.gprs[RSI] = HOLE;
	cpu.gprs[RDI] = HOLE;
	cpu.rflags |= RF;

	INSN(0xf3, 0xa4);			/* rep movsb */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rip, CODE + 2);
	assert_int_equal(cpu.gprs[RSI], HOLE);
	assert_int_equal(count_calls('r') + count_calls('w'), 0);
	assert_false(cpu.rflags & RF);

	cpu.gprs[RCX] = 0xffffffff00000000ull;	/* 67: ECX is the count */
	INSN(0x67, 0xf3, 0xa4);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0xffffffff00000000ull);
	assert_int_equal(cpu.rip, CODE + 3);
}

static void movs_between_mmio_and_ram(void **state)
{
	(void)state;
	memcpy(mmio + 0x40, "abcdefgh", 8);
	cpu.gprs[RSI] = MMIO_BASE + 0x40;
	cpu.gprs[RDI] = DATA;
	cpu.gprs[RCX] = 4;

	INSN(0xf3, 0x66, 0xa5);			/* rep movsw: MMIO to RAM */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 4);
	expect_exit(3, false, MMIO_BASE + 0x46, 2);
	assert_memory_equal(ram + (DATA - RAM_BASE), "abcdefgh", 8);
	assert_int_equal(cpu.gprs[RSI], MMIO_BASE + 0x48);
	assert_int_equal(cpu.gprs[RDI], DATA + 8);
	assert_int_equal(cpu.rip, CODE + 3);

	/* RAM to MMIO, 64-bit elements, through an FS override on the source. */
	cpu.seg_base[FS] = DATA;
	cpu.gprs[RSI] = 0;
	cpu.gprs[RDI] = MMIO_BASE + 0x80;
	INSN(0x64, 0x48, 0xa5);			/* movsq fs:[rsi] -> es:[rdi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE + 0x80, 8);
	assert_memory_equal(mmio + 0x80, "abcdefgh", 8);

	/* MMIO to MMIO: a read exit, then a write exit. */
	cpu.gprs[RSI] = MMIO_BASE + 0x80;
	cpu.gprs[RDI] = MMIO_BASE + 0x90;
	INSN(0xa5);				/* movsd */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0x80, 4);
	expect_exit(1, true, MMIO_BASE + 0x90, 4);
	assert_memory_equal(mmio + 0x90, "abcd", 4);
}

static void lods_from_mmio(void **state)
{
	(void)state;
	wr_mmio(MMIO_BASE + 0x10, 0x44332211, 4);
	cpu.gprs[RSI] = MMIO_BASE + 0x10;
	cpu.gprs[RCX] = 2;

	INSN(0xf3, 0xac);			/* rep lodsb */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	assert_int_equal(cpu.gprs[RAX] & 0xff, 0x22);
	assert_int_equal(cpu.gprs[RSI], MMIO_BASE + 0x12);

	INSN(0x48, 0xad);			/* lodsq */
	cpu.gprs[RSI] = MMIO_BASE + 0x10;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], rd_mmio(MMIO_BASE + 0x10, 8));
}

static void repe_cmps_stops_on_difference(void **state)
{
	(void)state;
	memcpy(mmio + 0x10, "abcXe", 5);
	memcpy(ram + (DATA - RAM_BASE), "abcde", 5);
	cpu.gprs[RSI] = MMIO_BASE + 0x10;
	cpu.gprs[RDI] = DATA;
	cpu.gprs[RCX] = 5;

	INSN(0xf3, 0xa6);			/* repe cmpsb */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 4);		/* a, b, c, X */
	assert_int_equal(cpu.gprs[RCX], 1);
	assert_int_equal(cpu.gprs[RSI], MMIO_BASE + 0x14);
	assert_false(cpu.rflags & ZF);
	assert_true(cpu.rflags & CF);		/* 'X' < 'd' */
	assert_int_equal(cpu.rip, CODE + 2);

	/* Equal all along: stops when RCX runs out, ZF set. */
	memcpy(mmio + 0x10, "abcde", 5);
	cpu.rip = CODE;
	cpu.gprs[RSI] = MMIO_BASE + 0x10;
	cpu.gprs[RDI] = DATA;
	cpu.gprs[RCX] = 5;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 5);
	assert_int_equal(cpu.gprs[RCX], 0);
	assert_true(cpu.rflags & ZF);

	/* The source is read first, the destination second. */
	cpu.gprs[RSI] = DATA;
	cpu.gprs[RDI] = MMIO_BASE + 0x10;
	cpu.gprs[RCX] = 1;
	fake.nr_calls = 0;
	INSN(0xf3, 0xa7);			/* repe cmpsd */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(fake.calls[1].kind, 'r');
	assert_int_equal(fake.calls[1].linear, DATA);
	assert_int_equal(fake.calls[2].kind, 'r');
	assert_int_equal(fake.calls[2].linear, MMIO_BASE + 0x10);
}

static void repne_scas_stops_on_match(void **state)
{
	(void)state;
	memcpy(mmio + 0x20, "hello", 5);
	cpu.gprs[RDI] = MMIO_BASE + 0x20;
	cpu.gprs[RCX] = 100;
	cpu.gprs[RAX] = 'l';

	INSN(0xf2, 0xae);			/* repne scasb */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 3);
	assert_int_equal(cpu.gprs[RCX], 97);
	assert_int_equal(cpu.gprs[RDI], MMIO_BASE + 0x23);
	assert_true(cpu.rflags & ZF);

	/* repe scas: stops on the first byte that is not AL */
	memcpy(mmio + 0x20, "lllx", 4);
	cpu.gprs[RDI] = MMIO_BASE + 0x20;
	cpu.gprs[RCX] = 100;
	INSN(0xf3, 0xae);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 4);
	assert_false(cpu.rflags & ZF);

	/* F2 with STOS repeats like F3 */
	cpu.gprs[RDI] = MMIO_BASE + 0x20;
	cpu.gprs[RCX] = 2;
	INSN(0xf2, 0xaa);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
}

static void string_address_sizes(void **state)
{
	(void)state;
	/* 67 in 64-bit mode: ESI/EDI/ECX, written back zero-extended. */
	cpu.gprs[RSI] = 0xffffffff00000000ull | DATA;
	cpu.gprs[RDI] = 0xabcdef0000000000ull | (MMIO_BASE + 0x10);
	cpu.gprs[RCX] = 0x1234567800000001ull;
	wr_ram(DATA, 0x77, 1);
	INSN(0x67, 0xf3, 0xa4);			/* rep movsb [esi] -> [edi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 1);
	assert_int_equal(cpu.gprs[RSI], DATA + 1);
	assert_int_equal(cpu.gprs[RDI], MMIO_BASE + 0x11);
	assert_int_equal(cpu.gprs[RCX], 0);

	/* 16-bit code: SI/DI/CX wrap within 64 KiB, ES for the destination. */
	set_mode(2);
	cpu.seg_base[DS] = RAM_BASE;
	cpu.seg_base[ES] = MMIO_BASE;
	cpu.gprs[RSI] = 0x1234ffff;
	cpu.gprs[RDI] = 0x5678ffff;
	cpu.gprs[RCX] = 0x99990002;
	ram[0xffff] = 0x11;
	ram[0] = 0x22;
	CODE_AT(CODE, 0xf3, 0xa4);		/* rep movsb */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, true, MMIO_BASE + 0xffff, 1);
	expect_exit(1, true, MMIO_BASE, 1);
	assert_int_equal(exit_value(1), 0x22);
	assert_int_equal(cpu.gprs[RSI], 0x12340001);
	assert_int_equal(cpu.gprs[RDI], 0x56780001);
	assert_int_equal(cpu.gprs[RCX], 0x99990000);
	assert_int_equal(cpu.rip, CODE16 + 2);

	/* 32-bit code: ES base counts, a DS override does not move the destination. */
	set_mode(4);
	cpu.seg_base[DS] = 0;
	cpu.seg_base[ES] = MMIO_BASE - 0x1000;
	cpu.gprs[RSI] = DATA;
	cpu.gprs[RDI] = 0x1000;
	CODE_AT(CODE, 0x3e, 0xa5);		/* movsd ds:[esi] -> es:[edi] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE, 4);
}

static void rep_batches_let_the_guest_run(void **state)
{
	(void)state;
	cpu.gprs[RSI] = RAM_BASE;
	cpu.gprs[RDI] = RAM_BASE + 0x8000;
	cpu.gprs[RCX] = KVMPP_EMUL_REP_BATCH + 10;

	INSN(0xf3, 0xa4);			/* rep movsb, RAM to RAM */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rip, CODE);	/* not done: the guest runs it again */
	assert_int_equal(cpu.gprs[RCX], 10);
	assert_int_equal(cpu.gprs[RSI], RAM_BASE + KVMPP_EMUL_REP_BATCH);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0);
	assert_int_equal(cpu.rip, CODE + 2);
}

static void fault_in_the_middle_of_rep_keeps_earlier_iterations(void **state)
{
	(void)state;
	cpu.gprs[RSI] = MMIO_BASE + MMIO_SIZE - 2;	/* the third element is in the hole */
	cpu.gprs[RDI] = DATA;
	cpu.gprs[RCX] = 5;

	INSN(0xf3, 0xa4);			/* rep movsb */
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_int_equal(exits.n, 2);
	assert_int_equal(fake.fault_linear, MMIO_BASE + MMIO_SIZE);
	assert_int_equal(cpu.gprs[RCX], 3);
	assert_int_equal(cpu.gprs[RSI], MMIO_BASE + MMIO_SIZE);
	assert_int_equal(cpu.gprs[RDI], DATA + 2);
	assert_int_equal(cpu.rip, CODE);
}

/* ---- the MMIO round trip ---- */

static void mmio_read_round_trip_step_by_step(void **state)
{
	struct kvmpp_emul_cpu before;

	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x8;
	cpu.gprs[RCX] = 2;
	INSN(0x48, 0x03, 0x0b);			/* add rcx, [rbx] */
	before = cpu;

	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_true(kvmpp_emul_pending(&ctxt));
	assert_false(ctxt.io.write);
	assert_int_equal(ctxt.io.gpa, MMIO_GPA + 8);
	assert_int_equal(ctxt.io.linear, MMIO_BASE + 8);
	assert_int_equal(ctxt.io.len, 8);
	assert_memory_equal(&cpu, &before, sizeof(cpu));	/* nothing committed */

	memcpy(ctxt.io.data, "\x05\0\0\0\0\0\0\0", 8);
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_DONE);
	assert_false(kvmpp_emul_pending(&ctxt));
	assert_int_equal(cpu.gprs[RCX], 7);
	assert_int_equal(cpu.rip, CODE + 3);
	assert_int_equal(count_calls('f'), 1);
	assert_int_equal(count_calls('r'), 1);	/* the completed read came from the cache */
}

static void mmio_write_round_trip_step_by_step(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE + 0x8;
	cpu.gprs[RCX] = 0x0102030405060708ull;
	INSN(0x48, 0x89, 0x0b);			/* mov [rbx], rcx */

	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_true(ctxt.io.write);
	assert_int_equal(ctxt.io.gpa, MMIO_GPA + 8);
	assert_int_equal(ctxt.io.len, 8);
	assert_memory_equal(ctxt.io.data, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	assert_int_equal(cpu.rip, CODE + 3);	/* already done, as userspace sees it */
	assert_true(kvmpp_emul_pending(&ctxt));
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_DONE);
	assert_false(kvmpp_emul_pending(&ctxt));
	assert_int_equal(cpu.rip, CODE + 3);
	assert_int_equal(count_calls('f'), 1);
}

static void pending_read_is_dropped_when_rip_moves(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	INSN(0x8b, 0x0b);			/* mov ecx, [rbx] */
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	cpu.rip = CODE + 0x100;			/* userspace moved RIP */
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_DONE);
	assert_false(kvmpp_emul_pending(&ctxt));
	assert_int_equal(cpu.gprs[RCX], 0x2222222222222222ull);
	assert_int_equal(cpu.rip, CODE + 0x100);

	/* kvmpp_emul_reset() drops it too; the next call decodes afresh. */
	INSN(0x8b, 0x0b);
	fake.nr_calls = 0;
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	kvmpp_emul_reset(&ctxt);
	assert_false(kvmpp_emul_pending(&ctxt));
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(count_calls('f'), 2);
}

/*
 * A VMM that changes registers without kvmpp_emul_reset() while a read is
 * pending: a string instruction's read follows RSI (ModRM effective
 * addresses are fixed when the instruction is decoded).
 */
static void registers_changed_under_a_pending_read(void **state)
{
	(void)state;
	cpu.gprs[RSI] = MMIO_BASE;
	wr_mmio(MMIO_BASE + 0x10, 0xcafe, 4);
	INSN(0xad);				/* lodsd */
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(ctxt.io.linear, MMIO_BASE);
	cpu.gprs[RSI] = MMIO_BASE + 0x10;
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_int_equal(ctxt.io.linear, MMIO_BASE + 0x10);
	memcpy(ctxt.io.data, mmio + 0x10, 4);
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xcafe);
	assert_int_equal(cpu.gprs[RSI], MMIO_BASE + 0x14);
	assert_int_equal(cpu.rip, CODE + 1);
}

static void page_straddling_accesses_are_split(void **state)
{
	(void)state;
	/* A dword over the last RAM page and the first MMIO page: RAM part written, MMIO part exits. */
	cpu.gprs[RBX] = MMIO_BASE - 1;
	cpu.gprs[RAX] = 0x44332211;
	INSN(0x89, 0x03);			/* mov [rbx], eax */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(ram[RAM_SIZE - 1], 0x11);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE, 3);
	assert_int_equal(exit_value(0), 0x443322);

	/* An MMIO qword over two pages: two exits, in address order. */
	cpu.gprs[RBX] = MMIO_BASE + 0xffd;
	INSN(0x48, 0x8b, 0x03);			/* mov rax, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0xffd, 3);
	expect_exit(1, false, MMIO_BASE + 0x1000, 5);
	assert_int_equal(cpu.gprs[RAX], rd_mmio(MMIO_BASE + 0xffd, 8));

	/* 16 bytes over a page boundary: 4 + 8 + 4. */
	cpu.gprs[RBX] = MMIO_BASE + 0x1ffc;
	INSN(0xf3, 0x0f, 0x6f, 0x03);		/* movdqu xmm0, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 3);
	expect_exit(0, false, MMIO_BASE + 0x1ffc, 4);
	expect_exit(1, false, MMIO_BASE + 0x2000, 8);
	expect_exit(2, false, MMIO_BASE + 0x2008, 4);
	assert_memory_equal(cpu.xmm[0], mmio + 0x1ffc, 16);
}

static void rmw_on_mmio_reads_then_writes(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x10, 4);
	cpu.gprs[RAX] = 0x5;

	INSN(0x01, 0x03);			/* add [rbx], eax */
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_false(ctxt.io.write);
	assert_int_equal(cpu.rip, CODE);
	memcpy(ctxt.io.data, "\x10\0\0\0", 4);
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_IO);
	assert_true(ctxt.io.write);
	assert_memory_equal(ctxt.io.data, "\x15\0\0\0", 4);
	assert_int_equal(cpu.rip, CODE + 2);
	assert_int_equal(kvmpp_emulate(&ops, &cpu, &ctxt), KVMPP_EMUL_DONE);
}

/* ---- faults, errors, limits ---- */

static void data_faults_leave_the_vcpu_alone(void **state)
{
	struct kvmpp_emul_cpu before;

	(void)state;
	cpu.gprs[RBX] = HOLE;
	INSN(0x48, 0x03, 0x0b);			/* add rcx, [rbx] */
	before = cpu;
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_int_equal(fake.fault_linear, HOLE);
	assert_memory_equal(&cpu, &before, sizeof(cpu));

	INSN(0x87, 0x0b);			/* xchg [rbx], ecx: the second page faults */
	cpu.gprs[RBX] = MMIO_BASE + MMIO_SIZE - 2;
	before = cpu;
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_memory_equal(&cpu, &before, sizeof(cpu));

	/* A fault after an MMIO write was queued drops the queued write. */
	cpu.gprs[RBX] = MMIO_BASE + MMIO_SIZE - 8;
	INSN(0xf3, 0x0f, 0x7f, 0x03);		/* movdqu [rbx], xmm0: second half in the hole */
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_int_equal(exits.n, 0);
	assert_int_equal(cpu.rip, CODE);

	/* Host errors come back as they are. */
	fake.error = -EFAULT;
	cpu.gprs[RBX] = DATA;
	INSN(0x8b, 0x03);
	assert_int_equal(run(), -EFAULT);
	assert_int_equal(cpu.rip, CODE);
	fake.error = 7;				/* not a result the contract allows */
	assert_int_equal(run(), -EIO);
}

static void fetch_faults_and_page_boundaries(void **state)
{
	(void)state;
	/* Code that is not there. */
	cpu.rip = HOLE;
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_int_equal(fake.fault_linear, HOLE);

	/* An instruction that ends at the end of RAM: the hole after it is not fetched. */
	cpu.gprs[RBX] = MMIO_BASE;
	CODE_AT(RAM_BASE + RAM_SIZE - 2, 0x89, 0x03);
	fake.nr_calls = 0;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(fake.calls[0].kind, 'f');
	assert_int_equal(fake.calls[0].len, 2);
	assert_int_equal(cpu.rip, RAM_BASE + RAM_SIZE);

	/* One that goes on into MMIO: unhandleable. */
	CODE_AT(RAM_BASE + RAM_SIZE - 1, 0x89);
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);

	/* One that goes on into a page that cannot be fetched: the fault. */
	CODE_AT(DATA - 1, 0x89);
	fake.no_fetch_page = DATA;
	assert_int_equal(run(), KVMPP_EMUL_FAULT);
	assert_int_equal(fake.fault_linear, DATA);
	fake.no_fetch_page = 0;

	/* Across a page boundary inside RAM: two fetches. */
	CODE_AT(DATA - 3, 0x48, 0xc7, 0x03, 0x01, 0x02, 0x03, 0x04);
	fake.nr_calls = 0;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(count_calls('f'), 2);
	assert_int_equal(fake.calls[0].len, 3);
	assert_int_equal(fake.calls[1].linear, DATA);
	assert_int_equal(exit_value(0), 0x04030201);

	/* 16-bit code: IP wraps within CS. */
	set_mode(2);
	ram[0xffff] = 0x89;
	ram[0] = 0x07;				/* mov [bx], ax */
	cpu.rip = 0xffff;
	cpu.seg_base[DS] = MMIO_BASE;
	cpu.gprs[RBX] = 0;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rip, 1);
	expect_exit(0, true, MMIO_BASE, 2);

	/* Code in MMIO is not emulated. */
	set_mode(8);
	cpu.rip = MMIO_BASE;
	assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
}

static void instruction_length_limit(void **state)
{
	u8 code[16];

	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;

	/* 13 prefixes and a 2-byte instruction: 15 bytes, fine. */
	memset(code, 0x3e, sizeof(code));
	code[13] = 0x89;
	code[14] = 0x03;
	put_code_at(CODE, code, 15);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rip, CODE + 15);

	/* 14 prefixes: 16 bytes, #GP(0), and no 16th byte is fetched. */
	memset(code, 0x3e, sizeof(code));
	code[14] = 0x89;
	code[15] = 0x03;
	put_code_at(CODE, code, 16);
	fake.nr_calls = 0;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, GP);
	assert_true(ctxt.exception.has_error_code);
	assert_int_equal(ctxt.exception.error_code, 0);
	assert_int_equal(cpu.rip, CODE);
	assert_int_equal(ctxt.insn_len, 15);
	assert_int_equal(fake.calls[0].len, 15);
	assert_int_equal(count_calls('f'), 1);

	/* A 15-byte instruction made of an immediate: mov qword [rbx+disp32], imm32 with prefixes. */
	code[0] = 0x3e;
	code[1] = 0x3e;
	code[2] = 0x3e;
	code[3] = 0x3e;
	code[4] = 0x48;
	code[5] = 0xc7;
	code[6] = 0x83;
	memcpy(code + 7, "\x10\0\0\0\x01\x02\x03\x04", 8);
	put_code_at(CODE, code, 15);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 8);
	assert_int_equal(cpu.rip, CODE + 15);
}

/* ---- shifts, rotates, multiplication, division, MOVD/MOVQ ---- */

/* The little-endian value of @n bytes (XMM register contents). */
static u64 load_le_test(const u8 *b, unsigned int n)
{
	u64 v = 0;

	memcpy(&v, b, n);
	return v;
}


/*
 * Group 2 on MMIO: a read, then a write of the result; the count from an
 * immediate, 1 or CL, masked to 5 bits (6 with REX.W); a masked count of 0
 * changes no flag but still writes the destination back (as KVM does).
 */
static void shifts_and_rotates(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;

	wr_mmio(MMIO_BASE, 0xc0000001, 4);
	cpu.rflags = FIXED1;
	INSN(0xd1, 0x23);			/* shl dword [rbx], 1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE, 4);
	expect_exit(1, true, MMIO_BASE, 4);
	assert_int_equal(exit_value(1), 0x80000002);
	assert_int_equal(cpu.rflags, FIXED1 | CF | SF);	/* OF = MSB ^ CF = 0 */
	assert_int_equal(cpu.rip, CODE + 2);

	cpu.rflags = FIXED1 | ARITH;
	INSN(0xc1, 0x23, 0x20);			/* shl dword [rbx], 32: masked to 0 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(1, true, MMIO_BASE, 4);
	assert_int_equal(exit_value(1), 0x80000002);
	assert_int_equal(cpu.rflags, FIXED1 | ARITH);

	wr_mmio(MMIO_BASE, 0x8000000000000001ull, 8);
	cpu.gprs[RCX] = 0x41;			/* 65: masked to 1 */
	cpu.rflags = FIXED1;
	INSN(0x48, 0xd3, 0x2b);			/* shr qword [rbx], cl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 8), 0x4000000000000000ull);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF | PF);	/* OF: the old MSB */

	wr_mmio(MMIO_BASE, 0x8081, 2);
	INSN(0x66, 0xc1, 0x3b, 0x04);		/* sar word [rbx], 4 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 2), 0xf808);
	assert_int_equal(cpu.rflags, FIXED1 | SF);	/* CF: bit 3; OF 0, AF cleared */

	wr_mmio(MMIO_BASE, 0x81, 1);
	cpu.rflags = FIXED1 | CF;
	INSN(0xd0, 0x13);			/* rcl byte [rbx], 1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x03);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF);	/* OF = MSB ^ CF = 0 ^ 1 */

	cpu.rflags = FIXED1 | ZF | CF;
	INSN(0xc0, 0x1b, 0x09);			/* rcr byte [rbx], 9: a full turn through CF */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x03);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | CF);

	INSN(0xc0, 0x03, 0x10);			/* rol byte [rbx], 16: CF = bit 0, value kept */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x03);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | CF | OF);	/* OF = MSB ^ CF */

	INSN(0xd0, 0x0b);			/* ror byte [rbx], 1 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x81);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | CF | OF);	/* rotates leave ZF */

	wr_mmio(MMIO_BASE, 0x40, 1);
	cpu.rflags = FIXED1;
	INSN(0xd0, 0x33);			/* sal byte [rbx], 1: /6 is SHL */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 1), 0x80);
	assert_int_equal(cpu.rflags, FIXED1 | SF | OF);

	cpu.gprs[RDX] = 0x1234;
	INSN(0x66, 0xc1, 0xe2, 0x04);		/* shl dx, 4: a register, no exit */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 0);
	assert_int_equal(cpu.gprs[RDX], 0x2340);

	set_mode(2);				/* 16-bit code: D3 /5 on [bx] */
	cpu.gprs[RBX] = 0x10;
	cpu.seg_base[DS] = MMIO_BASE;
	cpu.gprs[RCX] = 3;
	wr_mmio(MMIO_BASE + 0x10, 0xfff8, 2);
	CODE_AT(CODE, 0xd3, 0x2f);		/* shr word [bx], cl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x10, 2), 0x1fff);
	assert_int_equal(cpu.rip, CODE16 + 2);
	set_mode(8);

	INSN(0xf0, 0xd1, 0x23);			/* lock shl: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
}

/* SHLD, SHRD: bits of the register shifted in; 16-bit counts above 16 shift dst:src:dst. */
static void double_shifts(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x12345678, 4);
	cpu.gprs[RCX] = 0x9abcdef0;
	cpu.rflags = FIXED1;

	INSN(0x0f, 0xa4, 0x0b, 0x08);		/* shld [rbx], ecx, 8 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(1, true, MMIO_BASE, 4);
	assert_int_equal(rd_mmio(MMIO_BASE, 4), 0x3456789a);
	assert_int_equal(cpu.rflags, FIXED1 | PF);	/* CF: bit 24 of the old value */
	assert_int_equal(cpu.rip, CODE + 4);

	cpu.gprs[RCX] = 0x9abcdef0 | 4ull << 40;	/* CL = 0xf0: masked to 16 */
	INSN(0x0f, 0xad, 0x0b);			/* shrd [rbx], ecx, cl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 4), 0xdef03456);
	assert_int_equal(cpu.rflags, FIXED1 | SF | PF);	/* CF: bit 15 of the old value */

	wr_mmio(MMIO_BASE, 0x1234, 2);
	cpu.gprs[RCX] = 0x14;			/* 20 > 16: the 48 bits 1234:src:1234 */
	cpu.gprs[RDX] = 0xabcd;
	INSN(0x66, 0x0f, 0xa5, 0x13);		/* shld [rbx], dx, cl */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(rd_mmio(MMIO_BASE, 2), 0xbcd1);

	cpu.rflags = FIXED1 | ARITH;
	INSN(0x48, 0x0f, 0xac, 0x13, 0x40);	/* shrd [rbx], rdx, 64: masked to 0 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	assert_int_equal(cpu.rflags, FIXED1 | ARITH);
}

static void multiply(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0xfffffffe, 4);	/* -2 */
	cpu.gprs[RCX] = 0x1111111100000003ull;
	cpu.rflags = FIXED1 | ARITH;

	INSN(0x0f, 0xaf, 0x0b);			/* imul ecx, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, false, MMIO_BASE, 4);
	assert_int_equal(cpu.gprs[RCX], 0xfffffffa);	/* -6, zero-extended */
	assert_int_equal(cpu.rflags, FIXED1 | SF | PF);	/* fits: CF = OF = 0 */

	INSN(0x69, 0x0b, 0x00, 0x00, 0x00, 0x40);	/* imul ecx, [rbx], 0x40000000 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x80000000);
	assert_int_equal(cpu.rflags, FIXED1 | SF | PF);	/* -2^31 fits */
	INSN(0x66, 0x6b, 0x0b, 0x80);		/* imul cx, [rbx], -128 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x80000100);
	assert_int_equal(cpu.rip, CODE + 4);
	INSN(0x48, 0x69, 0x0b, 0x00, 0x00, 0x00, 0x80);	/* imul rcx, [rbx], -2^31 */
	wr_mmio(MMIO_BASE, 1ull << 33, 8);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF | ZF | PF);

	wr_mmio(MMIO_BASE, 0xfffffffffffffffeull, 8);
	cpu.gprs[RAX] = 0xffffffffffffffffull;
	cpu.gprs[RDX] = 5;
	INSN(0x48, 0xf7, 0x23);			/* mul qword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 2);
	assert_int_equal(cpu.gprs[RDX], 0xfffffffffffffffdull);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF);

	cpu.gprs[RAX] = 0xffffffffffffffffull;	/* -1 * -2 = 2: the upper half is the sign */
	INSN(0x48, 0xf7, 0x2b);			/* imul qword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 2);
	assert_int_equal(cpu.gprs[RDX], 0);
	assert_int_equal(cpu.rflags, FIXED1);

	wr_mmio(MMIO_BASE, 0x80, 1);
	cpu.gprs[RAX] = 0xabcd0003;
	INSN(0xf6, 0x2b);			/* imul byte [rbx]: AX = 3 * -128 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xabcdfe80);
	assert_int_equal(cpu.rflags, FIXED1 | CF | OF | SF);
	cpu.gprs[RAX] = 0xabcd0003;
	INSN(0xf6, 0x23);			/* mul byte [rbx]: AX = 3 * 128 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0xabcd0180);

	cpu.gprs[RAX] = 0x1111111180000000ull;
	cpu.gprs[RDX] = 0x2222222222222222ull;
	wr_mmio(MMIO_BASE, 2, 4);
	INSN(0xf7, 0x23);			/* mul dword [rbx]: EDX:EAX, zero-extended */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0);
	assert_int_equal(cpu.gprs[RDX], 1);
}

/* DIV, IDIV: quotient and remainder; #DE (after the read) for 0 or a quotient too big. */
static void divide(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.rflags = FIXED1 | ARITH;

	wr_mmio(MMIO_BASE, 7, 8);
	cpu.gprs[RAX] = 0x0000000000000005ull;
	cpu.gprs[RDX] = 0x3;			/* 3 * 2^64 + 5 */
	INSN(0x48, 0xf7, 0x33);			/* div qword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x6db6db6db6db6db7ull);
	assert_int_equal(cpu.gprs[RDX], 0x4);
	assert_int_equal(cpu.rflags, FIXED1 | ARITH);	/* left alone */

	cpu.gprs[RAX] = ~0ull - 6;		/* -7 */
	cpu.gprs[RDX] = ~0ull;
	wr_mmio(MMIO_BASE, 2, 8);
	INSN(0x48, 0xf7, 0x3b);			/* idiv qword [rbx]: -7 / 2 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], ~0ull - 2);	/* -3: toward zero */
	assert_int_equal(cpu.gprs[RDX], ~0ull);		/* -1: the dividend's sign */

	wr_mmio(MMIO_BASE, 0x10, 1);
	cpu.gprs[RAX] = 0x5555fff5;		/* AX = -11 */
	INSN(0xf6, 0x3b);			/* idiv byte [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x5555f500);	/* AH = -11, AL = 0 */

	cpu.gprs[RAX] = 0x12345678;
	cpu.gprs[RDX] = 0x9;
	wr_mmio(MMIO_BASE, 0x10, 4);
	INSN(0xf7, 0x33);			/* div dword [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x91234567);
	assert_int_equal(cpu.gprs[RDX], 0x8);

	/* Divide errors: the operand is read, then nothing changes. */
	{
		static const struct {
			u8 insn[3];
			u64 rax, rdx, divisor;
		} de[] = {
			{ { 0x48, 0xf7, 0x33 }, 1, 0, 0 },			/* div by 0 */
			{ { 0x48, 0xf7, 0x33 }, 0, 7, 7 },			/* quotient 2^64 */
			{ { 0x48, 0xf7, 0x3b }, 0, 1ull << 63, ~0ull },	/* -2^127 / -1 */
			{ { 0x48, 0xf7, 0x3b }, 1ull << 63, 0, 1 },		/* 2^63 / 1 */
			{ { 0x90, 0xf7, 0x3b }, 0x80000000, ~0ull, ~0ull },	/* -2^31 / -1 */
			{ { 0x90, 0xf6, 0x3b }, 0x8000, 0, 0xff },		/* -2^15 / -1 */
			{ { 0x90, 0xf6, 0x33 }, 0x100, 0, 1 },		/* 256 / 1 */
		};
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(de); i++) {
			struct kvmpp_emul_cpu before;

			cpu.gprs[RAX] = de[i].rax;
			cpu.gprs[RDX] = de[i].rdx;
			wr_mmio(MMIO_BASE, de[i].divisor, 8);
			put_code_at(CODE, de[i].insn, 3);
			cpu.rip = CODE + (de[i].insn[0] == 0x90);	/* past the NOP filler */
			before = cpu;
			assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
			assert_int_equal(ctxt.exception.vector, 0);
			assert_false(ctxt.exception.has_error_code);
			assert_int_equal(exits.n, 1);
			assert_false(exits.io[0].write);
			assert_memory_equal(&cpu, &before, sizeof(cpu));
		}
	}
}

/*
 * MOVD/MOVQ: between memory (or a general register) and the low 32/64 bits
 * of an XMM register (the rest zeroed) or an MMX register; MOVQ xmm forms.
 */
static void movd_movq(void **state)
{
	struct kvmpp_emul_ops lazy = ops;

	(void)state;
	lazy.load_fpu = count_fpu_load;
	fpu_loads = 0;
	cpu.fpu_valid = false;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x8877665544332211ull, 8);
	memset(cpu.xmm[1], 0xee, 16);

	INSN(0x66, 0x0f, 0x6e, 0x0b);		/* movd xmm1, [rbx] */
	assert_int_equal(run_with(&lazy), KVMPP_EMUL_DONE);
	assert_int_equal(fpu_loads, 1);
	assert_int_equal(exits.n, 1);
	expect_exit(0, false, MMIO_BASE, 4);
	assert_int_equal(load_le_test(cpu.xmm[1], 8), 0x44332211);
	assert_int_equal(load_le_test(cpu.xmm[1] + 8, 8), 0);

	INSN(0x66, 0x4c, 0x0f, 0x6e, 0x0b);	/* movq xmm9, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 8);
	assert_int_equal(load_le_test(cpu.xmm[9], 8), 0x8877665544332211ull);
	assert_int_equal(cpu.rip, CODE + 5);

	memset(cpu.xmm[2], 0xee, 16);
	INSN(0xf3, 0x0f, 0x7e, 0x13);		/* movq xmm2, [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, false, MMIO_BASE, 8);
	assert_int_equal(load_le_test(cpu.xmm[2], 8), 0x8877665544332211ull);
	assert_int_equal(load_le_test(cpu.xmm[2] + 8, 8), 0);

	INSN(0x66, 0x0f, 0x7e, 0x53, 0x10);	/* movd [rbx+0x10], xmm2 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x10, 4);
	assert_int_equal(exit_value(0), 0x44332211);

	INSN(0x66, 0x0f, 0xd6, 0x53, 0x18);	/* movq [rbx+0x18], xmm2 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x18, 8);
	assert_int_equal(exit_value(0), 0x8877665544332211ull);

	cpu.mm_written = 0;
	cpu.mm[3] = 0x1234;
	INSN(0x0f, 0x6e, 0x1b);			/* movd mm3, [rbx]: zero-extended */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.mm[3], 0x44332211);
	assert_int_equal(cpu.mm_written, 1u << 3);
	INSN(0x48, 0x0f, 0x7e, 0x5b, 0x20);	/* movq [rbx+0x20], mm3 */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 0x20, 8);
	assert_int_equal(exit_value(0), 0x44332211);

	cpu.gprs[RCX] = 0xffffffffffffffffull;
	INSN(0x66, 0x0f, 0x7e, 0xd1);		/* movd ecx, xmm2: zero-extended */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x44332211);
	assert_int_equal(exits.n, 0);

	INSN(0x66, 0x0f, 0xd6, 0xd0);		/* movq xmm0, xmm2 */
	memset(cpu.xmm[0], 0xee, 16);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(load_le_test(cpu.xmm[0], 8), 0x8877665544332211ull);
	assert_int_equal(load_le_test(cpu.xmm[0] + 8, 8), 0);

	cpu.cr0 |= CR0_TS;
	INSN(0x66, 0x0f, 0x6e, 0x0b);
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, NM);
	cpu.cr0 = CR0_PE;
	cpu.cr4 = 0;
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);	/* no OSFXSR: #UD */
	assert_int_equal(ctxt.exception.vector, UD);
	INSN(0x0f, 0x6e, 0x1b);			/* the MMX form does not need it */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	INSN(0xf0, 0x0f, 0x7e, 0x1b);		/* lock: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
}

/* SETcc: one write, nothing read; the ModRM reg field is ignored. */
static void setcc(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	cpu.rflags = FIXED1 | ZF | SF;		/* SF != OF: "less" */

	INSN(0x0f, 0x94, 0x03);			/* sete [rbx] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, true, MMIO_BASE, 1);
	assert_int_equal(exit_value(0), 1);
	assert_int_equal(cpu.rip, CODE + 3);
	INSN(0x0f, 0x9f, 0x3b);			/* setg [rbx] (reg field 7) */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exit_value(0), 0);
	INSN(0x0f, 0x9c, 0x43, 0x05);		/* setl [rbx+5] */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	expect_exit(0, true, MMIO_BASE + 5, 1);
	assert_int_equal(exit_value(0), 1);
	assert_int_equal(count_calls('r'), 0);

	cpu.gprs[RAX] = 0xffff;
	INSN(0x0f, 0x9b, 0xc4);			/* setnp ah */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RAX], 0x01ff);
	assert_int_equal(cpu.rflags, FIXED1 | ZF | SF);
	INSN(0xf0, 0x0f, 0x94, 0x03);		/* lock sete: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
}

/* CMOVcc: the source is read even when the condition is false; r32 is zero-extended anyway. */
static void cmov(void **state)
{
	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	wr_mmio(MMIO_BASE, 0x8877665544332211ull, 8);
	cpu.gprs[RCX] = 0xaaaaaaaabbbbbbbbull;
	cpu.rflags = FIXED1;

	INSN(0x0f, 0x44, 0x0b);			/* cmove ecx, [rbx]: false */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	expect_exit(0, false, MMIO_BASE, 4);
	assert_int_equal(cpu.gprs[RCX], 0xbbbbbbbb);
	assert_int_equal(cpu.rip, CODE + 3);

	cpu.gprs[RCX] = 0xaaaaaaaabbbbbbbbull;
	INSN(0x66, 0x0f, 0x44, 0x0b);		/* cmove cx, [rbx]: false, untouched */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 1);
	assert_int_equal(cpu.gprs[RCX], 0xaaaaaaaabbbbbbbbull);
	INSN(0x48, 0x0f, 0x45, 0x0b);		/* cmovne rcx, [rbx]: true */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x8877665544332211ull);
	cpu.rflags = FIXED1 | CF;
	INSN(0x66, 0x0f, 0x46, 0x0b);		/* cmovbe cx, [rbx]: true */
	cpu.gprs[RCX] = 0;
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.gprs[RCX], 0x2211);
	assert_int_equal(cpu.rflags, FIXED1 | CF);
}

/*
 * CMPXCHG8B/16B: a read of the whole operand, then a write of it (the old
 * value when the comparison fails); 16 bytes must be aligned.
 */
static void cmpxchg8b_16b(void **state)
{
	(void)state;
	cpu.gprs[RBX] = 0x1111111155555555ull;
	cpu.gprs[RCX] = 0x2222222266666666ull;
	cpu.gprs[RSI] = MMIO_BASE + 0x40;
	wr_mmio(MMIO_BASE + 0x40, 0x4444444433333333ull, 8);
	cpu.gprs[RAX] = 0xffffffff33333333ull;
	cpu.gprs[RDX] = 0xffffffff44444444ull;
	cpu.rflags = FIXED1;

	INSN(0xf0, 0x0f, 0xc7, 0x0e);		/* lock cmpxchg8b [rsi]: equal */
	assert_int_equal(run_with(&locked_ops), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(0, false, MMIO_BASE + 0x40, 8);
	expect_exit(1, true, MMIO_BASE + 0x40, 8);
	assert_int_equal(exit_value(1), 0x6666666655555555ull);
	assert_int_equal(cpu.rflags, FIXED1 | ZF);
	assert_int_equal(cpu.gprs[RAX], 0xffffffff33333333ull);	/* untouched */
	assert_int_equal(cpu.rip, CODE + 4);

	INSN(0x0f, 0xc7, 0x0e);			/* cmpxchg8b [rsi]: not equal */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 2);
	expect_exit(1, true, MMIO_BASE + 0x40, 8);
	assert_int_equal(exit_value(1), 0x6666666655555555ull);	/* written back */
	assert_int_equal(cpu.gprs[RAX], 0x55555555);		/* zero-extended */
	assert_int_equal(cpu.gprs[RDX], 0x66666666);
	assert_int_equal(cpu.rflags, FIXED1);

	wr_mmio(MMIO_BASE + 0x48, 0x1111111155555555ull, 8);
	cpu.gprs[RAX] = 0x6666666655555555ull;
	cpu.gprs[RDX] = 0x1111111155555555ull;
	INSN(0x48, 0x0f, 0xc7, 0x0e);		/* cmpxchg16b [rsi]: equal */
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(exits.n, 4);
	expect_exit(0, false, MMIO_BASE + 0x40, 8);
	expect_exit(1, false, MMIO_BASE + 0x48, 8);
	expect_exit(2, true, MMIO_BASE + 0x40, 8);
	expect_exit(3, true, MMIO_BASE + 0x48, 8);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x40, 8), cpu.gprs[RBX]);
	assert_int_equal(rd_mmio(MMIO_BASE + 0x48, 8), cpu.gprs[RCX]);
	assert_int_equal(cpu.rflags, FIXED1 | ZF);

	cpu.gprs[RSI] = MMIO_BASE + 0x48;
	INSN(0x48, 0x0f, 0xc7, 0x0e);		/* cmpxchg16b misaligned: #GP(0) */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, GP);
	assert_true(ctxt.exception.has_error_code);
	assert_int_equal(exits.n, 0);

	INSN(0x0f, 0xc7, 0xc8);			/* cmpxchg8b eax: #UD */
	assert_int_equal(run(), KVMPP_EMUL_EXCEPTION);
	assert_int_equal(ctxt.exception.vector, UD);
}

static void unhandleable_instructions(void **state)
{
	static const struct {
		u8 bytes[4];
		unsigned int len;
	} cases[] = {
		{ { 0x0f, 0x0b }, 2 },			/* ud2 */
		{ { 0xf4 }, 1 },			/* hlt */
		{ { 0x8e, 0x03 }, 2 },			/* mov es, [rbx] */
		{ { 0x8c, 0x03 }, 2 },			/* mov [rbx], es */
		{ { 0xff, 0x13 }, 2 },			/* call [rbx] */
		{ { 0xff, 0x33 }, 2 },			/* push [rbx] */
		{ { 0xf3, 0x0f, 0xb8, 0x03 }, 4 },	/* popcnt eax, [rbx] */
		{ { 0xd8, 0x03 }, 2 },			/* fadd dword [rbx] */
		{ { 0xc5, 0xf9, 0x6f, 0x03 }, 4 },	/* vmovdqa */
		{ { 0x90 }, 1 },			/* nop */
		{ { 0x0f, 0xc7, 0xf0 }, 3 },		/* rdrand eax */
		{ { 0x0f, 0xc7, 0x33 }, 3 },		/* vmptrld [rbx] */
		{ { 0xc6, 0xf8, 0x00 }, 3 },		/* xabort */
	};
	unsigned int i;

	(void)state;
	cpu.gprs[RBX] = MMIO_BASE;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kvmpp_emul_cpu before;

		put_code_at(CODE, cases[i].bytes, cases[i].len);
		before = cpu;
		assert_int_equal(run(), KVMPP_EMUL_UNHANDLEABLE);
		assert_memory_equal(&cpu, &before, sizeof(cpu));
		assert_true(ctxt.insn_len >= cases[i].len);
		assert_memory_equal(ctxt.insn, cases[i].bytes, cases[i].len);
	}
	assert_int_equal(exits.n, 0);
	assert_int_equal(count_calls('r') + count_calls('w'), 0);

	cpu.code_size = 3;
	assert_int_equal(run(), -EINVAL);
}

static void rf_is_cleared_on_completion(void **state)
{
	(void)state;
	cpu.rflags |= RF;
	cpu.gprs[RBX] = MMIO_BASE;
	INSN(0x89, 0x03);
	assert_int_equal(run(), KVMPP_EMUL_DONE);
	assert_int_equal(cpu.rflags, FIXED1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(mov_store_to_mmio_each_size),
		T(mov_load_from_mmio_each_size),
		T(byte_registers_with_and_without_rex),
		T(mov_immediate_to_memory),
		T(mov_register_immediate),
		T(mov_moffs),
		T(moffs_in_16_and_32_bit_code),
		T(movzx_movsx),
		T(movsxd),
		T(sib_and_displacements),
		T(rip_relative),
		T(addressing_16_bit),
		T(operand_size_in_each_mode),
		T(segments_in_64_and_32_bit_mode),
		T(alu_flags_edge_values),
		T(alu_immediate_forms),
		T(test_instructions),
		T(inc_dec_keep_cf),
		T(neg_not),
		T(xchg),
		T(locked_rmw_uses_cmpxchg),
		T(lock_prefix_rules),
		T(bt_family),
		T(bt_register_offset_reaches_outside),
		T(movnti),
		T(xadd),
		T(cmpxchg),
		T(mmx_movq),
		T(movnt_stores),
		T(lazy_fpu_and_write_completion),
		T(sse_loads_and_stores_split_in_halves),
		T(sse_alignment_and_state_checks),
		T(rep_stos_to_mmio_exits_per_element),
		T(rep_with_zero_count_does_nothing),
		T(movs_between_mmio_and_ram),
		T(lods_from_mmio),
		T(repe_cmps_stops_on_difference),
		T(repne_scas_stops_on_match),
		T(string_address_sizes),
		T(rep_batches_let_the_guest_run),
		T(fault_in_the_middle_of_rep_keeps_earlier_iterations),
		T(mmio_read_round_trip_step_by_step),
		T(mmio_write_round_trip_step_by_step),
		T(pending_read_is_dropped_when_rip_moves),
		T(registers_changed_under_a_pending_read),
		T(page_straddling_accesses_are_split),
		T(rmw_on_mmio_reads_then_writes),
		T(data_faults_leave_the_vcpu_alone),
		T(fetch_faults_and_page_boundaries),
		T(instruction_length_limit),
		T(unhandleable_instructions),
		T(shifts_and_rotates),
		T(double_shifts),
		T(multiply),
		T(divide),
		T(movd_movq),
		T(setcc),
		T(cmov),
		T(cmpxchg8b_16b),
		T(rf_is_cleared_on_completion),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
