/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one interface between kvmpp's generic core (kvmpp.ko) and a hardware
 * backend (kvmpp-amd.ko, kvmpp-intel.ko).
 *
 * A backend probes the CPU in its module init, fills a struct kvmpp_backend_ops
 * and calls kvmpp_register_backend(); from then on /dev/kvm exists and the core
 * calls back into the backend. Only one backend can be registered at a time.
 */
#ifndef KVMPP_BACKEND_H
#define KVMPP_BACKEND_H

#include <linux/module.h>
#include <linux/types.h>

struct kvmpp_backend_ops {
	/* Short name for log lines ("svm", "vmx"). */
	const char *name;
	/*
	 * The backend module. The core makes it the owner of /dev/kvm and of every
	 * VM fd, so an open fd pins the backend exactly as Linux's kvm pins its
	 * vendor module.
	 */
	struct module *owner;

	/*
	 * Turn hardware virtualization on/off on the calling CPU. Called with
	 * preemption disabled (IPI, CPU hotplug, reboot or syscore context), never
	 * twice in a row for the same CPU: the core tracks which CPUs are on.
	 * hardware_enable returns 0 or a negative errno and leaves the CPU off on
	 * failure. Neither may sleep or allocate.
	 */
	int (*hardware_enable)(void);
	void (*hardware_disable)(void);
};

int kvmpp_register_backend(const struct kvmpp_backend_ops *ops);
void kvmpp_unregister_backend(const struct kvmpp_backend_ops *ops);

#endif /* KVMPP_BACKEND_H */
