// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_SET_CPUID2 / KVM_GET_CPUID2 and the guest's CPUID instruction, answered in
 * the kernel from the table userspace set (x86/cpuid_table.c).
 */
#include <linux/slab.h>
#include <linux/uaccess.h>

#include <asm/cpufeature.h>
#include <asm/msr-index.h>

#include "../core/kvmpp.h"
#include "cpuid_table.h"
#include "walker.h"

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

/*
 * Leaf 1 bits that follow the vCPU's state, as in KVM: OSXSAVE mirrors CR4 (on
 * hosts with XSAVE), APIC the enable bit of the APIC base.
 */
static void cpuid_runtime_bits(struct kvmpp_vcpu *vcpu, u32 function, u32 *ecx, u32 *edx)
{
	struct kvmpp_walk_mode mode = {};
	u32 apic = BIT(X86_FEATURE_APIC & 31), osxsave = BIT(X86_FEATURE_OSXSAVE & 31);

	if (function != 1)
		return;
	*edx = (vcpu->arch.apic_base & MSR_IA32_APICBASE_ENABLE) ? *edx | apic : *edx & ~apic;
	if (boot_cpu_has(X86_FEATURE_XSAVE)) {
		kvmpp_backend->get_paging_mode(vcpu, &mode);
		*ecx = (mode.cr4 & X86_CR4_OSXSAVE) ? *ecx | osxsave : *ecx & ~osxsave;
	}
}

long kvmpp_x86_get_cpuid2(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_cpuid2 __user *user = argp;
	struct kvm_cpuid2 header;
	int i, nent = vcpu->arch.cpuid_nent;

	if (copy_from_user(&header, user, sizeof(header)))
		return -EFAULT;
	if (header.nent < nent)
		return -E2BIG;
	for (i = 0; i < nent; i++) {
		struct kvm_cpuid_entry2 e = vcpu->arch.cpuid_entries[i];

		cpuid_runtime_bits(vcpu, e.function, &e.ecx, &e.edx);
		if (copy_to_user(&user->entries[i], &e, sizeof(e)))
			return -EFAULT;
	}
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
	/* Only an entry the table has gets the runtime bits (KVM edits its entry). */
	if ((u32)r[__VCPU_REGS_RAX] == 1 &&
	    kvmpp_cpuid_find(vcpu->arch.cpuid_entries, vcpu->arch.cpuid_nent, 1, 0))
		cpuid_runtime_bits(vcpu, 1, &out[2], &out[3]);
	r[__VCPU_REGS_RAX] = out[0];
	r[__VCPU_REGS_RBX] = out[1];
	r[__VCPU_REGS_RCX] = out[2];
	r[__VCPU_REGS_RDX] = out[3];
}
EXPORT_SYMBOL_GPL(kvmpp_x86_emulate_cpuid);
