/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kvmpp's limits, the same as x86 KVM's, in one place for the code that
 * enforces them and the capabilities that announce them.
 */
#ifndef KVMPP_LIMITS_H
#define KVMPP_LIMITS_H

/* Memslots userspace can use in address space 0 (KVM_CAP_NR_MEMSLOTS). */
#define KVMPP_USER_MEM_SLOTS	32764
/* vCPUs per VM (KVM_CAP_MAX_VCPUS) and vCPU ids below this (KVM_CAP_MAX_VCPU_ID). */
#define KVMPP_MAX_VCPUS		1024
#define KVMPP_MAX_VCPU_IDS	4096

#endif /* KVMPP_LIMITS_H */
