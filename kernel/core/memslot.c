// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memslots: KVM_SET_USER_MEMORY_REGION, publication of slot sets under SRCU,
 * and guest memory access through the slots' host addresses.
 *
 * The checks themselves are pure logic in memslot_check.c; this file adds what
 * needs the kernel: copying the request, access_ok(), allocation, publishing,
 * and unmapping what a deleted or moved slot left in the TDP tables.
 */
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kvmpp.h"

/* A VM starts with room for this many slots per set; sets grow by doubling. */
#define KVMPP_MEMSLOTS_INITIAL_CAPACITY 8

static struct kvmpp_memslots *memslots_alloc(int capacity)
{
	struct kvmpp_memslots *slots;

	/* kvmalloc: at the full 32764 slots a set is about 1.3 MB. */
	slots = kvmalloc(struct_size(slots, slots, capacity), GFP_KERNEL_ACCOUNT);
	if (!slots)
		return NULL;
	slots->generation = 0;
	slots->nr = 0;
	slots->capacity = capacity;
	return slots;
}

/* Makes @dst hold what @src holds (@dst->capacity >= @src->nr). */
static void memslots_copy(struct kvmpp_memslots *dst, const struct kvmpp_memslots *src)
{
	dst->generation = src->generation;
	dst->nr = src->nr;
	memcpy(dst->slots, src->slots, flex_array_size(src, slots, src->nr));
}

int kvmpp_memory_init(struct kvmpp_vm *vm)
{
	struct kvmpp_vm_memory *mem = &vm->mem;
	struct kvmpp_memslots *active, *inactive;
	int r;

	mutex_init(&mem->lock);
	xa_init(&mem->ids);
	r = init_srcu_struct(&mem->srcu);
	if (r)
		return r;

	active = memslots_alloc(KVMPP_MEMSLOTS_INITIAL_CAPACITY);
	inactive = memslots_alloc(KVMPP_MEMSLOTS_INITIAL_CAPACITY);
	if (!active || !inactive) {
		kvfree(active);
		kvfree(inactive);
		cleanup_srcu_struct(&mem->srcu);
		return -ENOMEM;
	}
	RCU_INIT_POINTER(mem->slots, active);
	mem->inactive = inactive;
	return 0;
}

/* Called when nothing can use the VM any more: no readers, no updates. */
void kvmpp_memory_destroy(struct kvmpp_vm *vm)
{
	struct kvmpp_vm_memory *mem = &vm->mem;

	kvfree(rcu_dereference_protected(mem->slots, 1));
	kvfree(mem->inactive);
	xa_destroy(&mem->ids);
	cleanup_srcu_struct(&mem->srcu);
	mutex_destroy(&mem->lock);
}

/* The slot with id @id in the published set, or NULL. Under mem->lock. */
static const struct kvmpp_memslot *memslot_by_id(struct kvmpp_vm_memory *mem,
						 const struct kvmpp_memslots *slots, u16 id)
{
	const struct kvmpp_memslot *slot;
	void *entry = xa_load(&mem->ids, id);

	if (!entry)
		return NULL;
	slot = kvmpp_memslot_find(slots, xa_to_value(entry));
	if (WARN_ON_ONCE(!slot || slot->id != id))
		return NULL;
	return slot;
}

/*
 * Publishes the change and returns once no reader can still see the previous
 * set: from then on no vCPU can map a page through the old slot, so what the
 * TDP tables still map of it can be zapped for good.
 */
static int memslots_update(struct kvm_userspace_memory_region *region, struct kvmpp_vm *vm)
{
	struct kvmpp_vm_memory *mem = &vm->mem;
	struct kvmpp_memslots *active, *next, *grown = NULL, *spare = NULL;
	const struct kvmpp_memslot *old_slot;
	struct kvmpp_memslot old = {}, new;
	struct kvmpp_memslot_limits limits = {
		.nr_slots = KVMPP_USER_MEM_SLOTS,
		.max_gfn = kvmpp_tdp_max_gfn(),
	};
	enum kvmpp_memslot_change change;
	bool user_range_ok;
	int r;

	lockdep_assert_held(&mem->lock);
	active = rcu_dereference_protected(mem->slots, lockdep_is_held(&mem->lock));

	/*
	 * As __kvm_set_memory_region: later accesses of guest memory go through
	 * the user accessors, so the range must be user memory (a kernel or
	 * non-canonical address is -EINVAL), and checked also for a deletion.
	 */
	user_range_ok = region->userspace_addr == untagged_addr(region->userspace_addr) &&
			access_ok((void __user *)(unsigned long)region->userspace_addr,
				  region->memory_size);

	/* Only address space 0 has slots; the check refuses the others. */
	old_slot = (region->slot >> 16) ? NULL : memslot_by_id(mem, active, (u16)region->slot);
	r = kvmpp_memslot_check(active, old_slot, region, user_range_ok, &limits, &change, &new);
	if (r || change == KVMPP_MEMSLOT_UNCHANGED)
		return r;
	if (old_slot)
		old = *old_slot;	/* @active changes below */

	/*
	 * Everything that can fail comes before the new set is published: room
	 * for one more slot in both sets, and the id's entry.
	 */
	next = mem->inactive;
	if (change == KVMPP_MEMSLOT_CREATE && next->nr == next->capacity) {
		int capacity = min(next->capacity * 2, KVMPP_USER_MEM_SLOTS);

		grown = memslots_alloc(capacity);
		spare = memslots_alloc(capacity);
		if (!grown || !spare) {
			r = -ENOMEM;
			goto err_free;
		}
		memslots_copy(grown, next);
		next = grown;
	}
	if (change == KVMPP_MEMSLOT_CREATE || change == KVMPP_MEMSLOT_MOVE) {
		r = xa_err(xa_store(&mem->ids, new.id, xa_mk_value(new.base_gfn),
				    GFP_KERNEL_ACCOUNT));
		if (r)
			goto err_free;
	} else if (change == KVMPP_MEMSLOT_DELETE) {
		xa_erase(&mem->ids, old.id);
	}

	/* From here on nothing fails. */
	if (grown)
		kvfree(mem->inactive);
	kvmpp_memslots_apply(next, change, &old, &new);
	next->generation = active->generation + 1;
	rcu_assign_pointer(mem->slots, next);
	synchronize_srcu_expedited(&mem->srcu);

	/* No reader is left on @active: it becomes the set for the next update. */
	if (spare) {
		kvfree(active);
		memslots_copy(spare, next);
		mem->inactive = spare;
	} else {
		kvmpp_memslots_apply(active, change, &old, &new);
		active->generation = next->generation;
		mem->inactive = active;
	}

	/*
	 * A deleted or moved slot's old range must not stay mapped, and a flags
	 * change must not keep mappings made under the old flags (with dirty
	 * logging on, pages must be mapped 4 KiB at a time and fault on write).
	 */
	if (change != KVMPP_MEMSLOT_CREATE)
		kvmpp_tdp_zap_range(vm, old.base_gfn, old.base_gfn + old.npages);
	return 0;

err_free:
	kvfree(grown);
	kvfree(spare);
	return r;
}

