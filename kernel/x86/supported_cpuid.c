// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_GET_SUPPORTED_CPUID: the host's CPUID, less what a kvmpp guest cannot
 * use. A feature is offered only if the guest can use it with what kvmpp
 * implements today: no XSAVE (XSETBV is refused, so no AVX either), no x2APIC
 * or TSC deadline timer (no in-kernel APIC), no MCE/MTRR/RDTSCP MSRs, no
 * nested virtualization, no PMU.
 */
#include <linux/kvm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/processor.h>

#include "../core/kvmpp.h"

/* KVM_MAX_CPUID_ENTRIES in KVM. */
#define KVMPP_MAX_CPUID_ENTRIES 256

#define F(name) BIT(X86_FEATURE_##name & 31)

/* Leaf 1 EDX and ECX. */
static const u32 leaf1_edx = F(FPU) | F(VME) | F(DE) | F(PSE) | F(TSC) | F(MSR) | F(PAE) |
	F(CX8) | F(APIC) | F(SEP) | F(PGE) | F(CMOV) | F(PAT) | F(PSE36) | F(CLFLUSH) |
	F(MMX) | F(FXSR) | F(XMM) | F(XMM2);
static const u32 leaf1_ecx = F(XMM3) | F(PCLMULQDQ) | F(SSSE3) | F(CX16) | F(XMM4_1) |
	F(XMM4_2) | F(MOVBE) | F(POPCNT) | F(AES) | F(RDRAND);
/* Leaf 7 subleaf 0 EBX. */
static const u32 leaf7_ebx = F(FSGSBASE) | F(BMI1) | F(SMEP) | F(BMI2) | F(ERMS) |
	F(RDSEED) | F(ADX) | F(SMAP) | F(CLFLUSHOPT) | F(SHA_NI);
/* Leaf 0x80000001 EDX and ECX. */
static const u32 ext1_edx = F(SYSCALL) | F(NX) | F(GBPAGES) | F(LM) |
	/* The AMD copies of leaf 1 EDX bits that exist there. */
	(leaf1_edx & 0x0183f3ff);
static const u32 ext1_ecx = F(LAHF_LM) | F(ABM) | F(SSE4A) | F(3DNOWPREFETCH);

struct cpuid_builder {
	struct kvm_cpuid_entry2 *entries;
	int nent, max;
};

static struct kvm_cpuid_entry2 *add(struct cpuid_builder *b, u32 function, u32 index, u32 flags)
{
	struct kvm_cpuid_entry2 *e;

	if (b->nent >= b->max)
		return NULL;
	e = &b->entries[b->nent++];
	memset(e, 0, sizeof(*e));
	e->function = function;
	e->index = index;
	e->flags = flags;
	cpuid_count(function, index, &e->eax, &e->ebx, &e->ecx, &e->edx);
	return e;
}

/* Returns false when @b is full. */
static bool add_leaf(struct cpuid_builder *b, u32 function)
{
	struct kvm_cpuid_entry2 *e;
	int i;

	switch (function) {
	case 1:
		e = add(b, 1, 0, 0);
		if (!e)
			return false;
		e->edx &= leaf1_edx;
		e->ecx &= leaf1_ecx;
		return true;
	case 4:
		/* Cache parameters, one subleaf per cache until type 0. */
		for (i = 0; i < 8; i++) {
			e = add(b, 4, i, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
			if (!e)
				return false;
			/* Cores/threads sharing: the VMM describes its own topology. */
			e->eax &= 0x3ff;
			if (!(e->eax & 0x1f))
				break;
		}
		return true;
	case 7:
		e = add(b, 7, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
		if (!e)
			return false;
		e->eax = 0;	/* no further subleaves */
		e->ebx &= leaf7_ebx;
		e->ecx = 0;
		e->edx = 0;
		return true;
	case 2:
	case 0x80000002 ... 0x80000006:
	case 0x80000008:
		return add(b, function, 0, 0);
	case 0x80000001:
		e = add(b, function, 0, 0);
		if (!e)
			return false;
		e->edx &= ext1_edx;
		e->ecx &= ext1_ecx;
		return true;
	default:
		/* Leaves kvmpp does not offer are left out (a guest reads zeros). */
		return true;
	}
}

long kvmpp_x86_get_supported_cpuid(void __user *argp)
{
	struct kvm_cpuid2 __user *user = argp;
	struct cpuid_builder b = { .nent = 0 };
	struct kvm_cpuid2 header;
	struct kvm_cpuid_entry2 *e;
	u32 f, max_basic, max_ext;
	long r = 0;

	if (copy_from_user(&header, user, sizeof(header)))
		return -EFAULT;
	if (header.nent < 1)
		return -E2BIG;
	b.max = min_t(u32, header.nent, KVMPP_MAX_CPUID_ENTRIES);
	b.entries = kvcalloc(b.max, sizeof(*b.entries), GFP_KERNEL);
	if (!b.entries)
		return -ENOMEM;

	e = add(&b, 0, 0, 0);
	max_basic = min_t(u32, e->eax, 7);
	e->eax = max_basic;
	for (f = 1; f <= max_basic; f++)
		if (!add_leaf(&b, f))
			goto too_big;
	e = add(&b, 0x80000000, 0, 0);
	if (!e)
		goto too_big;
	max_ext = min_t(u32, e->eax, 0x80000008);
	e->eax = max_ext;
	for (f = 0x80000001; f <= max_ext; f++)
		if (!add_leaf(&b, f))
			goto too_big;

	header.nent = b.nent;
	if (copy_to_user(user, &header, sizeof(header)) ||
	    copy_to_user(user->entries, b.entries, b.nent * sizeof(*b.entries)))
		r = -EFAULT;
	kvfree(b.entries);
	return r;

too_big:
	kvfree(b.entries);
	return -E2BIG;
}
