// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_SET_CPUID2 / KVM_GET_CPUID2 and the guest's CPUID instruction, answered in
 * the kernel from the table userspace set (x86/cpuid_table.c).
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "../core/kvmpp.h"
#include "cpuid_table.h"

/* KVM_MAX_CPUID_ENTRIES in KVM. */
#define KVMPP_MAX_CPUID_ENTRIES 256

void kvmpp_x86_free_cpuid(struct kvmpp_vcpu *vcpu)
{
	kvfree(vcpu->arch.cpuid_entries);
	vcpu->arch.cpuid_entries = NULL;
	vcpu->arch.cpuid_nent = 0;
}

long kvmpp_x86_set_cpuid2(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_cpuid2 __user *user = argp;
	struct kvm_cpuid_entry2 *entries = NULL;
	struct kvm_cpuid2 header;
	size_t size;

	if (copy_from_user(&header, user, sizeof(header)))
		return -EFAULT;
	if (header.nent > KVMPP_MAX_CPUID_ENTRIES)
		return -E2BIG;
	size = header.nent * sizeof(*entries);
	if (header.nent) {
		entries = vmemdup_user(user->entries, size);
		if (IS_ERR(entries))
			return PTR_ERR(entries);
	}
	/* Once the vCPU has run, KVM accepts only the table it already has. */
	if (vcpu->cpu >= 0 &&
	    (header.nent != vcpu->arch.cpuid_nent ||
	     (size && memcmp(entries, vcpu->arch.cpuid_entries, size)))) {
		kvfree(entries);
		return -EINVAL;
	}
	kvmpp_x86_free_cpuid(vcpu);
	vcpu->arch.cpuid_entries = entries;
	vcpu->arch.cpuid_nent = header.nent;
	return 0;
}

long kvmpp_x86_get_cpuid2(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_cpuid2 __user *user = argp;
	struct kvm_cpuid2 header;
	int nent = vcpu->arch.cpuid_nent;

	if (copy_from_user(&header, user, sizeof(header)))
		return -EFAULT;
	if (header.nent < nent)
		return -E2BIG;
	if (nent && copy_to_user(user->entries, vcpu->arch.cpuid_entries,
				 nent * sizeof(*vcpu->arch.cpuid_entries)))
		return -EFAULT;
	header.nent = nent;
	if (copy_to_user(user, &header, sizeof(header)))
		return -EFAULT;
	return 0;
}

/* The guest executed CPUID: answer in EAX..EDX. The backend skips the instruction. */
void kvmpp_x86_emulate_cpuid(struct kvmpp_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	u32 out[4];

	kvmpp_cpuid_lookup(vcpu->arch.cpuid_entries, vcpu->arch.cpuid_nent,
			   r[__VCPU_REGS_RAX], r[__VCPU_REGS_RCX], out);
	r[__VCPU_REGS_RAX] = out[0];
	r[__VCPU_REGS_RBX] = out[1];
	r[__VCPU_REGS_RCX] = out[2];
	r[__VCPU_REGS_RDX] = out[3];
}
EXPORT_SYMBOL_GPL(kvmpp_x86_emulate_cpuid);
