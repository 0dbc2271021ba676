/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The guest's CPUID answers from its KVM_SET_CPUID2 table: pure logic, compiled
 * into kvmpp.ko and into the CMocka tests.
 */
#ifndef KVMPP_CPUID_TABLE_H
#define KVMPP_CPUID_TABLE_H

#include <kvmpp/pure.h>
#include <linux/kvm.h>

/*
 * What CPUID(@function, @index) returns from @entries, with KVM's rules: an
 * entry matches on the function, and on the index too when it has
 * KVM_CPUID_FLAG_SIGNIFCANT_INDEX. A function above its class's maximum (leaf
 * 0, 0x80000000, 0x40000000-style or 0xc0000000) answers as the maximum basic
 * leaf does, as Intel CPUs do, unless the table's vendor is AMD or Hygon; any
 * other miss answers zeros.
 */
/* The entry for (@function, @index) itself, or NULL: no out-of-range rule. */
const struct kvm_cpuid_entry2 *kvmpp_cpuid_find(const struct kvm_cpuid_entry2 *entries, int nent,
						u32 function, u32 index);

void kvmpp_cpuid_lookup(const struct kvm_cpuid_entry2 *entries, int nent,
			u32 function, u32 index, u32 out[4]);

#endif /* KVMPP_CPUID_TABLE_H */
