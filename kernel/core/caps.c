// SPDX-License-Identifier: GPL-2.0-only
/*
 * The capability table. A capability is listed here only once what it announces
 * works end to end and is covered by a selftest; Documentation/abi-status.md lists
 * the same set. The table is small and looked up rarely, so a linear scan is fine.
 */
#include <kvmpp/pure.h>
#include <linux/kvm.h>

#include "caps.h"

struct kvmpp_cap {
	long cap;
	long value;
};

static const struct kvmpp_cap kvmpp_caps[] = {
	/* KVM_CHECK_EXTENSION works on a VM fd too. */
	{ KVM_CAP_CHECK_EXTENSION_VM, 1 },
};

long kvmpp_check_extension(long cap)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kvmpp_caps); i++)
		if (kvmpp_caps[i].cap == cap)
			return kvmpp_caps[i].value;
	return 0;
}
