/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Declarations private to kvmpp.ko: how the core's files talk to each other.
 */
#ifndef KVMPP_CORE_H
#define KVMPP_CORE_H

#include <linux/fs.h>
#include <linux/mm_types.h>
#include <kvmpp/backend.h>

#define KVMPP_LOG_PREFIX "kvmpp: "

/*
 * The registered backend, or NULL. Written only by kvmpp_register_backend() and
 * kvmpp_unregister_backend(); every other reader runs while an fd owned by the
 * backend module is open (or inside register/unregister), which keeps it stable.
 */
extern const struct kvmpp_backend_ops *kvmpp_backend;

/* One virtual machine: what a VM fd refers to. */
struct kvmpp_vm {
	/* The process that created the VM; VM ioctls from any other mm are refused. */
	struct mm_struct *mm;
};

/* hardware.c: virtualization is on on every online CPU while any VM exists. */
int kvmpp_hardware_get(void);
void kvmpp_hardware_put(void);
int kvmpp_hardware_init(void);
void kvmpp_hardware_exit(void);

/* dev.c: the /dev/kvm ("system") ioctls. */
long kvmpp_dev_ioctl(struct file *file, unsigned int ioctl, unsigned long arg);

/* vm.c */
int kvmpp_vm_create(unsigned long type);
void kvmpp_vm_set_owner(struct module *owner);

#endif /* KVMPP_CORE_H */
