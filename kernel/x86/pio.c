// SPDX-License-Identifier: GPL-2.0-only
/*
 * Port I/O exits to userspace (KVM_EXIT_IO): IN/OUT of 1, 2 or 4 bytes and the
 * string forms INS/OUTS, with or without REP.
 *
 * As in KVM, an instruction completes on the next KVM_RUN: until then RIP
 * still points at it, OUT data sits in the PIO page and IN data is expected
 * there. If userspace moves RIP meanwhile, the instruction is dropped.
 *
 * The string forms follow KVM's emulator: OUTS sends one element per exit;
 * INS asks for as many as fit up to the end of the destination page (counted
 * in bytes, as KVM does), at most 1024 bytes' worth and at most the REP count.
 * A REP instruction with elements left runs again, from the same RIP.
 * OUT and OUTS to a coalesced PIO zone (core/coalesced_mmio.c) complete at
 * once, their data in the coalesced ring.
 */
#include <linux/kvm.h>
#include <linux/mm.h>

#include "../core/kvmpp.h"

/* KVM's read-ahead buffer for INS: sizeof(struct read_cache.data). */
#define KVMPP_PIO_IN_BYTES 1024

static unsigned long addr_mask(const struct kvmpp_io_insn *insn)
{
	return insn->addr_size == 8 ? ~0UL : (1UL << (insn->addr_size * 8)) - 1;
}

/* Write @value into a register as an @addr_size-wide operation does. */
static void set_sized(unsigned long *reg, unsigned long value, int addr_size)
{
	if (addr_size == 2)
		*reg = (*reg & ~0xffffUL) | (value & 0xffff);
	else if (addr_size == 4)
		*reg = (u32)value;
	else
		*reg = value;
}

static int start_exit(struct kvmpp_vcpu *vcpu, const struct kvmpp_io_insn *insn, u32 count)
{
	struct kvmpp_pio *pio = &vcpu->arch.pio;
	struct kvm_run *run = vcpu->run;

	/* Userspace finds zeros where it is to put IN data, as with KVM. */
	if (insn->in)
		memset(vcpu->pio_data, 0, insn->size * count);
	pio->pending = true;
	pio->insn = *insn;
	pio->count = count;
	pio->rip = vcpu->arch.rip;

	/* An OUT to a coalesced PIO zone goes into the ring, without an exit. */
	if (!insn->in && kvmpp_coalesced_write(vcpu->vm, insn->port, insn->size,
					       vcpu->pio_data, true))
		return kvmpp_x86_complete_userspace_io(vcpu);

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = insn->in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = insn->size;
	run->io.port = insn->port;
	run->io.count = count;
	run->io.data_offset = KVM_PIO_PAGE_OFFSET * PAGE_SIZE;
	return 0;
}

/*
 * What the backend could not tell about a string instruction: its segment (DS
 * unless overridden) and a 0x67 address-size override, read from the prefixes
 * of the instruction itself.
 */
static void decode_string_prefixes(struct kvmpp_vcpu *vcpu, struct kvmpp_io_insn *insn)
{
	static const s8 overrides[256] = {
		[0x26] = KVMPP_SEG_ES + 1, [0x2e] = KVMPP_SEG_CS + 1, [0x36] = KVMPP_SEG_SS + 1,
		[0x3e] = KVMPP_SEG_DS + 1, [0x64] = KVMPP_SEG_FS + 1, [0x65] = KVMPP_SEG_GS + 1,
	};
	int seg = KVMPP_SEG_DS, i;
	bool addr_override = false;
	u8 bytes[15];

	if (kvmpp_x86_read_linear(vcpu, kvmpp_backend->get_segment_base(vcpu, KVMPP_SEG_CS) +
				  vcpu->arch.rip, bytes, sizeof(bytes)))
		memset(bytes, 0x90, sizeof(bytes));	/* unreadable: no prefixes */
	for (i = 0; i < sizeof(bytes); i++) {
		u8 b = bytes[i];

		if (overrides[b])
			seg = overrides[b] - 1;
		else if (b == 0x67)
			addr_override = true;
		else if (b != 0x66 && b != 0xf2 && b != 0xf3 && b != 0xf0 &&
			 !(insn->addr_size == 8 && (b & 0xf0) == 0x40))	/* REX */
			break;
	}
	if (insn->seg < 0)
		insn->seg = seg;
	if (insn->addr_size_from_mode && addr_override)
		insn->addr_size = insn->addr_size == 4 ? 2 : 4;	/* 64 -> 32, 32 <-> 16 */
}

