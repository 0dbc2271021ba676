// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the backends' exit handlers share: resolving an NPT/EPT fault, and the
 * KVM_EXIT_INTERNAL_ERROR reports KVM gives. Each returns what an exit
 * handler returns: 1 to re-enter the guest, 0 to go to userspace, or -errno.
 */
#include <linux/kvm.h>

#include "../core/kvmpp.h"

/* An instruction kvmpp cannot emulate (or, until the emulator is wired, MMIO). */
int kvmpp_x86_emulation_failure(struct kvmpp_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->internal.ndata = 0;
	return 0;
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

/* A nested page fault (NPF) or EPT violation at @gpa for @access (KVMPP_TDP_ACCESS_*). */
int kvmpp_x86_tdp_fault(struct kvmpp_vcpu *vcpu, u64 gpa, u32 access)
{
	int r = kvmpp_tdp_page_fault(vcpu, gpa, access);

	if (r < 0)
		return r == -EAGAIN ? 1 : r;
	if (r == KVMPP_TDP_MAPPED)
		return 1;
	/* MMIO (no slot, or a write to a read-only one) needs the emulator: not yet. */
	return kvmpp_x86_emulation_failure(vcpu);
}
EXPORT_SYMBOL_GPL(kvmpp_x86_tdp_fault);
