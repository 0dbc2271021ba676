/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Declarations private to kvmpp.ko: how the core's files talk to each other.
 */
#ifndef KVMPP_CORE_H
#define KVMPP_CORE_H

#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/refcount.h>
#include <kvmpp/backend.h>
#include <kvmpp/limits.h>

#include "memslot.h"
#include "../x86/tdp.h"
#include "../x86/x86.h"

struct kvmpp_vcpu;

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
	/* The VM fd and every vCPU fd hold one; the last put frees the VM. */
	refcount_t users;

	struct kvmpp_vm_memory mem;	/* memslot.h */
	struct kvmpp_tdp tdp;		/* x86/tdp.h */

	/*
	 * @lock serializes vCPU creation. @vcpus[0 .. @nr_vcpus) are published with
	 * smp_store_release on @nr_vcpus and never change until the VM is freed, so
	 * readers (TLB flushes) need no lock: smp_load_acquire(&vm->nr_vcpus).
	 */
	struct mutex lock;
	struct kvmpp_vcpu *vcpus[KVMPP_MAX_VCPUS];
	unsigned int nr_vcpus;
	/* Shared by all vCPUs at page KVM_COALESCED_MMIO_PAGE_OFFSET of their mmap. */
	struct page *coalesced_mmio_ring;
	/*
	 * The zones whose writes go into that ring (coalesced_mmio.c). @lock
	 * protects @zones, @nr (zones per kind: [0] MMIO, [1] PIO) and the
	 * ring's @last index; vCPUs take it on writes to MMIO and to ports.
	 */
	struct {
		spinlock_t lock;
		struct list_head zones;
		unsigned int nr[2];
	} coalesced;

	/* The backend's per-VM state (e.g. the SVM ASID or VMX VPID space). */
	void *backend_data;
};

/* kvmpp_vcpu.mode: whether a kick has to interrupt the guest. */
enum kvmpp_vcpu_mode {
	KVMPP_OUTSIDE_GUEST_MODE,
	KVMPP_IN_GUEST_MODE,
};

/* kvmpp_vcpu.requests: work to do before the next guest entry. */
#define KVMPP_REQ_TLB_FLUSH	0

/* One virtual CPU: what a vCPU fd refers to. */
struct kvmpp_vcpu {
	struct kvmpp_vm *vm;
	u32 id;			/* KVM_CREATE_VCPU's argument */

	/* Pages of the vCPU mmap area (KVM_GET_VCPU_MMAP_SIZE). */
	struct kvm_run *run;
	void *pio_data;

	/* Serializes vCPU ioctls (KVM_RUN included), as KVM's vcpu->mutex. */
	struct mutex mutex;
	/* KVM_SET_SIGNAL_MASK: blocked while in KVM_RUN; under @mutex. */
	bool sigset_active;
	sigset_t sigset;

	/*
	 * @mode is written by the vCPU thread (IN_GUEST only with interrupts off)
	 * and read by kickers; @requests bits are set by anyone, cleared by the vCPU
	 * thread before entry. Ordering: see kvmpp_vcpu_enter_prepare().
	 */
	int mode;
	int cpu;		/* CPU of the last entry, -1 before the first */
	unsigned long requests;

	struct kvmpp_x86_vcpu arch;
	void *backend_data;
};

/* Called by backends with interrupts off around each entry (see vcpu.c). */
void kvmpp_vcpu_enter_prepare(struct kvmpp_vcpu *vcpu);
void kvmpp_vcpu_exit_done(struct kvmpp_vcpu *vcpu);

/* Unmapped TDP entries must not be used any more: flush every vCPU's TLB. */
void kvmpp_vm_flush_tlbs(struct kvmpp_vm *vm);
void kvmpp_vm_get(struct kvmpp_vm *vm);
void kvmpp_vm_put(struct kvmpp_vm *vm);

/* hardware.c: virtualization is on on every online CPU while any VM exists. */
int kvmpp_hardware_get(void);
void kvmpp_hardware_put(void);
int kvmpp_hardware_init(void);
void kvmpp_hardware_exit(void);

/* dev.c: the /dev/kvm ("system") ioctls. */
long kvmpp_dev_ioctl(struct file *file, unsigned int ioctl, unsigned long arg);
long kvmpp_dev_check_extension(long cap);

/* vm.c */
int kvmpp_vm_create(unsigned long type);
void kvmpp_vm_set_owner(struct module *owner);

/* coalesced_mmio.c: KVM_{REGISTER,UNREGISTER}_COALESCED_MMIO and the ring. */
void kvmpp_coalesced_init(struct kvmpp_vm *vm);
void kvmpp_coalesced_destroy(struct kvmpp_vm *vm);
long kvmpp_vm_register_coalesced(struct kvmpp_vm *vm, void __user *argp);
long kvmpp_vm_unregister_coalesced(struct kvmpp_vm *vm, void __user *argp);
bool kvmpp_coalesced_write(struct kvmpp_vm *vm, u64 addr, unsigned int len, const void *data,
			   bool pio);

/* vcpu.c */
int kvmpp_vcpu_create(struct kvmpp_vm *vm, unsigned long id);
void kvmpp_vcpu_destroy(struct kvmpp_vcpu *vcpu);
void kvmpp_vcpu_set_owner(struct module *owner);

#endif /* KVMPP_CORE_H */