int kvmpp_x86_pio(struct kvmpp_vcpu *vcpu, const struct kvmpp_io_insn *decoded)
{
	struct kvmpp_io_insn decoded_copy = *decoded, *insn = &decoded_copy;
	unsigned long *regs = vcpu->arch.regs;
	bool down = vcpu->arch.rflags & X86_EFLAGS_DF;
	unsigned long mask;
	u32 count;
	int r;

	if (!insn->string) {
		if (!insn->in)
			memcpy(vcpu->pio_data, &regs[__VCPU_REGS_RAX], insn->size);
		return start_exit(vcpu, insn, 1);
	}

	if (insn->seg < 0 || insn->addr_size_from_mode)
		decode_string_prefixes(vcpu, insn);
	mask = addr_mask(insn);

	count = insn->rep ? regs[__VCPU_REGS_RCX] & mask : 1;
	if (!count) {
		/* REP with a zero count does nothing. */
		vcpu->arch.rip = insn->next_rip;
		return 1;
	}

	if (!insn->in) {
		u64 src = kvmpp_backend->get_segment_base(vcpu, insn->seg) +
			  (regs[__VCPU_REGS_RSI] & mask);

		r = kvmpp_x86_read_linear(vcpu, src, vcpu->pio_data, insn->size);
		return r ? (r > 0 ? 1 : r) : start_exit(vcpu, insn, 1);
	} else {
		unsigned long di = regs[__VCPU_REGS_RDI] & mask;
		u32 in_page = down ? offset_in_page(di) : PAGE_SIZE - offset_in_page(di);

		count = min3(in_page, (u32)KVMPP_PIO_IN_BYTES / insn->size, count);
		return start_exit(vcpu, insn, max(count, 1u));
	}
}
EXPORT_SYMBOL_GPL(kvmpp_x86_pio);

/* Store what userspace put in the PIO page: into RAX, or to ES:RDI for INS. */
static int complete_in(struct kvmpp_vcpu *vcpu)
{
	const struct kvmpp_pio *pio = &vcpu->arch.pio;
	unsigned long *rax = &vcpu->arch.regs[__VCPU_REGS_RAX];
	unsigned long di, mask = addr_mask(&pio->insn);
	int size = pio->insn.size;
	u32 i;
	int r;

	if (!pio->insn.string) {
		if (size == 1)
			*rax = (*rax & ~0xffUL) | *(u8 *)vcpu->pio_data;
		else if (size == 2)
			*rax = (*rax & ~0xffffUL) | *(u16 *)vcpu->pio_data;
		else
			*rax = *(u32 *)vcpu->pio_data;	/* zero-extends into RAX */
		return 0;
	}

	di = vcpu->arch.regs[__VCPU_REGS_RDI];
	for (i = 0; i < pio->count; i++) {
		u64 dst = kvmpp_backend->get_segment_base(vcpu, KVMPP_SEG_ES) + (di & mask);

		r = kvmpp_x86_write_linear(vcpu, dst, vcpu->pio_data + i * size, size);
		if (r)
			return r;
		di += vcpu->arch.rflags & X86_EFLAGS_DF ? -size : size;
	}
	set_sized(&vcpu->arch.regs[__VCPU_REGS_RDI], di, pio->insn.addr_size);
	return 0;
}

/* Finish the I/O instruction userspace has handled; 1: go on into the guest. */
int kvmpp_x86_complete_userspace_io(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_pio *pio = &vcpu->arch.pio;
	const struct kvmpp_io_insn *insn = &pio->insn;
	unsigned long *regs = vcpu->arch.regs;
	int r = 0;

	pio->pending = false;
	if (vcpu->arch.rip != pio->rip)
		return 1;

	if (insn->in)
		r = complete_in(vcpu);
	if (r)
		return r > 0 ? 1 : r;	/* a fault went to the guest */

	if (insn->string) {
		long step = (vcpu->arch.rflags & X86_EFLAGS_DF) ? -insn->size : insn->size;

		if (!insn->in)
			set_sized(&regs[__VCPU_REGS_RSI], regs[__VCPU_REGS_RSI] + step,
				  insn->addr_size);
		if (insn->rep) {
			set_sized(&regs[__VCPU_REGS_RCX], regs[__VCPU_REGS_RCX] - pio->count,
				  insn->addr_size);
			if (regs[__VCPU_REGS_RCX] & addr_mask(insn))
				return 1;	/* elements left: run the instruction again */
		}
	}
	vcpu->arch.rip = insn->next_rip;
	return 1;
}
