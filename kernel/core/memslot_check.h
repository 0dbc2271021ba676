/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Memslot sets as data: validating a KVM_SET_USER_MEMORY_REGION request against
 * the current set, looking a guest frame up, and applying a change to a set.
 *
 * Pure logic (see <kvmpp/pure.h>): compiled into kvmpp.ko and into the CMocka
 * tests under kernel/tests/. Locking and publication of sets are the caller's
 * business (memslot.c); nothing here allocates.
 */
#ifndef KVMPP_MEMSLOT_CHECK_H
#define KVMPP_MEMSLOT_CHECK_H

#include <kvmpp/pure.h>
#include <linux/kvm.h>

/* Guest frames are 4 KiB on x86, whatever the host's page size could be. */
#define KVMPP_GFN_SHIFT 12
#define KVMPP_GFN_SIZE (1ULL << KVMPP_GFN_SHIFT)

/*
 * The most pages one slot may have (KVM_MEM_MAX_NR_PAGES in Linux 6.1's
 * include/linux/kvm_host.h: the dirty bitmap's bit operations take int).
 */
#define KVMPP_MEM_MAX_NR_PAGES ((1ULL << 31) - 1)

struct kvmpp_memslot {
	u64 base_gfn;
	u64 npages;			/* never 0 in a published set */
	unsigned long userspace_addr;
	u32 flags;			/* KVM_MEM_* */
	u16 id;
};

/*
 * A set of slots: @slots[0 .. @nr) sorted by base_gfn, never overlapping, so
 * their ends are sorted too (which the lookups below rely on). @capacity is
 * how many entries the allocation holds; @generation counts the updates of the
 * VM's memory map.
 */
struct kvmpp_memslots {
	u64 generation;
	int nr;
	int capacity;
	struct kvmpp_memslot slots[];
};

/* What the limits of the request checks are; filled by the caller. */
struct kvmpp_memslot_limits {
	u32 nr_slots;		/* slot ids 0 .. nr_slots - 1 (KVM_CAP_NR_MEMSLOTS) */
	u64 max_gfn;		/* the highest guest frame a slot may cover */
};

enum kvmpp_memslot_change {
	KVMPP_MEMSLOT_UNCHANGED,	/* same slot again: nothing to do */
	KVMPP_MEMSLOT_CREATE,
	KVMPP_MEMSLOT_DELETE,
	KVMPP_MEMSLOT_MOVE,		/* new base_gfn (flags may change too) */
	KVMPP_MEMSLOT_FLAGS,		/* only the flags change */
};

/*
 * Checks a KVM_SET_USER_MEMORY_REGION request @mem against the set @slots as
 * Linux 6.1 does (kvm_vm_ioctl_set_memory_region, check_memory_region_flags,
 * __kvm_set_memory_region, kvm_arch_prepare_memory_region). @old is the slot of
 * @slots with the request's id, or NULL. @user_range_ok is the caller's verdict
 * on the host range (userspace_addr untagged and access_ok over memory_size),
 * which needs the kernel. Returns 0 with *@change and, unless the change is a
 * deletion, the resulting slot in *@new; or -EINVAL / -EEXIST.
 */
int kvmpp_memslot_check(const struct kvmpp_memslots *slots,
			const struct kvmpp_memslot *old,
			const struct kvm_userspace_memory_region *mem,
			bool user_range_ok,
			const struct kvmpp_memslot_limits *limits,
			enum kvmpp_memslot_change *change,
			struct kvmpp_memslot *new);

/* The slot containing @gfn, or NULL. O(log nr). */
const struct kvmpp_memslot *kvmpp_memslot_find(const struct kvmpp_memslots *slots, u64 gfn);

/*
 * Whether [@base_gfn, @base_gfn + @npages) intersects a slot other than the one
 * with id @ignore_id (pass a value above 0xffff to ignore none). @npages > 0 and
 * the range must not wrap.
 */
bool kvmpp_memslots_overlap(const struct kvmpp_memslots *slots, u64 base_gfn, u64 npages,
			    u32 ignore_id);

/*
 * Applies a change that kvmpp_memslot_check() accepted for @slots (or for a set
 * equal to it) to @slots in place. @old is a copy of the slot before the change
 * (unused for CREATE), @new the slot after it (unused for DELETE). A CREATE
 * needs @slots->nr < @slots->capacity.
 */
void kvmpp_memslots_apply(struct kvmpp_memslots *slots, enum kvmpp_memslot_change change,
			  const struct kvmpp_memslot *old, const struct kvmpp_memslot *new);

#endif /* KVMPP_MEMSLOT_CHECK_H */
