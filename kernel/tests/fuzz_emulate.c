// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for kernel/x86/emulate.c: arbitrary instruction bytes,
 * register values, modes and device answers, run through the whole MMIO
 * round trip against fake guest memory (RAM, MMIO, holes that fault), with
 * callbacks that fail now and then. ASan/UBSan catch memory and arithmetic
 * errors; the checks below catch broken contracts (access sizes, page
 * boundaries, results, state left behind). Build and run: make fuzz.
 *
 * Input: 15 instruction bytes (or, in structured mode, prefixes and an
 * opcode picked from the handled ones, and the rest), a mode byte, 16 register selectors, an
 * RFLAGS byte, a segment byte, then a stream the fake callbacks consume
 * (MMIO read data, injected failures, what the VMM does between exits).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/emulate.h"

#define RAM_BASE	0x10000ull
#define RAM_SIZE	0x10000ull
#define MMIO_BASE	0x20000ull
#define MMIO_SIZE	0x10000ull
#define CODE		(RAM_BASE + 0x3ff8)	/* 8 bytes before a page boundary */
#define CR0_TS		0x8ull
#define CR4_OSFXSR	0x200ull
#define RFLAGS_ARITH_DF	0xcd5ull
#define HEADER		(15 + 1 + 16 + 1 + 1)

/* A broken contract: stop here so that libFuzzer keeps the input. */
#define CHECK(cond)				\
	do {					\
		if (!(cond))			\
			__builtin_trap();	\
	} while (0)

static u8 ram[RAM_SIZE], ram_pattern[RAM_SIZE];

static struct {
	const u8 *stream;
	size_t left;
} in;

static u8 next_byte(void)
{
	if (!in.left)
		return 0;
	in.left--;
	return *in.stream++;
}

static bool in_range(u64 linear, unsigned int len, u64 base, u64 size)
{
	return linear >= base && linear + len <= base + size;
}

/* An injected failure, or 0: the stream decides. */
static int injected(bool is_cmpxchg)
{
	switch (next_byte()) {
	case 0xff:
		return KVMPP_EMUL_FAULT;
	case 0xfe:
		return -EFAULT;
	case 0xfd:
		return 7;			/* not a valid result: the emulator must cope */
	case 0xfc:
		return is_cmpxchg ? KVMPP_EMUL_CHANGED : 0;
	default:
		return 0;
	}
}

static int fuzz_fetch(void *ctx, u64 linear, void *buf, unsigned int len)
{
	int r;

	(void)ctx;
	CHECK(len >= 1 && len <= KVMPP_EMUL_MAX_INSN);
	CHECK((linear & 0xfff) + len <= 0x1000);
	r = injected(false);
	if (r)
		return r;
	if (in_range(linear, len, MMIO_BASE, MMIO_SIZE))
		return KVMPP_EMUL_IO;
	if (!in_range(linear, len, RAM_BASE, RAM_SIZE))
		return KVMPP_EMUL_FAULT;
	memcpy(buf, ram + (linear - RAM_BASE), len);
	return 0;
}

static int data_access(u64 linear, unsigned int len, u64 *gpa, bool is_cmpxchg)
{
	int r;

	CHECK(len >= 1 && len <= KVMPP_EMUL_MAX_ACCESS);
	CHECK((linear & 0xfff) + len <= 0x1000);
	r = injected(is_cmpxchg);
	if (r)
		return r;
	if (in_range(linear, len, MMIO_BASE, MMIO_SIZE)) {
		*gpa = 0xfe000000ull + linear;
		return KVMPP_EMUL_IO;
	}
	if (!in_range(linear, len, RAM_BASE, RAM_SIZE))
		return KVMPP_EMUL_FAULT;
	return 0;
}

static int fuzz_read(void *ctx, u64 linear, void *buf, unsigned int len, u64 *gpa)
{
	int r = data_access(linear, len, gpa, false);

	(void)ctx;
	if (!r)
		memcpy(buf, ram + (linear - RAM_BASE), len);
	return r;
}

static int fuzz_write(void *ctx, u64 linear, const void *buf, unsigned int len, u64 *gpa)
{
	int r = data_access(linear, len, gpa, false);

	(void)ctx;
	if (!r)
		memcpy(ram + (linear - RAM_BASE), buf, len);
	return r;
}

static int fuzz_cmpxchg(void *ctx, u64 linear, const void *old, const void *new,
			unsigned int len, u64 *gpa)
{
	int r = data_access(linear, len, gpa, true);

	(void)ctx;
	if (r)
		return r;
	if (memcmp(ram + (linear - RAM_BASE), old, len))
		return KVMPP_EMUL_CHANGED;
	memcpy(ram + (linear - RAM_BASE), new, len);
	return 0;
}

static const struct kvmpp_emul_ops plain_ops = {
	.fetch = fuzz_fetch, .read = fuzz_read, .write = fuzz_write,
};

