// SPDX-License-Identifier: GPL-2.0-only
/*
 * The task-priority register (CR8) without an in-kernel APIC: userspace owns
 * the TPR, so a guest that lowers it exits with KVM_EXIT_SET_TPR (an interrupt
 * userspace held back may now be deliverable), as in KVM. Raising it does not
 * exit.
 *
 * Backends intercept writes to CR8 and call kvmpp_x86_write_cr8(). Without
 * decode assists the source register comes from the instruction itself:
 * [prefixes] 0F 22 /r, with REX.R (64-bit mode) or LOCK (AMD's CR8 alias of
 * CR0 outside 64-bit mode) selecting CR8.
 */
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>

#include "../core/kvmpp.h"

/* The GPR a MOV to CR8 reads, and its length; -1 if @bytes is not one. */
static int decode_mov_to_cr8(const u8 *bytes, int len, bool long_mode, int *insn_len)
{
	bool lock = false;
	u8 rex = 0;
	int i = 0, cr;

	for (; i < len; i++) {
		u8 b = bytes[i];

		if (b == 0xf0)
			lock = true;
		else if (long_mode && (b & 0xf0) == 0x40)
			rex = b;	/* REX: must come last, right before the opcode */
		else if (b != 0x66 && b != 0x67 && b != 0xf2 && b != 0xf3 && b != 0x2e &&
			 b != 0x36 && b != 0x3e && b != 0x26 && b != 0x64 && b != 0x65)
			break;
	}
	if (i + 3 > len || bytes[i] != 0x0f || bytes[i + 1] != 0x22)
		return -1;
	cr = ((bytes[i + 2] >> 3) & 7) | (rex & 0x4 ? 8 : 0);
	if (lock && cr == 0)
		cr = 8;
	if (cr != 8)
		return -1;
	*insn_len = i + 3;
	return (bytes[i + 2] & 7) | (rex & 0x1 ? 8 : 0);
}

/*
 * A guest MOV to CR8 of @value. Returns -EINVAL when @value has reserved bits:
 * #GP is queued and the MOV did not happen. Otherwise CR8 is set and the caller
 * completes the MOV (skips it), then goes on into the guest (1) or exits with
 * KVM_EXIT_SET_TPR (0: the guest lowered its task priority).
 */
int kvmpp_x86_set_cr8(struct kvmpp_vcpu *vcpu, unsigned long value)
{
	u8 old = vcpu->arch.cr8;

	if (value & ~X86_CR8_TPR) {
		kvmpp_backend->inject_exception(vcpu, X86_TRAP_GP, true, 0);
		return -EINVAL;
	}
	vcpu->arch.cr8 = value;
	if (value >= old)
		return 1;
	vcpu->run->exit_reason = KVM_EXIT_SET_TPR;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_set_cr8);

/* The same for a backend without decode assists: the MOV is read from memory. */
int kvmpp_x86_write_cr8(struct kvmpp_vcpu *vcpu)
{
	bool long_mode = kvmpp_backend->is_long_mode(vcpu);
	u64 cs = kvmpp_backend->get_segment_base(vcpu, KVMPP_SEG_CS);
	unsigned long value;
	u8 bytes[15];
	int gpr, len, r;

	r = kvmpp_x86_read_linear(vcpu, cs + vcpu->arch.rip, bytes, sizeof(bytes));
	if (r)
		return r > 0 ? 1 : r;
	gpr = decode_mov_to_cr8(bytes, sizeof(bytes), long_mode, &len);
	if (gpr < 0)
		return kvmpp_x86_emulation_failure(vcpu);
	value = vcpu->arch.regs[gpr];
	if (!long_mode)
		value = (u32)value;
	r = kvmpp_x86_set_cr8(vcpu, value);
	if (r < 0)
		return 1;
	vcpu->arch.rip += len;
	return r;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_write_cr8);
