// SPDX-License-Identifier: GPL-2.0-only
/*
 * Model-specific registers: which ones a guest has, their rules, and the ways
 * to reach them (guest RDMSR/WRMSR, KVM_GET/SET_MSRS, KVM_GET_MSR_INDEX_LIST).
 *
 * The core checks every value; the backend stores the MSRs its control
 * structure holds (VMCB/VMCS: EFER, the syscall MSRs, PAT). An MSR not listed
 * here does not exist for the guest: RDMSR/WRMSR raise #GP, as in KVM.
 */
#include <linux/kvm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/apicdef.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/processor.h>

#include "../core/kvmpp.h"
#include "cpuid_table.h"

static const u32 kvmpp_msrs[] = {
	MSR_EFER, MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
	MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
	MSR_IA32_TSC, MSR_IA32_CR_PAT, MSR_IA32_APICBASE,
};

/* KVM's limit on one KVM_GET/SET_MSRS call (MAX_IO_MSRS). */
#define KVMPP_MAX_IO_MSRS 256

/* Canonical for the host's (and so the guest's) 48-bit linear addresses. */
static bool is_canonical(u64 addr)
{
	return ((s64)addr << 16 >> 16) == (s64)addr;
}

/* Whether the guest's CPUID (leaf 0x80000001 EDX) offers a feature bit. */
static bool guest_ext_feature(struct kvmpp_vcpu *vcpu, int edx_bit)
{
	u32 out[4];

	kvmpp_cpuid_lookup(vcpu->arch.cpuid_entries, vcpu->arch.cpuid_nent,
			   0x80000001, 0, out);
	return out[3] & BIT(edx_bit);
}

static bool efer_valid(struct kvmpp_vcpu *vcpu, u64 efer, bool host)
{
	u64 allowed = EFER_LMA;

	/* KVM checks SCE against the host only, even for guest writes. */
	if (boot_cpu_has(X86_FEATURE_SYSCALL))
		allowed |= EFER_SCE;
	if (host ? boot_cpu_has(X86_FEATURE_LM) : guest_ext_feature(vcpu, X86_FEATURE_LM & 31))
		allowed |= EFER_LME;
	if (host ? boot_cpu_has(X86_FEATURE_NX) : guest_ext_feature(vcpu, X86_FEATURE_NX & 31))
		allowed |= EFER_NX;
	return !(efer & ~allowed);
}

/* Each byte of the PAT a valid memory type: UC, WC, WT, WP, WB, UC- (0,1,4,5,6,7). */
static bool pat_valid(u64 pat)
{
	int i;

	for (i = 0; i < 8; i++) {
		u8 type = pat >> (i * 8);

		if (type > 7 || type == 2 || type == 3)
			return false;
	}
	return true;
}

/*
 * Without an in-kernel APIC the APIC base is only stored, but KVM still refuses
 * reserved bits (x2APIC needs guest CPUID support kvmpp does not offer yet).
 */
bool kvmpp_x86_apic_base_valid(u64 value)
{
	return !(value >> boot_cpu_data.x86_phys_bits) && !(value & (0x2ff | X2APIC_ENABLE));
}

int kvmpp_x86_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data)
{
	switch (index) {
	case MSR_IA32_TSC:
		*data = rdtsc() + vcpu->arch.tsc_offset;
		return 0;
	case MSR_IA32_APICBASE:
		*data = vcpu->arch.apic_base;
		return 0;
	default:
		return kvmpp_backend->get_msr(vcpu, index, data);
	}
}