static const struct kvmpp_emul_ops cmpxchg_ops = {
	.fetch = fuzz_fetch, .read = fuzz_read, .write = fuzz_write, .cmpxchg = fuzz_cmpxchg,
};

/* A register value: small, or an address in RAM or MMIO (some near page ends), or all ones. */
static u64 register_value(u8 sel)
{
	u64 low = sel & 0x3f;

	switch (sel >> 6) {
	case 0:
		return low;
	case 1:
		return RAM_BASE + 0x8000 + low * 0x41;
	case 2:
		return MMIO_BASE + low * 0x3ff;
	default:
		return low & 1 ? ~0ull - low : 0xffffffff00000000ull | (MMIO_BASE + low);
	}
}

static const u64 seg_bases[4] = { 0, RAM_BASE, MMIO_BASE, 0xfffff000ull };

/*
 * The opcodes the emulator handles. Its decoder looks opcodes up in tables,
 * which gives libFuzzer no comparisons to steer by; in structured mode the
 * input picks prefixes and an opcode from these lists instead.
 */
static const u8 opcodes[][2] = {
	{ 0x00 }, { 0x01 }, { 0x02 }, { 0x03 }, { 0x04 }, { 0x05 }, { 0x09 }, { 0x0b },
	{ 0x11 }, { 0x13 }, { 0x19 }, { 0x1b }, { 0x21 }, { 0x23 }, { 0x29 }, { 0x2b },
	{ 0x31 }, { 0x33 }, { 0x38 }, { 0x39 }, { 0x3a }, { 0x3b }, { 0x3d }, { 0x63 },
	{ 0x80 }, { 0x81 }, { 0x82 }, { 0x83 }, { 0x84 }, { 0x85 }, { 0x86 }, { 0x87 },
	{ 0x88 }, { 0x89 }, { 0x8a }, { 0x8b }, { 0xa0 }, { 0xa1 }, { 0xa2 }, { 0xa3 },
	{ 0xa4 }, { 0xa5 }, { 0xa6 }, { 0xa7 }, { 0xa8 }, { 0xa9 }, { 0xaa }, { 0xab },
	{ 0xac }, { 0xad }, { 0xae }, { 0xaf }, { 0xb4 }, { 0xbb }, { 0xc6 }, { 0xc7 },
	{ 0xf6 }, { 0xf7 }, { 0xfe }, { 0xff },
	{ 0x0f, 0x10 }, { 0x0f, 0x11 }, { 0x0f, 0x28 }, { 0x0f, 0x29 }, { 0x0f, 0x6f },
	{ 0x0f, 0x7f }, { 0x0f, 0xa3 }, { 0x0f, 0xab }, { 0x0f, 0xb3 }, { 0x0f, 0xbb },
	{ 0x0f, 0xba }, { 0x0f, 0xb6 }, { 0x0f, 0xb7 }, { 0x0f, 0xbe }, { 0x0f, 0xbf },
	{ 0x0f, 0xc3 },
	{ 0x69 }, { 0x6b }, { 0xc0 }, { 0xc1 }, { 0xd0 }, { 0xd1 }, { 0xd2 }, { 0xd3 },
	{ 0x0f, 0xa4 }, { 0x0f, 0xa5 }, { 0x0f, 0xac }, { 0x0f, 0xad }, { 0x0f, 0xaf },
	{ 0x0f, 0x6e }, { 0x0f, 0x7e }, { 0x0f, 0xd6 },
	{ 0x0f, 0x44 }, { 0x0f, 0x4f }, { 0x0f, 0x92 }, { 0x0f, 0x9d }, { 0x0f, 0xc7 },
};

static const u8 prefixes[] = {
	0xf0, 0xf2, 0xf3, 0x66, 0x67, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x40, 0x41, 0x44, 0x48, 0x4f,
};

