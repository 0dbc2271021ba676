// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of kernel/core/memslot_check.c: KVM_SET_USER_MEMORY_REGION request
 * checks (with Linux 6.1's errnos), slot lookup and set updates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/memslot_check.h"

#define PAGE 0x1000ULL
#define NR_SLOTS 32764
/* A 4-level TDP with a 40-bit MAXPHYADDR, as QEMU's TCG CPUs report. */
#define MAX_GFN ((1ULL << 28) - 1)

static const struct kvmpp_memslot_limits limits = { .nr_slots = NR_SLOTS, .max_gfn = MAX_GFN };

static struct kvmpp_memslots *set_new(int capacity)
{
	struct kvmpp_memslots *s = calloc(1, sizeof(*s) + capacity * sizeof(s->slots[0]));

	assert_non_null(s);
	s->capacity = capacity;
	return s;
}

static struct kvm_userspace_memory_region region(u32 slot, u32 flags, u64 gpa, u64 size, u64 uaddr)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = uaddr,
	};
	return r;
}

/* The slot with @id in @s, or NULL (what memslot.c finds through its id map). */
static const struct kvmpp_memslot *by_id(const struct kvmpp_memslots *s, u32 id)
{
	int i;

	if (id > 0xffff)
		return NULL;
	for (i = 0; i < s->nr; i++)
		if (s->slots[i].id == id)
			return &s->slots[i];
	return NULL;
}

/* Checks @r against @s as memslot.c does; returns the errno or 0, and the change. */
static int check(const struct kvmpp_memslots *s, struct kvm_userspace_memory_region r,
		 enum kvmpp_memslot_change *change, struct kvmpp_memslot *new)
{
	enum kvmpp_memslot_change c = (enum kvmpp_memslot_change)-1;
	struct kvmpp_memslot n;

	int err = kvmpp_memslot_check(s, (r.slot >> 16) ? NULL : by_id(s, (u16)r.slot), &r,
				      true, &limits, &c, &n);
	if (change)
		*change = c;
	if (new && !err)
		*new = n;
	return err;
}

/* Checks and applies @r, which must be accepted. */
static enum kvmpp_memslot_change set(struct kvmpp_memslots *s, struct kvm_userspace_memory_region r)
{
	enum kvmpp_memslot_change change;
	struct kvmpp_memslot old = {}, new;
	const struct kvmpp_memslot *o = by_id(s, (u16)r.slot);

	assert_int_equal(check(s, r, &change, &new), 0);
	if (o)
		old = *o;
	kvmpp_memslots_apply(s, change, &old, &new);
	return change;
}

static void assert_sorted(const struct kvmpp_memslots *s)
{
	int i;

	for (i = 1; i < s->nr; i++)
		assert_true(s->slots[i - 1].base_gfn + s->slots[i - 1].npages <= s->slots[i].base_gfn);
}

static void create_accepted(void **state)
{
	struct kvmpp_memslots *s = set_new(4);
	enum kvmpp_memslot_change c;
	struct kvmpp_memslot n;

	(void)state;
	assert_int_equal(check(s, region(3, 0, 0x100000, 0x200000, 0x7f0000000000), &c, &n), 0);
	assert_int_equal(c, KVMPP_MEMSLOT_CREATE);
	assert_int_equal(n.id, 3);
	assert_int_equal(n.base_gfn, 0x100);
	assert_int_equal(n.npages, 0x200);
	assert_int_equal(n.userspace_addr, 0x7f0000000000);
	assert_int_equal(n.flags, 0);

	/* Both valid flags, slot 0 at gfn 0, host address 0. */
	assert_int_equal(check(s, region(0, KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY, 0,
					 PAGE, 0), &c, &n), 0);
	assert_int_equal(c, KVMPP_MEMSLOT_CREATE);
	free(s);
}

