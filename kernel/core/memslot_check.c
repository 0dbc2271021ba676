// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memslot sets as data (see memslot_check.h): the request checks with the
 * errnos Linux 6.1 gives, binary-search lookup, and in-place updates of a
 * sorted array. Pure logic: compiled into kvmpp.ko and into the unit tests.
 */
#include "memslot_check.h"

/* The flags a slot may have (check_memory_region_flags; x86 has READONLY_MEM). */
#define KVMPP_MEMSLOT_VALID_FLAGS (KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY)

/*
 * Address spaces: x86 KVM has two (the second is for SMM). kvmpp has no SMM, so
 * only address space 0 exists and a slot in any other one is refused with the
 * errno KVM gives for an address space that does not exist.
 */
#define KVMPP_ADDRESS_SPACES 1

/* Index of the first slot whose base_gfn is >= @gfn (nr if none). */
static int lower_bound(const struct kvmpp_memslots *slots, u64 gfn)
{
	int lo = 0, hi = slots->nr;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (slots->slots[mid].base_gfn < gfn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct kvmpp_memslot *kvmpp_memslot_find(const struct kvmpp_memslots *slots, u64 gfn)
{
	const struct kvmpp_memslot *slot;
	int i;

	/* The candidate is the last slot starting at or below @gfn. */
	i = lower_bound(slots, gfn);
	if (i < slots->nr && slots->slots[i].base_gfn == gfn)
		return &slots->slots[i];
	if (i == 0)
		return NULL;
	slot = &slots->slots[i - 1];
	/* gfn - base < npages cannot overflow, unlike base + npages > gfn. */
	return gfn - slot->base_gfn < slot->npages ? slot : NULL;
}

bool kvmpp_memslots_overlap(const struct kvmpp_memslots *slots, u64 base_gfn, u64 npages,
			    u32 ignore_id)
{
	u64 end = base_gfn + npages;
	int i;

	/*
	 * Slots starting before @end are slots[0 .. i); of those the one that
	 * ends last is the last one (ends are sorted as bases are), unless it is
	 * the slot being moved, whose old place does not count.
	 */
	i = lower_bound(slots, end) - 1;
	if (i >= 0 && slots->slots[i].id == ignore_id)
		i--;
	return i >= 0 && slots->slots[i].base_gfn + slots->slots[i].npages > base_gfn;
}

int kvmpp_memslot_check(const struct kvmpp_memslots *slots,
			const struct kvmpp_memslot *old,
			const struct kvm_userspace_memory_region *mem,
			bool user_range_ok,
			const struct kvmpp_memslot_limits *limits,
			enum kvmpp_memslot_change *change,
			struct kvmpp_memslot *new)
{
	u32 as_id = mem->slot >> 16;
	u16 id = (u16)mem->slot;
	u64 npages = mem->memory_size >> KVMPP_GFN_SHIFT;
	u64 base_gfn = mem->guest_phys_addr >> KVMPP_GFN_SHIFT;

	/*
	 * The order of the checks is Linux's, which matters only where the errno
	 * differs: every malformed request is -EINVAL before any -EEXIST.
	 */
	if (id >= limits->nr_slots)
		return -EINVAL;
	if (mem->flags & ~KVMPP_MEMSLOT_VALID_FLAGS)
		return -EINVAL;
	if (mem->memory_size & (KVMPP_GFN_SIZE - 1))
		return -EINVAL;
	if (mem->guest_phys_addr & (KVMPP_GFN_SIZE - 1))
		return -EINVAL;
	/* Also for a deletion, whose userspace_addr is otherwise ignored. */
	if ((mem->userspace_addr & (KVMPP_GFN_SIZE - 1)) || !user_range_ok)
		return -EINVAL;
	if (as_id >= KVMPP_ADDRESS_SPACES)
		return -EINVAL;
	if (mem->guest_phys_addr + mem->memory_size < mem->guest_phys_addr)
		return -EINVAL;
	if (npages > KVMPP_MEM_MAX_NR_PAGES)
		return -EINVAL;

	if (!npages) {
		/* Deleting a slot that does not exist is an error, not a no-op. */
		if (!old)
			return -EINVAL;
		*change = KVMPP_MEMSLOT_DELETE;
		return 0;
	}

	if (!old) {
		*change = KVMPP_MEMSLOT_CREATE;
	} else {
		/* An existing slot keeps its host memory, size and writability. */
		if (mem->userspace_addr != old->userspace_addr || npages != old->npages ||
		    ((mem->flags ^ old->flags) & KVM_MEM_READONLY))
			return -EINVAL;
		if (base_gfn != old->base_gfn)
			*change = KVMPP_MEMSLOT_MOVE;
		else if (mem->flags != old->flags)
			*change = KVMPP_MEMSLOT_FLAGS;
		else
			*change = KVMPP_MEMSLOT_UNCHANGED;
	}

	if (*change == KVMPP_MEMSLOT_CREATE || *change == KVMPP_MEMSLOT_MOVE) {
		if (kvmpp_memslots_overlap(slots, base_gfn, npages, id))
			return -EEXIST;
		/* Checked after the overlap, as kvm_arch_prepare_memory_region is. */
		if (base_gfn + npages - 1 > limits->max_gfn)
			return -EINVAL;
	}

	new->base_gfn = base_gfn;
	new->npages = npages;
	new->userspace_addr = mem->userspace_addr;
	new->flags = mem->flags;
	new->id = id;
	return 0;
}

static void remove_at(struct kvmpp_memslots *slots, int i)
{
	int j;

	for (j = i; j < slots->nr - 1; j++)
		slots->slots[j] = slots->slots[j + 1];
	slots->nr--;
}

static void insert(struct kvmpp_memslots *slots, const struct kvmpp_memslot *slot)
{
	int i = lower_bound(slots, slot->base_gfn);
	int j;

	for (j = slots->nr; j > i; j--)
		slots->slots[j] = slots->slots[j - 1];
	slots->slots[i] = *slot;
	slots->nr++;
}

/* Index of the slot that starts at @base_gfn; it exists. */
static int index_of(const struct kvmpp_memslots *slots, u64 base_gfn)
{
	return lower_bound(slots, base_gfn);
}

void kvmpp_memslots_apply(struct kvmpp_memslots *slots, enum kvmpp_memslot_change change,
			  const struct kvmpp_memslot *old, const struct kvmpp_memslot *new)
{
	switch (change) {
	case KVMPP_MEMSLOT_UNCHANGED:
		break;
	case KVMPP_MEMSLOT_CREATE:
		insert(slots, new);
		break;
	case KVMPP_MEMSLOT_DELETE:
		remove_at(slots, index_of(slots, old->base_gfn));
		break;
	case KVMPP_MEMSLOT_MOVE:
		remove_at(slots, index_of(slots, old->base_gfn));
		insert(slots, new);
		break;
	case KVMPP_MEMSLOT_FLAGS:
		slots->slots[index_of(slots, old->base_gfn)].flags = new->flags;
		break;
	}
}
