// SPDX-License-Identifier: GPL-2.0-only
#include "cpuid_table.h"

const struct kvm_cpuid_entry2 *kvmpp_cpuid_find(const struct kvm_cpuid_entry2 *e, int nent,
						u32 function, u32 index)
{
	int i;

	for (i = 0; i < nent; i++) {
		if (e[i].function != function)
			continue;
		if ((e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e[i].index != index)
			continue;
		return &e[i];
	}
	return NULL;
}

/* "AuthenticAMD" / "HygonGenuine" in EBX, EDX, ECX of leaf 0. */
static bool vendor_is_amd_like(const struct kvm_cpuid_entry2 *leaf0)
{
	return (leaf0->ebx == 0x68747541 && leaf0->edx == 0x69746e65 && leaf0->ecx == 0x444d4163) ||
	       (leaf0->ebx == 0x6f677948 && leaf0->edx == 0x6e65476e && leaf0->ecx == 0x656e6975);
}

void kvmpp_cpuid_lookup(const struct kvm_cpuid_entry2 *entries, int nent,
			u32 function, u32 index, u32 out[4])
{
	const struct kvm_cpuid_entry2 *e = kvmpp_cpuid_find(entries, nent, function, index);

	if (!e) {
		const struct kvm_cpuid_entry2 *basic = kvmpp_cpuid_find(entries, nent, 0, 0);
		const struct kvm_cpuid_entry2 *class;
		u32 class_leaf;

		if (function >= 0x40000000 && function <= 0x4fffffff)
			class_leaf = function & 0xffffff00;
		else if (function >= 0xc0000000)
			class_leaf = 0xc0000000;
		else
			class_leaf = function & 0x80000000;
		class = kvmpp_cpuid_find(entries, nent, class_leaf, 0);
		if (basic && !vendor_is_amd_like(basic) && !(class && function <= class->eax))
			e = kvmpp_cpuid_find(entries, nent, basic->eax, index);
	}
	if (e) {
		out[0] = e->eax;
		out[1] = e->ebx;
		out[2] = e->ecx;
		out[3] = e->edx;
	} else {
		out[0] = out[1] = out[2] = out[3] = 0;
	}
}