static void malformed_requests_are_einval(void **state)
{
	struct kvmpp_memslots *s = set_new(4);
	struct kvm_userspace_memory_region r;
	struct kvmpp_memslot n;
	enum kvmpp_memslot_change c;
	u32 bad_flags[] = { 1u << 2, 1u << 3, 1u << 31, 0xffffffff };
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(bad_flags); i++)
		assert_int_equal(check(s, region(0, bad_flags[i], 0, PAGE, 0), NULL, NULL), -EINVAL);

	/* Slot ids: the low 16 bits below the limit, the address space 0. */
	assert_int_equal(check(s, region(NR_SLOTS - 1, 0, 0, PAGE, 0), NULL, NULL), 0);
	assert_int_equal(check(s, region(NR_SLOTS, 0, 0, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0xffff, 0, 0, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(1u << 16, 0, 0, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(2u << 16, 0, 0, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0xffff0000, 0, 0, PAGE, 0), NULL, NULL), -EINVAL);

	/* Alignment of size, guest address and host address. */
	assert_int_equal(check(s, region(0, 0, 0, PAGE + 1, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, 0, 0x800, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, 0x800, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, 0, PAGE, 0x10), NULL, NULL), -EINVAL);

	/* The host range judged bad by the caller (access_ok). */
	r = region(0, 0, 0, PAGE, 0);
	assert_int_equal(kvmpp_memslot_check(s, NULL, &r, false, &limits, &c, &n), -EINVAL);

	/* Wrapping at the top of the guest-physical space. */
	assert_int_equal(check(s, region(0, 0, 0xfffffffffffff000, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, 0xfffffffffffff000, 2 * PAGE, 0), NULL, NULL),
			 -EINVAL);
	assert_int_equal(check(s, region(0, 0, PAGE, 0xfffffffffffff000, 0), NULL, NULL), -EINVAL);

	/* Too many pages for one slot, even where the guest space would have room. */
	assert_int_equal(check(s, region(0, 0, 0, (KVMPP_MEM_MAX_NR_PAGES + 1) * PAGE, 0),
			       NULL, NULL), -EINVAL);
	free(s);
}

static void guest_frames_beyond_the_tables_are_einval(void **state)
{
	struct kvmpp_memslots *s = set_new(4);
	u64 top = (MAX_GFN + 1) * PAGE;

	(void)state;
	/* The last page the tables can map, and one beyond it. */
	assert_int_equal(check(s, region(0, 0, top - PAGE, PAGE, 0), NULL, NULL), 0);
	assert_int_equal(check(s, region(0, 0, top, PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, top - PAGE, 2 * PAGE, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(0, 0, 1ULL << 52, PAGE, 0), NULL, NULL), -EINVAL);

	/* A slot beyond the limit that also overlaps one: the overlap is reported. */
	set(s, region(1, 0, top - PAGE, PAGE, 0));
	assert_int_equal(check(s, region(2, 0, top - PAGE, 4 * PAGE, 0), NULL, NULL), -EEXIST);
	free(s);
}

static void delete_rules(void **state)
{
	struct kvmpp_memslots *s = set_new(4);
	enum kvmpp_memslot_change c;
	struct kvm_userspace_memory_region r;
	struct kvmpp_memslot n;

	(void)state;
	/* Deleting what does not exist is an error in 6.1, not a no-op. */
	assert_int_equal(check(s, region(5, 0, 0, 0, 0), NULL, NULL), -EINVAL);

	set(s, region(5, 0, 0x10000, 4 * PAGE, 0x40000000));
	/* Deleting ignores guest address, host address and flags' values... */
	assert_int_equal(check(s, region(5, KVM_MEM_READONLY, 0x999000, 0, 0x1000), &c, NULL), 0);
	assert_int_equal(c, KVMPP_MEMSLOT_DELETE);
	/* ...but not their validity. */
	assert_int_equal(check(s, region(5, 1u << 5, 0, 0, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(5, 0, 0x800, 0, 0), NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(5, 0, 0, 0, 0x800), NULL, NULL), -EINVAL);
	r = region(5, 0, 0, 0, 0);
	assert_int_equal(kvmpp_memslot_check(s, by_id(s, 5), &r, false, &limits, &c, &n), -EINVAL);

	assert_int_equal(set(s, region(5, 0, 0, 0, 0)), KVMPP_MEMSLOT_DELETE);
	assert_int_equal(s->nr, 0);
	assert_int_equal(check(s, region(5, 0, 0, 0, 0), NULL, NULL), -EINVAL);
	free(s);
}

static void modify_rules(void **state)
{
	struct kvmpp_memslots *s = set_new(4);
	enum kvmpp_memslot_change c;
	struct kvmpp_memslot n;

	(void)state;
	set(s, region(1, 0, 0x100000, 16 * PAGE, 0x40000000));
	set(s, region(2, KVM_MEM_READONLY, 0x200000, 16 * PAGE, 0x50000000));

	/* The same slot again: nothing to do. */
	assert_int_equal(check(s, region(1, 0, 0x100000, 16 * PAGE, 0x40000000), &c, NULL), 0);
	assert_int_equal(c, KVMPP_MEMSLOT_UNCHANGED);

	/* Size and host address are fixed for a slot's life. */
	assert_int_equal(check(s, region(1, 0, 0x100000, 8 * PAGE, 0x40000000), NULL, NULL),
			 -EINVAL);
	assert_int_equal(check(s, region(1, 0, 0x100000, 32 * PAGE, 0x40000000), NULL, NULL),
			 -EINVAL);
	assert_int_equal(check(s, region(1, 0, 0x100000, 16 * PAGE, 0x40001000), NULL, NULL),
			 -EINVAL);
	/* So is KVM_MEM_READONLY, both ways, even with a move. */
	assert_int_equal(check(s, region(1, KVM_MEM_READONLY, 0x100000, 16 * PAGE, 0x40000000),
			       NULL, NULL), -EINVAL);
	assert_int_equal(check(s, region(2, 0, 0x200000, 16 * PAGE, 0x50000000), NULL, NULL),
			 -EINVAL);
	assert_int_equal(check(s, region(2, 0, 0x800000, 16 * PAGE, 0x50000000), NULL, NULL),
			 -EINVAL);

	/* Dirty logging on and off is a flags-only change. */
	assert_int_equal(check(s, region(1, KVM_MEM_LOG_DIRTY_PAGES, 0x100000, 16 * PAGE,
					 0x40000000), &c, &n), 0);
	assert_int_equal(c, KVMPP_MEMSLOT_FLAGS);
	assert_int_equal(n.flags, KVM_MEM_LOG_DIRTY_PAGES);
	assert_int_equal(set(s, region(2, KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES, 0x200000,
				       16 * PAGE, 0x50000000)), KVMPP_MEMSLOT_FLAGS);
	assert_int_equal(by_id(s, 2)->flags, KVM_MEM_READONLY | KVM_MEM_LOG_DIRTY_PAGES);

	/* A move, onto part of its own old range: its old place does not count. */
	assert_int_equal(set(s, region(1, 0, 0x108000, 16 * PAGE, 0x40000000)),
			 KVMPP_MEMSLOT_MOVE);
	assert_int_equal(by_id(s, 1)->base_gfn, 0x108);
	/* A move onto another slot. */
	assert_int_equal(check(s, region(1, 0, 0x1f8000, 16 * PAGE, 0x40000000), NULL, NULL),
			 -EEXIST);
	/* A move with a flags change, below the other slot: order changes. */
	assert_int_equal(set(s, region(1, KVM_MEM_LOG_DIRTY_PAGES, 0x300000, 16 * PAGE,
				       0x40000000)), KVMPP_MEMSLOT_MOVE);
	assert_int_equal(s->slots[0].id, 2);
	assert_int_equal(s->slots[1].id, 1);
	assert_int_equal(s->slots[1].flags, KVM_MEM_LOG_DIRTY_PAGES);
	assert_sorted(s);
	free(s);
}

static void overlaps_are_eexist(void **state)
{
	struct kvmpp_memslots *s = set_new(8);
	/* [0x100, 0x110) in gfns. */
	const u64 base = 0x100000, size = 16 * PAGE;
	struct { u64 gpa, size; int err; } cases[] = {
		{ base, size, -EEXIST },			/* the same range */
		{ base - PAGE, 2 * PAGE, -EEXIST },		/* across the start */
		{ base + size - PAGE, 2 * PAGE, -EEXIST },	/* across the end */
		{ base + PAGE, PAGE, -EEXIST },			/* inside */
		{ base - PAGE, size + 2 * PAGE, -EEXIST },	/* around */
		{ base - PAGE, PAGE, 0 },			/* adjacent below */
		{ base + size, PAGE, 0 },			/* adjacent above */
		{ 0, base, 0 },					/* everything below */
		{ 0, base + PAGE, -EEXIST },
		{ base + size, 1ULL << 32, 0 },			/* a lot above */
	};
	size_t i;

	(void)state;
	set(s, region(7, 0, base, size, 0x40000000));
	for (i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(check(s, region(8, 0, cases[i].gpa, cases[i].size, 0), NULL, NULL),
				 cases[i].err);

	/* Between two adjacent slots there is no room. */
	set(s, region(9, 0, base + size, size, 0x50000000));
	set(s, region(10, 0, base - PAGE, PAGE, 0x60000000));
	assert_int_equal(check(s, region(8, 0, base + size - PAGE, PAGE, 0), NULL, NULL), -EEXIST);
	assert_int_equal(check(s, region(8, 0, base + size, PAGE, 0), NULL, NULL), -EEXIST);
	assert_int_equal(check(s, region(8, 0, base - 2 * PAGE, PAGE, 0), NULL, NULL), 0);
	assert_sorted(s);
	free(s);
}

static void find_by_gfn(void **state)
{
	struct kvmpp_memslots *s = set_new(8);
	const u64 top_gfn = MAX_GFN;

	(void)state;
	assert_null(kvmpp_memslot_find(s, 0));
	assert_null(kvmpp_memslot_find(s, ~0ULL));

	set(s, region(0, 0, 0, PAGE, 0x10000000));			/* gfn 0 */
	set(s, region(1, 0, PAGE, 2 * PAGE, 0x20000000));		/* gfns 1-2, adjacent */
	set(s, region(2, 0, 0x100000, 0x100000, 0x30000000));		/* gfns 0x100-0x1ff */
	set(s, region(3, 0, top_gfn * PAGE, PAGE, 0x40000000));	/* the last gfn */

	assert_int_equal(kvmpp_memslot_find(s, 0)->id, 0);
	assert_int_equal(kvmpp_memslot_find(s, 1)->id, 1);
	assert_int_equal(kvmpp_memslot_find(s, 2)->id, 1);
	assert_null(kvmpp_memslot_find(s, 3));
	assert_null(kvmpp_memslot_find(s, 0xff));
	assert_int_equal(kvmpp_memslot_find(s, 0x100)->id, 2);
	assert_int_equal(kvmpp_memslot_find(s, 0x1ff)->id, 2);
	assert_null(kvmpp_memslot_find(s, 0x200));
	assert_null(kvmpp_memslot_find(s, top_gfn - 1));
	assert_int_equal(kvmpp_memslot_find(s, top_gfn)->id, 3);
	assert_null(kvmpp_memslot_find(s, top_gfn + 1));
	assert_null(kvmpp_memslot_find(s, ~0ULL));
	assert_sorted(s);
	free(s);
}

/* A tiny deterministic generator, so failures reproduce. */
static u64 rng_state = 0x9e3779b97f4a7c15ULL;
static u64 rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/*
 * Random creates, moves, flag changes and deletes in a small guest space,
 * compared with a brute-force model: per slot id its range, and per gfn who
 * owns it.
 */
static void random_updates_match_a_model(void **state)
{
	enum { IDS = 24, GFNS = 256, STEPS = 20000 };
	struct kvmpp_memslots *s = set_new(IDS);
	struct { bool used; u64 base, npages; u32 flags; } model[IDS] = {};
	int step, id, g;

	(void)state;
	for (step = 0; step < STEPS; step++) {
		u32 slot = rng() % IDS;
		u64 base = rng() % GFNS, npages = rng() % 16 + 1;
		u32 flags = rng() % 4 == 0 ? KVM_MEM_LOG_DIRTY_PAGES : 0;
		u64 uaddr = 0x10000000ULL * (slot + 1);
		bool del = rng() % 3 == 0;
		enum kvmpp_memslot_change c;
		struct kvmpp_memslot n, old = {};
		int expect, err;

		if (model[slot].used && !del) {
			npages = model[slot].npages;	/* keep moves and flag changes valid */
			if (rng() % 2)
				base = model[slot].base;
		}
		if (del) {
			expect = model[slot].used ? 0 : -EINVAL;
		} else {
			expect = 0;
			for (id = 0; id < IDS; id++)
				if (id != (int)slot && model[id].used &&
				    base < model[id].base + model[id].npages &&
				    model[id].base < base + npages)
					expect = -EEXIST;
			if (model[slot].used && base == model[slot].base)
				expect = 0;	/* no move: no overlap check */
		}

		if (by_id(s, slot))
			old = *by_id(s, slot);
		err = check(s, region(slot, flags, base * PAGE, del ? 0 : npages * PAGE, uaddr),
			    &c, &n);
		assert_int_equal(err, expect);
		if (err)
			continue;
		kvmpp_memslots_apply(s, c, &old, &n);
		if (del) {
			model[slot].used = false;
		} else {
			model[slot].used = true;
			model[slot].base = base;
			model[slot].npages = npages;
			model[slot].flags = flags;
		}

		assert_sorted(s);
		for (g = 0; g < GFNS + 20; g++) {
			const struct kvmpp_memslot *found = kvmpp_memslot_find(s, g);
			int owner = -1;

			for (id = 0; id < IDS; id++)
				if (model[id].used && (u64)g >= model[id].base &&
				    (u64)g < model[id].base + model[id].npages)
					owner = id;
			if (owner < 0) {
				assert_null(found);
			} else {
				assert_non_null(found);
				assert_int_equal(found->id, owner);
				assert_int_equal(found->flags, model[owner].flags);
			}
		}
	}
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_accepted),
		cmocka_unit_test(malformed_requests_are_einval),
		cmocka_unit_test(guest_frames_beyond_the_tables_are_einval),
		cmocka_unit_test(delete_rules),
		cmocka_unit_test(modify_rules),
		cmocka_unit_test(overlaps_are_eexist),
		cmocka_unit_test(find_by_gfn),
		cmocka_unit_test(random_updates_match_a_model),
	};

	return cmocka_run_group_tests_name("memslot_check", tests, NULL, NULL);
}