long kvmpp_vm_set_user_memory_region(struct kvmpp_vm *vm, void __user *argp)
{
	struct kvm_userspace_memory_region region;
	long r;

	if (copy_from_user(&region, argp, sizeof(region)))
		return -EFAULT;

	mutex_lock(&vm->mem.lock);
	r = memslots_update(&region, vm);
	mutex_unlock(&vm->mem.lock);
	return r;
}

/*
 * Walks [@gpa, @gpa + @len) slot by slot and calls @copy on each piece's host
 * address. Guest memory is the VM process's memory, reachable with the user
 * accessors only from that process.
 */
static int guest_access(struct kvmpp_vm *vm, u64 gpa, size_t len, bool write,
			int (*copy)(void __user *hva, size_t offset, size_t n, void *ctx),
			void *ctx)
{
	const struct kvmpp_memslots *slots;
	size_t done = 0;
	int idx, r = 0;

	if (current->mm != vm->mm)
		return -EFAULT;
	if (len > U64_MAX - gpa)
		return -EFAULT;

	idx = srcu_read_lock(&vm->mem.srcu);
	slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
	while (done < len) {
		u64 addr = gpa + done, gfn = addr >> KVMPP_GFN_SHIFT;
		const struct kvmpp_memslot *slot = kvmpp_memslot_find(slots, gfn);
		u64 slot_offset, n;

		if (!slot || (write && (slot->flags & KVM_MEM_READONLY))) {
			r = -ENOENT;
			break;
		}
		slot_offset = addr - (slot->base_gfn << KVMPP_GFN_SHIFT);
		n = min_t(u64, len - done, (slot->npages << KVMPP_GFN_SHIFT) - slot_offset);
		r = copy((void __user *)(slot->userspace_addr + slot_offset), done, n, ctx);
		if (r)
			break;
		done += n;
	}
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}

static int copy_in(void __user *hva, size_t offset, size_t n, void *buf)
{
	return copy_from_user(buf + offset, hva, n) ? -EFAULT : 0;
}

static int copy_out(void __user *hva, size_t offset, size_t n, void *buf)
{
	return copy_to_user(hva, buf + offset, n) ? -EFAULT : 0;
}

/*
 * A naturally aligned 4- or 8-byte read (a page-table entry, mostly): in
 * one slot, and get_user() spares copy_from_user()'s object-size checks.
 */
static int read_guest_word(struct kvmpp_vm *vm, u64 gpa, void *buf, size_t len)
{
	const struct kvmpp_memslot *slot;
	int idx, r = -EFAULT;

	if (current->mm != vm->mm)
		return -EFAULT;
	idx = srcu_read_lock(&vm->mem.srcu);
	slot = kvmpp_memslot_find(srcu_dereference(vm->mem.slots, &vm->mem.srcu),
				  gpa >> KVMPP_GFN_SHIFT);
	if (slot)
		r = kvmpp_memslot_read_word(slot, gpa, buf, len);
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}

int kvmpp_read_guest(struct kvmpp_vm *vm, u64 gpa, void *buf, size_t len)
{
	int r;

	if ((len == 8 || len == 4) && !(gpa & (len - 1)))
		return read_guest_word(vm, gpa, buf, len);
	r = guest_access(vm, gpa, len, false, copy_in, buf);
	return r == -ENOENT ? -EFAULT : r;
}
EXPORT_SYMBOL_GPL(kvmpp_read_guest);

int kvmpp_write_guest(struct kvmpp_vm *vm, u64 gpa, const void *buf, size_t len)
{
	/* copy_out only reads the buffer; the context pointer is untyped. */
	int r = guest_access(vm, gpa, len, true, copy_out, (void *)buf);

	return r == -ENOENT ? -EFAULT : r;
}

int kvmpp_access_guest_ram(struct kvmpp_vm *vm, u64 gpa, void *buf, size_t len, bool write)
{
	return write ? guest_access(vm, gpa, len, true, copy_out, buf) :
		       guest_access(vm, gpa, len, false, copy_in, buf);
}
EXPORT_SYMBOL_GPL(kvmpp_write_guest);