/* Structured mode: @raw[0] & 3 prefixes picked by raw[1..3], an opcode by raw[4], then raw[5..]. */
static void structured_insn(const u8 *raw, u8 *insn)
{
	const u8 *op = opcodes[raw[4] % ARRAY_SIZE(opcodes)];
	unsigned int n = 0, i;

	for (i = 0; i < (raw[0] & 3u); i++)
		insn[n++] = prefixes[raw[1 + i] % ARRAY_SIZE(prefixes)];
	insn[n++] = op[0];
	if (op[0] == 0x0f)
		insn[n++] = op[1];
	for (i = 5; n < 15; i++)
		insn[n++] = raw[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int code_sizes[4] = { 2, 4, 8, 8 };
	u8 header[HEADER] = { 0 }, insn[15];
	struct kvmpp_emul_cpu cpu = { 0 }, before;
	struct kvmpp_emul_ctxt ctxt = { 0 };
	const struct kvmpp_emul_ops *ops;
	u8 mode, segs;
	int i, r, rounds;

	memcpy(header, data, size < HEADER ? size : HEADER);
	in.stream = data + HEADER;
	in.left = size > HEADER ? size - HEADER : 0;
	mode = header[15];
	segs = header[33];
	if (mode & 0x40)
		structured_insn(header, insn);
	else
		memcpy(insn, header, sizeof(insn));

	if (!ram_pattern[1])
		for (i = 0; i < (int)RAM_SIZE; i++)
			ram_pattern[i] = (u8)(i * 13);
	memcpy(ram, ram_pattern, RAM_SIZE);	/* what earlier inputs wrote is gone */
	cpu.code_size = code_sizes[mode & 3];
	ops = (mode & 4) ? &cmpxchg_ops : &plain_ops;
	cpu.cr0 = (mode & 8) ? CR0_TS : 0;
	cpu.cr4 = (mode & 16) ? 0 : CR4_OSFXSR;
	for (i = 0; i < 16; i++)
		cpu.gprs[i] = register_value(header[16 + i]);
	cpu.rflags = 0x2 | (header[32] & RFLAGS_ARITH_DF) | (header[32] & 0x20 ? 0x400 : 0);
	for (i = 0; i < 16; i++)
		memset(cpu.xmm[i], 0x11 * i, 16);
	cpu.seg_base[KVMPP_EMUL_DS] = seg_bases[segs & 3];
	cpu.seg_base[KVMPP_EMUL_ES] = seg_bases[(segs >> 2) & 3];
	cpu.seg_base[KVMPP_EMUL_SS] = seg_bases[(segs >> 4) & 3];
	cpu.seg_base[KVMPP_EMUL_FS] = seg_bases[(segs >> 6) & 3];
	cpu.seg_base[KVMPP_EMUL_GS] = MMIO_BASE;
	if (cpu.code_size == 8) {
		cpu.rip = CODE;
		memcpy(ram + (CODE - RAM_BASE), insn, 15);
	} else if (cpu.code_size == 2 && (mode & 0x20)) {
		/* IP wraps from 0xffff to 0 in the middle of the instruction. */
		cpu.seg_base[KVMPP_EMUL_CS] = RAM_BASE;
		cpu.rip = 0xfffa;
		memcpy(ram + 0xfffa, insn, 6);
		memcpy(ram, insn + 6, 9);
	} else {
		cpu.seg_base[KVMPP_EMUL_CS] = RAM_BASE;
		cpu.rip = CODE - RAM_BASE;
		memcpy(ram + (CODE - RAM_BASE), insn, 15);
	}

	before = cpu;
	for (rounds = 0; rounds < 64; rounds++) {
		r = kvmpp_emulate(ops, &cpu, &ctxt);
		if (r == KVMPP_EMUL_IO) {
			struct kvmpp_emul_io *io = &ctxt.io;

			CHECK(kvmpp_emul_pending(&ctxt));
			CHECK(io->len >= 1 && io->len <= KVMPP_EMUL_MAX_ACCESS);
			CHECK((io->linear & 0xfff) + io->len <= 0x1000);
			CHECK(in_range(io->linear, io->len, MMIO_BASE, MMIO_SIZE));
			CHECK(io->gpa == 0xfe000000ull + io->linear);
			if (!io->write) {
				/* Nothing committed yet, unless REP iterations before this one (RCX moved). */
				CHECK(rounds || cpu.gprs[1] != before.gprs[1] ||
				      !memcmp(&cpu, &before, sizeof(cpu)));
				for (i = 0; i < (int)io->len; i++)
					io->data[i] = next_byte();
			}
			/* Sometimes the VMM changes its mind: reset, move RIP, change registers. */
			switch (next_byte()) {
			case 0xfb:
				kvmpp_emul_reset(&ctxt);
				CHECK(!kvmpp_emul_pending(&ctxt));
				break;
			case 0xfa:
				cpu.rip += 1;
				break;
			case 0xf9:
				cpu.gprs[next_byte() & 15] += 8;
				break;
			}
			continue;
		}
		CHECK(!kvmpp_emul_pending(&ctxt));
		switch (r) {
		case KVMPP_EMUL_DONE:
			/* A REP instruction may want another round from the same RIP. */
			if (cpu.rip == before.rip && next_byte() < 0x80)
				continue;
			return 0;
		case KVMPP_EMUL_UNHANDLEABLE:
			CHECK(ctxt.insn_len <= KVMPP_EMUL_MAX_INSN);
			CHECK(rounds || !memcmp(&cpu, &before, sizeof(cpu)));
			return 0;
		case KVMPP_EMUL_EXCEPTION:
			CHECK(ctxt.exception.vector == 0 || ctxt.exception.vector == 6 ||
			      ctxt.exception.vector == 7 || ctxt.exception.vector == 13);
			CHECK(rounds || !memcmp(&cpu, &before, sizeof(cpu)));
			return 0;
		case KVMPP_EMUL_FAULT:
		case -EFAULT:
		case -EIO:
		case -EINVAL:
			return 0;
		default:
			CHECK(0);	/* a result the contract does not have */
		}
	}
	return 0;
}
