// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the backends' exit handlers share: resolving an NPT/EPT fault, and the
 * KVM_EXIT_INTERNAL_ERROR reports KVM gives. Each returns what an exit
 * handler returns: 1 to re-enter the guest, 0 to go to userspace, or -errno.
 */
#include <linux/kvm.h>

#include "../core/kvmpp.h"

/*
 * An instruction kvmpp cannot emulate: KVM_INTERNAL_ERROR_EMULATION with the
 * flags, the instruction bytes fetched (when @len), and the backend's exit
 * information, in KVM's layout (data[0] is the flags word).
 */
int kvmpp_x86_emulation_failure_insn(struct kvmpp_vcpu *vcpu, const u8 *insn, unsigned int len)
{
	struct kvm_run *run = vcpu->run;
	unsigned int first = 1;
	u64 info[5] = {};

	kvmpp_backend->get_exit_info(vcpu, info);
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.flags = 0;
	if (len) {
		len = min_t(unsigned int, len, sizeof(run->emulation_failure.insn_bytes));
		run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
		run->emulation_failure.insn_size = len;
		memset(run->emulation_failure.insn_bytes, 0x90,
		       sizeof(run->emulation_failure.insn_bytes));
		memcpy(run->emulation_failure.insn_bytes, insn, len);
		first += 2;
	}
	memcpy(&run->internal.data[first], info, sizeof(info));
	run->emulation_failure.ndata = first + ARRAY_SIZE(info);
	return 0;
}

int kvmpp_x86_emulation_failure(struct kvmpp_vcpu *vcpu)
{
	return kvmpp_x86_emulation_failure_insn(vcpu, NULL, 0);
}
EXPORT_SYMBOL_GPL(kvmpp_x86_emulation_failure);

/* An exit the backend did not ask for: the hardware's reason and the CPU, as KVM. */
int kvmpp_x86_unexpected_exit(struct kvmpp_vcpu *vcpu, u64 reason)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON;
	run->internal.ndata = 2;
	run->internal.data[0] = reason;
	run->internal.data[1] = vcpu->cpu;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_unexpected_exit);

/*
 * A nested page fault (NPF) or EPT violation at @gpa for @access
 * (KVMPP_TDP_ACCESS_*). An access no memslot backs, or a write to a read-only
 * slot, is MMIO: the instruction is emulated (mmio.c).
 */
int kvmpp_x86_tdp_fault(struct kvmpp_vcpu *vcpu, u64 gpa, u32 access)
{
	int r = kvmpp_tdp_page_fault(vcpu, gpa, access);

	if (r < 0)
		return r == -EAGAIN ? 1 : r;
	if (r == KVMPP_TDP_MAPPED)
		return 1;
	return kvmpp_x86_emulate_mmio(vcpu, gpa, access & KVMPP_TDP_ACCESS_FETCH,
				      r == KVMPP_TDP_NO_SLOT);
}
EXPORT_SYMBOL_GPL(kvmpp_x86_tdp_fault);