/* Returns 0, or 1 when the write is not allowed (the guest gets #GP). */
int kvmpp_x86_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data, bool host)
{
	u64 old;

	switch (index) {
	case MSR_IA32_TSC:
		vcpu->arch.tsc_offset = data - rdtsc();
		return 0;
	case MSR_IA32_APICBASE:
		if (!kvmpp_x86_apic_base_valid(data))
			return 1;
		vcpu->arch.apic_base = data;
		return 0;
	case MSR_EFER:
		if (!efer_valid(vcpu, data, host) || kvmpp_backend->get_msr(vcpu, MSR_EFER, &old))
			return 1;
		if (!host) {
			/* LMA follows paging; LME cannot change while paging is on. */
			if (((old ^ data) & EFER_LME) && kvmpp_backend->is_paging(vcpu))
				return 1;
			data = (data & ~(u64)EFER_LMA) | (old & EFER_LMA);
		}
		break;
	case MSR_IA32_CR_PAT:
		if (!pat_valid(data))
			return 1;
		break;
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_KERNEL_GS_BASE:
		if (!is_canonical(data))
			return 1;
		break;
	case MSR_IA32_SYSENTER_CS:
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
	case MSR_STAR:
	case MSR_SYSCALL_MASK:
		break;
	default:
		return 1;
	}
	return kvmpp_backend->set_msr(vcpu, index, data);
}

/* Guest RDMSR: 1 when done (the backend skips it), 0 for #GP. */
int kvmpp_x86_emulate_rdmsr(struct kvmpp_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	u64 data;

	if (kvmpp_x86_get_msr(vcpu, r[__VCPU_REGS_RCX], &data))
		return 0;
	r[__VCPU_REGS_RAX] = (u32)data;
	r[__VCPU_REGS_RDX] = data >> 32;
	return 1;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_emulate_rdmsr);

int kvmpp_x86_emulate_wrmsr(struct kvmpp_vcpu *vcpu)
{
	unsigned long *r = vcpu->arch.regs;
	u64 data = (u32)r[__VCPU_REGS_RAX] | (u64)(u32)r[__VCPU_REGS_RDX] << 32;

	return !kvmpp_x86_set_msr(vcpu, r[__VCPU_REGS_RCX], data, false);
}
EXPORT_SYMBOL_GPL(kvmpp_x86_emulate_wrmsr);

/*
 * KVM_GET_MSRS / KVM_SET_MSRS: entries are processed in order up to the first
 * one that fails; the return value is how many succeeded.
 */
long kvmpp_x86_msr_io(struct kvmpp_vcpu *vcpu, void __user *argp, bool write)
{
	struct kvm_msrs __user *user = argp;
	struct kvm_msr_entry *entries;
	struct kvm_msrs header;
	size_t size;
	long n;

	if (copy_from_user(&header, user, sizeof(header)))
		return -EFAULT;
	if (header.nmsrs >= KVMPP_MAX_IO_MSRS)
		return -E2BIG;
	size = header.nmsrs * sizeof(*entries);
	entries = memdup_user(user->entries, size);
	if (IS_ERR(entries))
		return PTR_ERR(entries);

	for (n = 0; n < header.nmsrs; n++) {
		struct kvm_msr_entry *e = &entries[n];

		if (write ? kvmpp_x86_set_msr(vcpu, e->index, e->data, true) :
			    kvmpp_x86_get_msr(vcpu, e->index, &e->data))
			break;
	}
	if (!write && copy_to_user(user->entries, entries, size))
		n = -EFAULT;
	kfree(entries);
	return n;
}

/* KVM_GET_MSR_INDEX_LIST on /dev/kvm. */
long kvmpp_x86_get_msr_index_list(void __user *argp)
{
	struct kvm_msr_list __user *user = argp;
	struct kvm_msr_list list;
	u32 room;

	if (copy_from_user(&list, user, sizeof(list)))
		return -EFAULT;
	room = list.nmsrs;
	list.nmsrs = ARRAY_SIZE(kvmpp_msrs);
	if (copy_to_user(user, &list, sizeof(list)))
		return -EFAULT;
	if (room < ARRAY_SIZE(kvmpp_msrs))
		return -E2BIG;
	if (copy_to_user(user->indices, kvmpp_msrs, sizeof(kvmpp_msrs)))
		return -EFAULT;
	return 0;
}
