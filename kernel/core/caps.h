/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * KVM_CHECK_EXTENSION: which capabilities kvmpp implements, and their values.
 *
 * Pure logic (see <kvmpp/pure.h>): compiled into kvmpp.ko and into the CMocka
 * tests under kernel/tests/.
 */
#ifndef KVMPP_CAPS_H
#define KVMPP_CAPS_H

#include <kvmpp/pure.h>

/* What some answers depend on, gathered by the caller. */
struct kvmpp_caps_env {
	unsigned int online_cpus;
	bool backend_has_vcpus;		/* the backend can create and run vCPUs */
};

/*
 * The value KVM_CHECK_EXTENSION returns for @cap: 0 for anything kvmpp does not
 * implement (which is what KVM answers for a capability it does not know), never
 * an error. The system fd and VM fds answer alike so far.
 */
long kvmpp_check_extension(const struct kvmpp_caps_env *env, long cap);

#endif /* KVMPP_CAPS_H */
