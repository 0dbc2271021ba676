/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Memslots: guest-physical ranges backed by the VM process's virtual memory
 * (KVM_SET_USER_MEMORY_REGION), and guest memory access through them.
 */
#ifndef KVMPP_MEMSLOT_H
#define KVMPP_MEMSLOT_H

#include <linux/kvm.h>
#include <linux/mutex.h>
#include <linux/srcu.h>
#include <linux/types.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "memslot_check.h"

struct kvmpp_vm;

/* Slots userspace can use in address space 0 (KVM_CAP_NR_MEMSLOTS), as x86 KVM. */
#define KVMPP_USER_MEM_SLOTS 32764

/*
 * struct kvmpp_memslot and struct kvmpp_memslots (a sorted array of slots) are
 * in memslot_check.h, with the pure logic that checks and applies changes.
 *
 * A published set is immutable: readers use it under SRCU,
 *	idx = srcu_read_lock(&vm->mem.srcu);
 *	slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
 *	...
 *	srcu_read_unlock(&vm->mem.srcu, idx);
 * and may sleep in between. An update applies the change to the second set,
 * @inactive, publishes it with rcu_assign_pointer(), waits for the readers of
 * the previous set (synchronize_srcu_expedited) and then applies the same change
 * to that one, which becomes @inactive. Two sets instead of a fresh copy per
 * update keep adding the 32764th slot as cheap as adding the first.
 */
struct kvmpp_vm_memory {
	struct mutex lock;		/* serializes slot updates; protects @inactive, @ids */
	struct srcu_struct srcu;	/* protects readers of @slots */
	struct kvmpp_memslots __rcu *slots;
	/* The set the next update is prepared in; never seen by readers. */
	struct kvmpp_memslots *inactive;
	/* Slot id -> xa_mk_value(base_gfn) of the slots in @slots. */
	struct xarray ids;
};

int kvmpp_memory_init(struct kvmpp_vm *vm);
void kvmpp_memory_destroy(struct kvmpp_vm *vm);

/* KVM_SET_USER_MEMORY_REGION; returns 0 or KVM's errno. */
long kvmpp_vm_set_user_memory_region(struct kvmpp_vm *vm, void __user *argp);

/* The slot containing @gfn, or NULL. Caller holds vm->mem.srcu. */
const struct kvmpp_memslot *kvmpp_memslot_find(const struct kvmpp_memslots *slots, u64 gfn);

/* The host address of @gpa, which @slot contains. */
static inline void __user *kvmpp_memslot_hva(const struct kvmpp_memslot *slot, u64 gpa)
{
	return (void __user *)(slot->userspace_addr +
			       (gpa - (slot->base_gfn << KVMPP_GFN_SHIFT)));
}

/*
 * An aligned @len (4 or 8) byte read of @gpa, which @slot contains, such as a
 * page-table entry: get_user, cheaper than a copy for one word. The caller
 * holds the VM's SRCU and runs in the VM's mm. 0 or -EFAULT.
 */
static inline int kvmpp_memslot_read_word(const struct kvmpp_memslot *slot, u64 gpa,
					  void *buf, size_t len)
{
	void __user *hva = kvmpp_memslot_hva(slot, gpa);

	return len == 8 ? get_user(*(u64 *)buf, (u64 __user *)hva) :
			  get_user(*(u32 *)buf, (u32 __user *)hva);
}

/*
 * Copy to/from guest-physical memory through the memslots (may cross pages and
 * slots). Returns 0, or -EFAULT if a byte is not backed by a slot or its host
 * memory is inaccessible. May sleep. Writes to read-only slots fail.
 */
int kvmpp_read_guest(struct kvmpp_vm *vm, u64 gpa, void *buf, size_t len);
int kvmpp_write_guest(struct kvmpp_vm *vm, u64 gpa, const void *buf, size_t len);
/*
 * The same, telling MMIO apart: -ENOENT when a byte has no memslot (or, for
 * a write, only a read-only one). The emulator's view of guest memory.
 */
int kvmpp_access_guest_ram(struct kvmpp_vm *vm, u64 gpa, void *buf, size_t len, bool write);

#endif /* KVMPP_MEMSLOT_H */
