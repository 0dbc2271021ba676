// SPDX-License-Identifier: GPL-2.0-only
/*
 * The capability table. A capability is listed here only once what it announces
 * works end to end and is covered by a selftest; Documentation/abi-status.md lists
 * the same set. The table is small and looked up rarely, so a linear scan is fine.
 */
#include <kvmpp/pure.h>
#include <linux/kvm.h>

#include <kvmpp/limits.h>

#include "caps.h"

enum cap_kind {
	CAP_ALWAYS,		/* any backend */
	CAP_WITH_VCPUS,		/* only a backend that runs vCPUs */
};

struct kvmpp_cap {
	long cap;
	long value;
	enum cap_kind kind;
};

static const struct kvmpp_cap kvmpp_caps[] = {
	/* KVM_CHECK_EXTENSION works on a VM fd too. */
	{ KVM_CAP_CHECK_EXTENSION_VM, 1, CAP_ALWAYS },
	/* KVM_SET_USER_MEMORY_REGION, its limit, and deletion/merging of slots. */
	{ KVM_CAP_USER_MEMORY, 1, CAP_ALWAYS },
	{ KVM_CAP_NR_MEMSLOTS, KVMPP_USER_MEM_SLOTS, CAP_ALWAYS },
	{ KVM_CAP_DESTROY_MEMORY_REGION_WORKS, 1, CAP_ALWAYS },
	{ KVM_CAP_JOIN_MEMORY_REGIONS_WORKS, 1, CAP_ALWAYS },
	/* Guest memory follows host changes (MMU notifier, x86/tdp.c). */
	{ KVM_CAP_SYNC_MMU, 1, CAP_ALWAYS },
	/* vCPUs: KVM_CAP_NR_VCPUS is computed below. */
	{ KVM_CAP_MAX_VCPUS, KVMPP_MAX_VCPUS, CAP_WITH_VCPUS },
	{ KVM_CAP_MAX_VCPU_ID, KVMPP_MAX_VCPU_IDS, CAP_WITH_VCPUS },
	{ KVM_CAP_IMMEDIATE_EXIT, 1, CAP_WITH_VCPUS },
	{ KVM_CAP_INTERNAL_ERROR_DATA, 1, CAP_WITH_VCPUS },
	/* KVM_GET_SUPPORTED_CPUID and KVM_SET_CPUID2. */
	{ KVM_CAP_EXT_CPUID, 1, CAP_WITH_VCPUS },
	/* MMIO: writes to KVM_MEM_READONLY slots exit; coalesced zones and their ring page. */
	{ KVM_CAP_READONLY_MEM, 1, CAP_WITH_VCPUS },
	{ KVM_CAP_COALESCED_MMIO, KVM_COALESCED_MMIO_PAGE_OFFSET, CAP_WITH_VCPUS },
	{ KVM_CAP_COALESCED_PIO, 1, CAP_WITH_VCPUS },
};

long kvmpp_check_extension(const struct kvmpp_caps_env *env, long cap)
{
	size_t i;

	if (cap == KVM_CAP_NR_VCPUS) {
		/* KVM's recommended maximum: one vCPU per online host CPU. */
		if (!env->backend_has_vcpus)
			return 0;
		return env->online_cpus < KVMPP_MAX_VCPUS ? env->online_cpus : KVMPP_MAX_VCPUS;
	}
	for (i = 0; i < ARRAY_SIZE(kvmpp_caps); i++) {
		const struct kvmpp_cap *c = &kvmpp_caps[i];

		if (c->cap != cap)
			continue;
		if (c->kind == CAP_WITH_VCPUS && !env->backend_has_vcpus)
			return 0;
		return c->value;
	}
	return 0;
}
