// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests of kernel/x86/walker.c: page tables of every format built in a
 * fake 16 MiB guest memory, walked for every kind of access.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "x86/walker.h"

/*
 * Architectural values, written out again from the Intel SDM (vol. 3A 2.5,
 * 4.3-4.7) rather than taken from walker.c, so that a wrong bit there shows.
 */
#define CR0_PE		0x1ull
#define CR0_WP		0x10000ull
#define CR0_PG		0x80000000ull
#define CR4_PSE		0x10ull
#define CR4_PAE		0x20ull
#define CR4_LA57	0x1000ull
#define CR4_SMEP	0x100000ull
#define CR4_SMAP	0x200000ull
#define CR4_PKE		0x400000ull
#define CR4_PKS		0x1000000ull
#define EFER_LME	0x100ull
#define EFER_LMA	0x400ull
#define EFER_NXE	0x800ull
#define RFLAGS_AC	0x40000ull

#define P		0x1ull
#define RW		0x2ull
#define US		0x4ull
#define ACC		0x20ull
#define DIRTY		0x40ull
#define PS		0x80ull
#define XD		(1ull << 63)
#define PKEY(k)		((u64)(k) << 59)
#define BIT(n)		(1ull << (n))
#define UPPER		(P | RW | US)

#define EC_P		0x1u
#define EC_W		0x2u
#define EC_U		0x4u
#define EC_RSVD		0x8u
#define EC_ID		0x10u
#define EC_PK		0x20u

#define RD		0u
#define WR		KVMPP_WALK_WRITE
#define EX		KVMPP_WALK_FETCH
#define IMPL		KVMPP_WALK_IMPLICIT_SUPERVISOR

#define KIB		0x400ull
#define MIB		0x100000ull
#define GIB		0x40000000ull
#define MEM_SIZE	(16 * MIB)
/* Address-field mask of an 8-byte entry (bits 51:12). */
#define ADDR_MASK	0x000ffffffffff000ull

/* ---- fake guest memory ---- */

static u8 *mem;
static u64 next_table;

static struct {
	int reads, cmpxchgs;
	bool fail_read;		/* -EFAULT for a read at fail_read_gpa */
	u64 fail_read_gpa;
	int races;		/* cmpxchg answers "changed" this many times */
	void (*on_race)(void);	/* the guest's concurrent write, if any */
	int cmpxchg_error;	/* every cmpxchg fails with this when nonzero */
	int last_len;
} fake;

static int fake_read(void *ctx, u64 gpa, void *buf, int len)
{
	(void)ctx;
	fake.reads++;
	if (fake.fail_read && gpa == fake.fail_read_gpa)
		return -EFAULT;
	if (gpa >= MEM_SIZE || gpa + len > MEM_SIZE)
		return -EFAULT;
	memcpy(buf, mem + gpa, len);
	return 0;
}

static int fake_cmpxchg(void *ctx, u64 gpa, u64 old, u64 new, int len)
{
	u64 cur = 0;

	(void)ctx;
	fake.cmpxchgs++;
	fake.last_len = len;
	assert_true(len == 4 || len == 8);
	if (fake.cmpxchg_error)
		return fake.cmpxchg_error;
	if (gpa >= MEM_SIZE || gpa + len > MEM_SIZE)
		return -EFAULT;
	if (fake.races) {
		fake.races--;
		if (fake.on_race)
			fake.on_race();
		else
			return 1;
	}
	memcpy(&cur, mem + gpa, len);
	if (cur != old)
		return 1;
	memcpy(mem + gpa, &new, len);
	return 0;
}

static const struct kvmpp_walk_ops ops = {
	.read = fake_read,
	.cmpxchg = fake_cmpxchg,
};

static const struct kvmpp_walk_ops read_only_ops = {
	.read = fake_read,
};

static u64 *e64(u64 gpa)
{
	assert_true(gpa + 8 <= MEM_SIZE);
	return (u64 *)(mem + gpa);
}

static u32 *e32(u64 gpa)
{
	assert_true(gpa + 4 <= MEM_SIZE);
	return (u32 *)(mem + gpa);
}

static u64 alloc_table(void)
{
	u64 t = next_table;

	next_table += 4 * KIB;
	assert_true(next_table <= MEM_SIZE);
	return t;
}

static int setup(void **state)
{
	(void)state;
	memset(mem, 0, MEM_SIZE);
	memset(&fake, 0, sizeof(fake));
	next_table = 64 * KIB;
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	mem = aligned_alloc(4096, MEM_SIZE);
	return mem ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	free(mem);
	return 0;
}

/* ---- page-table builders ---- */

/* Where the entries of one translation live, by level (1: PTE). */
struct path {
	u64 at[6];
};

/*
 * 8-byte formats: map @gva to @gpa under @root, with @levels levels (3: PAE,
 * whose top level is the 4-entry PDPT; 4; 5), the page at @leaf_level with
 * @flags (PS added above level 1). Missing tables are allocated, their
 * entries get UPPER (PAE PDPTEs: P only).
 */
static void map64(struct path *path, u64 root, int levels, u64 gva, u64 gpa,
		  int leaf_level, u64 flags)
{
	u64 table = root;
	int level;

	for (level = levels;; level--) {
		bool pdpte = levels == 3 && level == 3;
		u64 index = (gva >> (12 + 9 * (level - 1))) & (pdpte ? 3 : 511);
		u64 at = table + 8 * index;

		if (path)
			path->at[level] = at;
		if (level == leaf_level) {
			*e64(at) = gpa | flags | (level > 1 ? PS : 0);
			return;
		}
		if (!(*e64(at) & P))
			*e64(at) = alloc_table() | (pdpte ? P : UPPER);
		table = *e64(at) & ADDR_MASK;
	}
}

/* 32-bit paging: map @gva to @gpa under @cr3, a 4 MiB page if @big (PSE-36 bits from @gpa). */
static void map32(struct path *path, u64 cr3, u32 gva, u64 gpa, bool big, u32 flags)
{
	u64 pde_at = cr3 + 4 * (gva >> 22), pte_at;

	if (path)
		path->at[2] = pde_at;
	if (big) {
		*e32(pde_at) = (u32)(gpa & 0xffc00000) | (u32)(gpa >> 32) << 13 | flags | (u32)PS;
		return;
	}
	if (!(*e32(pde_at) & P))
		*e32(pde_at) = (u32)alloc_table() | (u32)UPPER;
	pte_at = (*e32(pde_at) & 0xfffff000) + 4 * ((gva >> 12) & 1023);
	if (path)
		path->at[1] = pte_at;
	*e32(pte_at) = (u32)gpa | flags;
}

/* ---- modes ---- */

static struct kvmpp_walk_mode mode_nopaging(void)
{
	return (struct kvmpp_walk_mode){ .cr0 = CR0_PE, .maxphyaddr = 40 };
}

static struct kvmpp_walk_mode mode_32bit(void)
{
	return (struct kvmpp_walk_mode){
		.cr0 = CR0_PE | CR0_PG | CR0_WP, .cr3 = alloc_table(), .maxphyaddr = 40,
	};
}

static struct kvmpp_walk_mode mode_pae(void)
{
	return (struct kvmpp_walk_mode){
		.cr0 = CR0_PE | CR0_PG | CR0_WP, .cr3 = alloc_table(), .cr4 = CR4_PAE,
		.efer = EFER_NXE, .maxphyaddr = 40,
	};
}

static struct kvmpp_walk_mode mode_4level(void)
{
	return (struct kvmpp_walk_mode){
		.cr0 = CR0_PE | CR0_PG | CR0_WP, .cr3 = alloc_table(), .cr4 = CR4_PAE,
		.efer = EFER_LME | EFER_LMA | EFER_NXE, .maxphyaddr = 40,
	};
}

static struct kvmpp_walk_mode mode_5level(void)
{
	struct kvmpp_walk_mode m = mode_4level();

	m.cr4 |= CR4_LA57;
	return m;
}

/* ---- walking ---- */

static int walk(const struct kvmpp_walk_mode *m, u64 gva, u32 access,
		struct kvmpp_walk_result *res)
{
	return kvmpp_walk(&ops, m, gva, access, res);
}

static void expect_gpa(const struct kvmpp_walk_mode *m, u64 gva, u32 access, u64 gpa)
{
	struct kvmpp_walk_result res;

	assert_int_equal(walk(m, gva, access, &res), 0);
	assert_int_equal(res.gpa, gpa);
}

static void expect_ok(const struct kvmpp_walk_mode *m, u64 gva, u32 access)
{
	struct kvmpp_walk_result res;

	assert_int_equal(walk(m, gva, access, &res), 0);
}

static void expect_fault(const struct kvmpp_walk_mode *m, u64 gva, u32 access, u32 ec)
{
	struct kvmpp_walk_result res;

	assert_int_equal(walk(m, gva, access, &res), KVMPP_WALK_FAULT);
	assert_int_equal(res.error_code, ec);
}

/* The usual 4-level test page: gva GVA64 -> GPA64, 4 KiB, with @flags on the PTE. */
#define GVA64 0x00007f1234567abcull
#define GPA64 0x00000000abcde000ull

static void map_test_page(struct path *path, const struct kvmpp_walk_mode *m, u64 flags)
{
	map64(path, m->cr3, 4, GVA64, GPA64, 1, flags);
}

/* ---- interface ---- */

static void error_code_bits_match_the_sdm(void **state)
{
	(void)state;
	assert_int_equal(KVMPP_PF_PRESENT, EC_P);
	assert_int_equal(KVMPP_PF_WRITE, EC_W);
	assert_int_equal(KVMPP_PF_USER, EC_U);
	assert_int_equal(KVMPP_PF_RSVD, EC_RSVD);
	assert_int_equal(KVMPP_PF_FETCH, EC_ID);
	assert_int_equal(KVMPP_PF_PK, EC_PK);
}

static void meaningless_access_is_einval(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map_test_page(NULL, &m, UPPER);
	assert_int_equal(walk(&m, GVA64, 0x80, &res), -EINVAL);
	assert_int_equal(walk(&m, GVA64, EX | WR, &res), -EINVAL);
	assert_int_equal(walk(&m, GVA64, EX | IMPL, &res), -EINVAL);
	assert_int_equal(fake.reads, 0);
}

static void long_mode_without_pae_is_einval(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	m.cr4 &= ~CR4_PAE;
	assert_int_equal(walk(&m, 0x1000, RD, &res), -EINVAL);
}

/* ---- no paging ---- */

static void no_paging_is_identity_truncated_to_32_bits(void **state)
{
	struct kvmpp_walk_mode m = mode_nopaging();
	struct kvmpp_walk_result res;

	(void)state;
	assert_int_equal(walk(&m, 0x123456789ull, RD, &res), 0);
	assert_int_equal(res.gpa, 0x23456789);
	assert_int_equal(res.page_size, 4 * KIB);
	assert_int_equal(res.perm, KVMPP_WALK_PERM_WRITE | KVMPP_WALK_PERM_USER |
				   KVMPP_WALK_PERM_EXEC);
	assert_int_equal(fake.reads, 0);
}

static void no_paging_allows_every_access(void **state)
{
	struct kvmpp_walk_mode m = mode_nopaging();

	(void)state;
	m.cpl = 3;
	m.cr4 = CR4_SMEP | CR4_SMAP | CR4_PAE;	/* paging controls without paging */
	expect_gpa(&m, 0xfffff000, WR, 0xfffff000);
	expect_gpa(&m, 0xfffff000, EX, 0xfffff000);
	expect_gpa(&m, 0xfffff000, IMPL, 0xfffff000);
	assert_int_equal(fake.reads + fake.cmpxchgs, 0);
}

/* ---- 32-bit paging ---- */

static void pg32_4k_page(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct kvmpp_walk_result res;

	(void)state;
	map32(NULL, m.cr3, 0x40123abc, 0x00789000, false, UPPER);
	assert_int_equal(walk(&m, 0x40123abc, RD, &res), 0);
	assert_int_equal(res.gpa, 0x00789abc);
	assert_int_equal(res.page_size, 4 * KIB);
	assert_int_equal(fake.reads, 2);
	/* Linear addresses are 32 bits: the upper half of the argument does not count. */
	expect_gpa(&m, 0xffffffff40123abcull, RD, 0x00789abc);
}

static void pg32_not_present(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct path p;

	(void)state;
	expect_fault(&m, 0x40123abc, RD, 0);
	assert_int_equal(fake.reads, 1);
	m.cpl = 3;
	expect_fault(&m, 0x40123abc, WR, EC_W | EC_U);
	/* Present PDE, absent PTE. */
	map32(&p, m.cr3, 0x40123abc, 0x00789000, false, UPPER);
	*e32(p.at[1]) = 0;
	fake.reads = 0;
	expect_fault(&m, 0x40123abc, RD, EC_U);
	assert_int_equal(fake.reads, 2);
}

static void pg32_4m_page_with_pse(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct kvmpp_walk_result res;

	(void)state;
	m.cr4 = CR4_PSE;
	map32(NULL, m.cr3, 0x80000000, 0x01c00000, true, UPPER);
	assert_int_equal(walk(&m, 0x80123456, RD, &res), 0);
	assert_int_equal(res.gpa, 0x01d23456);
	assert_int_equal(res.page_size, 4 * MIB);
	assert_int_equal(fake.reads, 1);
}

static void pg32_ps_is_ignored_without_pse(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct path p;

	(void)state;
	map32(&p, m.cr3, 0x40123abc, 0x00789000, false, UPPER);
	*e32(p.at[2]) |= (u32)PS;
	expect_gpa(&m, 0x40123abc, RD, 0x00789abc);
	assert_int_equal(fake.reads, 2);
}

static void pg32_pse36_high_address_bits(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();

	(void)state;
	m.cr4 = CR4_PSE;
	m.maxphyaddr = 40;
	map32(NULL, m.cr3, 0x00000000, 0xabffc00000ull, true, UPPER);
	expect_gpa(&m, 0x00001234, RD, 0xabffc01234ull);
	/* With MAXPHYADDR 36, bits 16:13 carry address bits 35:32. */
	m.maxphyaddr = 36;
	map32(NULL, m.cr3, 0x00400000, 0xf00400000ull, true, UPPER);
	expect_gpa(&m, 0x00400010, RD, 0xf00400010ull);
}

static void pg32_pse36_reserved_bits_follow_maxphyaddr(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct path p;

	(void)state;
	m.cr4 = CR4_PSE;
	map32(&p, m.cr3, 0x00000000, 0x00400000, true, UPPER);

	m.maxphyaddr = 36;	/* bits 21:17 reserved */
	*e32(p.at[2]) |= (u32)BIT(17);
	expect_fault(&m, 0x1000, RD, EC_P | EC_RSVD);
	*e32(p.at[2]) &= ~(u32)BIT(17);
	*e32(p.at[2]) |= (u32)BIT(16);
	expect_gpa(&m, 0x1000, RD, 0x800401000ull);

	m.maxphyaddr = 40;	/* bit 21 reserved, 20:13 are address bits 39:32 */
	*e32(p.at[2]) = 0x00400000 | (u32)BIT(20) | (u32)(UPPER | PS);
	expect_gpa(&m, 0x1000, RD, 0x8000401000ull);
	*e32(p.at[2]) |= (u32)BIT(21);
	expect_fault(&m, 0x1000, RD, EC_P | EC_RSVD);

	m.maxphyaddr = 52;	/* PSE-36 stops at 40 bits: bit 21 stays reserved */
	expect_fault(&m, 0x1000, RD, EC_P | EC_RSVD);

	m.maxphyaddr = 32;	/* no high bits at all: 21:13 reserved */
	*e32(p.at[2]) = 0x00400000 | (u32)BIT(13) | (u32)(UPPER | PS);
	expect_fault(&m, 0x1000, RD, EC_P | EC_RSVD);
}

static void pg32_4k_entries_have_no_reserved_bits(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct path p;

	(void)state;
	m.cr4 = CR4_PSE;
	map32(&p, m.cr3, 0x40123abc, 0x00789000, false, UPPER);
	/* Ignored, PAT, G, PWT/PCD bits; bit 6 of a PDE that points to a table. */
	*e32(p.at[1]) |= 0xf98;
	*e32(p.at[2]) |= 0xe58;
	expect_gpa(&m, 0x40123abc, RD, 0x00789abc);
}

static void pg32_has_no_xd_and_sets_id_only_with_smep(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();

	(void)state;
	m.efer = EFER_NXE;	/* no effect without PAE */
	map32(NULL, m.cr3, 0x40000000, 0x00789000, false, P | RW);	/* supervisor page */
	expect_ok(&m, 0x40000000, EX);
	m.cpl = 3;
	expect_fault(&m, 0x40000000, EX, EC_P | EC_U);
	m.cr4 = CR4_SMEP;
	expect_fault(&m, 0x40000000, EX, EC_P | EC_U | EC_ID);
	/* Not present: I/D still says fetch. */
	expect_fault(&m, 0x80000000, EX, EC_U | EC_ID);
}

static void pg32_accessed_dirty_are_4_byte_updates(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct path p;

	(void)state;
	map32(&p, m.cr3, 0x40123abc, 0x00789000, false, UPPER);
	map32(NULL, m.cr3, 0x40124000, 0x0078a000, false, UPPER);	/* the next PTE */
	expect_ok(&m, 0x40123abc, WR);
	assert_int_equal(*e32(p.at[2]) & (ACC | DIRTY), ACC);
	assert_int_equal(*e32(p.at[1]) & (ACC | DIRTY), ACC | DIRTY);
	assert_int_equal(*e32(p.at[1] + 4), 0x0078a000 | UPPER);
	assert_int_equal(fake.cmpxchgs, 2);
	assert_int_equal(fake.last_len, 4);
}

static void pg32_self_mapping_directory_converges(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	u64 slot = m.cr3 + 4 * 0x3ff;
	struct kvmpp_walk_result res;

	(void)state;
	/*
	 * The last PDE points to the directory itself, so 0xfffff000 maps the
	 * directory and its walk uses that PDE twice: the second A/D update
	 * sees the first one's write as a concurrent change and walks again.
	 */
	*e32(slot) = (u32)m.cr3 | (u32)UPPER;
	assert_int_equal(walk(&m, 0xfffffffc, WR, &res), 0);
	assert_int_equal(res.gpa, m.cr3 + 0xffc);
	assert_int_equal(*e32(slot), (u32)m.cr3 | (u32)(UPPER | ACC | DIRTY));
}

/* ---- PAE paging ---- */

#define GVA_PAE 0xc0201abcull

static void pae_4k_page_above_4g(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct kvmpp_walk_result res;

	(void)state;
	map64(NULL, m.cr3, 3, GVA_PAE, 0x323456000ull, 1, UPPER);
	assert_int_equal(walk(&m, GVA_PAE, RD, &res), 0);
	assert_int_equal(res.gpa, 0x323456abcull);
	assert_int_equal(res.page_size, 4 * KIB);
	assert_int_equal(fake.reads, 3);
	expect_gpa(&m, 0xabcd0000ull << 32 | GVA_PAE, RD, 0x323456abcull);
}

static void pae_2m_page(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct kvmpp_walk_result res;

	(void)state;
	map64(NULL, m.cr3, 3, 0x40200000, 0x100400000ull, 2, UPPER);
	assert_int_equal(walk(&m, 0x40212345, RD, &res), 0);
	assert_int_equal(res.gpa, 0x100412345ull);
	assert_int_equal(res.page_size, 2 * MIB);
	assert_int_equal(fake.reads, 2);
}

static void pae_pdpt_is_32_byte_aligned_in_cr3(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	u64 pdpt = m.cr3 + 0x60;

	(void)state;
	/* CR3 bits 4:3 are PWT/PCD, not address. */
	m.cr3 = pdpt | 0x18;
	map64(NULL, pdpt, 3, GVA_PAE, 0x00789000, 1, UPPER);
	expect_gpa(&m, GVA_PAE, RD, 0x00789abc);
	assert_int_equal(*e64(pdpt + 8 * 3) & P, P);
}

static void pae_pdpte_not_present(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();

	(void)state;
	expect_fault(&m, GVA_PAE, RD, 0);
	expect_fault(&m, GVA_PAE, WR, EC_W);
	assert_int_equal(fake.reads, 2);
}

static void pae_pdpte_reserved_bits(void **state)
{
	static const int reserved[] = { 1, 2, 5, 6, 7, 8, 40, 51, 52, 62, 63 };
	static const int allowed[] = { 3, 4, 9, 10, 11 };
	struct kvmpp_walk_mode m = mode_pae();
	struct path p;
	u64 good;
	size_t i;

	(void)state;
	map64(&p, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	good = *e64(p.at[3]);
	for (i = 0; i < ARRAY_SIZE(reserved); i++) {
		*e64(p.at[3]) = good | BIT(reserved[i]);
		expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
	}
	for (i = 0; i < ARRAY_SIZE(allowed); i++) {
		*e64(p.at[3]) = good | BIT(allowed[i]);
		expect_gpa(&m, GVA_PAE, RD, 0x00789abc);
	}
	/* An AMD CPU walking PDPTEs in memory (nested paging) sets their A flag: not reserved. */
	m.amd = true;
	*e64(p.at[3]) = good | ACC;
	expect_gpa(&m, GVA_PAE, RD, 0x00789abc);
	*e64(p.at[3]) = good | BIT(6);
	expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
	m.amd = false;
	/* The same checks on PDPTE registers handed in by the caller. */
	*e64(p.at[3]) = good;
	m.pdptrs[3] = good | BIT(63);
	m.pdptrs_valid = true;
	expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
	m.amd = true;
	m.pdptrs[3] = good | ACC;
	expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
}

static void pae_cached_pdptes_replace_memory(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct path p;

	(void)state;
	map64(&p, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	m.pdptrs[3] = *e64(p.at[3]);
	m.pdptrs_valid = true;
	*e64(p.at[3]) = 0;	/* the guest changed the PDPT after loading CR3 */
	expect_gpa(&m, GVA_PAE, RD, 0x00789abc);
	assert_int_equal(fake.reads, 2);
	/* And the other way round: a not-present register wins over memory. */
	*e64(p.at[3]) = m.pdptrs[3];
	m.pdptrs[3] = 0;
	expect_fault(&m, GVA_PAE, RD, 0);
}

static void pae_xd_needs_nxe(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct path p;

	(void)state;
	map64(&p, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	*e64(p.at[2]) |= XD;
	expect_ok(&m, GVA_PAE, RD);
	expect_fault(&m, GVA_PAE, EX, EC_P | EC_ID);
	/* Without NXE, bit 63 is reserved, and a fetch fault has no I/D. */
	m.efer = 0;
	expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
	expect_fault(&m, GVA_PAE, EX, EC_P | EC_RSVD);
	*e64(p.at[2]) &= ~XD;
	expect_ok(&m, GVA_PAE, EX);
}

static void pae_reserved_bits_in_pde_and_pte(void **state)
{
	static const int pte_reserved[] = { 40, 51, 52, 58, 59, 62 };
	struct kvmpp_walk_mode m = mode_pae();
	struct path p;
	u64 good;
	size_t i;

	(void)state;
	/* Bits 62:M are reserved: protection keys and ignored bits do not exist in PAE paging. */
	map64(&p, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	for (i = 0; i < ARRAY_SIZE(pte_reserved); i++) {
		good = *e64(p.at[1]);
		*e64(p.at[1]) |= BIT(pte_reserved[i]);
		expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
		*e64(p.at[1]) = good;
		good = *e64(p.at[2]);
		*e64(p.at[2]) |= BIT(pte_reserved[i]);
		expect_fault(&m, GVA_PAE, RD, EC_P | EC_RSVD);
		*e64(p.at[2]) = good;
	}
	/* 2 MiB PDE: 20:13 reserved, 12 is PAT. */
	map64(&p, m.cr3, 3, 0x40200000, 0x00400000, 2, UPPER);
	*e64(p.at[2]) |= BIT(12);
	expect_gpa(&m, 0x40200010, RD, 0x00400010);
	*e64(p.at[2]) |= BIT(13);
	expect_fault(&m, 0x40200010, RD, EC_P | EC_RSVD);
	*e64(p.at[2]) ^= BIT(13) | BIT(20);
	expect_fault(&m, 0x40200010, RD, EC_P | EC_RSVD);
}

static void pae_has_no_protection_keys(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();

	(void)state;
	m.cr4 |= CR4_PKE | CR4_PKS;
	m.pkru = m.pkrs = 0xffffffff;
	m.cpl = 3;
	map64(NULL, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	expect_ok(&m, GVA_PAE, WR);
}

static void pae_pdpte_gets_no_accessed_flag(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct path p;
	u64 pdpte;

	(void)state;
	map64(&p, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	pdpte = *e64(p.at[3]);
	expect_ok(&m, GVA_PAE, WR);
	assert_int_equal(*e64(p.at[3]), pdpte);
	assert_int_equal(*e64(p.at[2]) & (ACC | DIRTY), ACC);
	assert_int_equal(*e64(p.at[1]) & (ACC | DIRTY), ACC | DIRTY);
	assert_int_equal(fake.cmpxchgs, 2);
	assert_int_equal(fake.last_len, 8);
}

static void pae_ignores_la57(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();

	(void)state;
	m.cr4 |= CR4_LA57;
	map64(NULL, m.cr3, 3, GVA_PAE, 0x00789000, 1, UPPER);
	expect_gpa(&m, GVA_PAE, RD, 0x00789abc);
	assert_int_equal(fake.reads, 3);
}

/* ---- 4-level and 5-level paging ---- */

static void long_4k_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map_test_page(NULL, &m, UPPER);
	assert_int_equal(walk(&m, GVA64, RD, &res), 0);
	assert_int_equal(res.gpa, GPA64 | 0xabc);
	assert_int_equal(res.page_size, 4 * KIB);
	assert_int_equal(fake.reads, 4);
}

static void long_2m_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map64(NULL, m.cr3, 4, 0x7f0000200000ull, 0x8000600000ull, 2, UPPER);
	assert_int_equal(walk(&m, 0x7f00002abcdeull, RD, &res), 0);
	assert_int_equal(res.gpa, 0x80006abcdeull);
	assert_int_equal(res.page_size, 2 * MIB);
	assert_int_equal(fake.reads, 3);
}

static void long_1g_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map64(NULL, m.cr3, 4, 0x7f0040000000ull, 0xc000000000ull, 3, UPPER);
	assert_int_equal(walk(&m, 0x7f0052345678ull, RD, &res), 0);
	assert_int_equal(res.gpa, 0xc012345678ull);
	assert_int_equal(res.page_size, GIB);
	assert_int_equal(fake.reads, 2);
}

static void long_high_half(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map64(NULL, m.cr3, 4, 0xffffffff80001000ull, 0x00200000, 1, UPPER);
	expect_gpa(&m, 0xffffffff80001008ull, RD, 0x00200008);
}

static void long_noncanonical_is_not_a_page_fault(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	assert_int_equal(walk(&m, 0x0000800000000000ull, RD, &res), KVMPP_WALK_NONCANONICAL);
	assert_int_equal(walk(&m, 0xffff7fffffffffffull, WR, &res), KVMPP_WALK_NONCANONICAL);
	assert_int_equal(walk(&m, 0x8000000000000000ull, EX, &res), KVMPP_WALK_NONCANONICAL);
	assert_int_equal(fake.reads, 0);
	/* The edges of the canonical halves walk (and find nothing). */
	expect_fault(&m, 0x00007fffffffffffull, RD, 0);
	expect_fault(&m, 0xffff800000000000ull, RD, 0);
}

static void long_not_present_at_each_level(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	m.cpl = 3;
	for (level = 4; level >= 1; level--) {
		u64 good = *e64(p.at[level]);

		*e64(p.at[level]) = good & ~P;
		fake.reads = 0;
		expect_fault(&m, GVA64, WR, EC_W | EC_U);
		assert_int_equal(fake.reads, 5 - level);
		*e64(p.at[level]) = good;
	}
	assert_int_equal(fake.cmpxchgs, 0);
}

static void long_reserved_ignored_when_not_present(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	*e64(p.at[1]) = ~P;
	expect_fault(&m, GVA64, RD, 0);
}

static void long_reserved_above_maxphyaddr_at_each_level(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	for (level = 4; level >= 1; level--) {
		u64 good = *e64(p.at[level]);

		*e64(p.at[level]) = good | BIT(40);
		expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);
		*e64(p.at[level]) = good | BIT(51);
		expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);
		*e64(p.at[level]) = good;
	}
	/* A wider MAXPHYADDR makes the same bit an address bit. */
	*e64(p.at[1]) |= BIT(45);
	expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);
	m.maxphyaddr = 48;
	expect_gpa(&m, GVA64, RD, BIT(45) | GPA64 | 0xabc);
}

static void long_ps_is_reserved_in_pml4e_and_pml5e(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_mode m5 = mode_5level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	*e64(p.at[4]) |= PS;
	expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);

	map64(&p, m5.cr3, 5, GVA64, GPA64, 1, UPPER);
	expect_ok(&m5, GVA64, RD);
	*e64(p.at[5]) |= PS;
	expect_fault(&m5, GVA64, RD, EC_P | EC_RSVD);
	*e64(p.at[5]) &= ~PS;
	*e64(p.at[4]) |= PS;
	expect_fault(&m5, GVA64, RD, EC_P | EC_RSVD);
}

static void long_1g_page_reserved_bits(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map64(&p, m.cr3, 4, 0x40000000, 0x80000000ull, 3, UPPER);
	*e64(p.at[3]) |= BIT(12);	/* PAT */
	expect_gpa(&m, 0x40000123, RD, 0x80000123ull);
	*e64(p.at[3]) |= BIT(13);
	expect_fault(&m, 0x40000123, RD, EC_P | EC_RSVD);
	*e64(p.at[3]) ^= BIT(13) | BIT(29);
	expect_fault(&m, 0x40000123, RD, EC_P | EC_RSVD);
}

static void long_2m_page_reserved_bits(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map64(&p, m.cr3, 4, 0x200000, 0x400000, 2, UPPER);
	*e64(p.at[2]) |= BIT(12);	/* PAT */
	expect_gpa(&m, 0x200123, RD, 0x400123);
	*e64(p.at[2]) |= BIT(13);
	expect_fault(&m, 0x200123, RD, EC_P | EC_RSVD);
	*e64(p.at[2]) ^= BIT(13) | BIT(20);
	expect_fault(&m, 0x200123, RD, EC_P | EC_RSVD);
	/* In a PDE that points to a table, bits 20:13 are address bits. */
	map_test_page(&p, &m, UPPER);
	memcpy(mem + 0x1fe000, mem + (p.at[1] & ~0xfffull), 4 * KIB);
	*e64(p.at[2]) = 0x1fe000 | UPPER;
	expect_gpa(&m, GVA64, RD, GPA64 | 0xabc);
}

static void long_xd_is_reserved_without_nxe(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	m.efer &= ~EFER_NXE;
	for (level = 4; level >= 1; level--) {
		*e64(p.at[level]) |= XD;
		expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);
		*e64(p.at[level]) &= ~XD;
	}
	expect_ok(&m, GVA64, EX);
}

static void long_ignored_bits_are_ignored(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	/* Non-leaf: 6 (no D), 8 (no G), 11:9, 62:52. Leaf: 8 (G), 7 (PAT), 11:9, 62:52. */
	*e64(p.at[4]) |= 0x7ff0000000000f40ull;
	*e64(p.at[3]) |= 0x7ff0000000000f40ull;
	*e64(p.at[2]) |= 0x7ff0000000000f40ull;
	*e64(p.at[1]) |= 0x7ff0000000000f98ull;
	expect_gpa(&m, GVA64, RD, GPA64 | 0xabc);
}

static void amd_reserves_bit_8_of_pml4e_only(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	*e64(p.at[4]) |= BIT(8);
	expect_ok(&m, GVA64, RD);
	m.amd = true;
	expect_fault(&m, GVA64, RD, EC_P | EC_RSVD);
	*e64(p.at[4]) &= ~BIT(8);
	*e64(p.at[3]) |= BIT(8);
	expect_ok(&m, GVA64, RD);
}

static void reserved_fault_reports_the_access(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	*e64(p.at[2]) |= BIT(50);
	m.cpl = 3;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U | EC_RSVD);
	expect_fault(&m, GVA64, EX, EC_P | EC_U | EC_ID | EC_RSVD);
	/* A reserved bit beats a later not-present entry and every right. */
	*e64(p.at[1]) = 0;
	*e64(p.at[3]) &= ~US;
	expect_fault(&m, GVA64, RD, EC_P | EC_U | EC_RSVD);
}

static void la57_walks_five_levels(void **state)
{
	struct kvmpp_walk_mode m = mode_5level();
	struct kvmpp_walk_mode m4 = mode_4level();
	const u64 gva = 0x00ff000000001234ull;	/* canonical only with 57 bits */
	struct kvmpp_walk_result res;

	(void)state;
	map64(NULL, m.cr3, 5, gva, 0x00300000, 1, UPPER);
	assert_int_equal(walk(&m, gva, RD, &res), 0);
	assert_int_equal(res.gpa, 0x00300234);
	assert_int_equal(fake.reads, 5);
	assert_int_equal(walk(&m4, gva, RD, &res), KVMPP_WALK_NONCANONICAL);
	assert_int_equal(walk(&m, 0x0100000000000000ull, RD, &res), KVMPP_WALK_NONCANONICAL);
	expect_fault(&m, 0xff00000000000000ull, RD, 0);
}

static void la57_maps_1g_pages(void **state)
{
	struct kvmpp_walk_mode m = mode_5level();

	(void)state;
	map64(NULL, m.cr3, 5, 0xff7f0040000000ull, 0x40000000, 3, UPPER);
	expect_gpa(&m, 0xff7f0040000010ull, RD, 0x40000010);
}

/* ---- access rights (4-level) ---- */

static void user_access_to_supervisor_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | RW);
	expect_ok(&m, GVA64, RD);
	m.cpl = 3;
	expect_fault(&m, GVA64, RD, EC_P | EC_U);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
	expect_fault(&m, GVA64, EX, EC_P | EC_U | EC_ID);
}

static void user_write_to_read_only_page_faults_whatever_wp(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | US);
	m.cpl = 3;
	expect_ok(&m, GVA64, RD);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
	m.cr0 &= ~CR0_WP;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
}

static void supervisor_write_to_read_only_page_with_wp(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, P);
	expect_fault(&m, GVA64, WR, EC_P | EC_W);
	assert_int_equal(*e64(p.at[1]) & (ACC | DIRTY), 0);
	map_test_page(NULL, &m, P | US);
	expect_fault(&m, GVA64, WR, EC_P | EC_W);
}

static void supervisor_write_to_read_only_page_without_wp(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	m.cr0 &= ~CR0_WP;
	map_test_page(&p, &m, P);
	expect_gpa(&m, GVA64, WR, GPA64 | 0xabc);
	assert_int_equal(*e64(p.at[1]) & (ACC | DIRTY), ACC | DIRTY);
	map_test_page(NULL, &m, P | US);	/* user page too */
	expect_ok(&m, GVA64, WR);
}

static void write_needs_rw_at_every_level(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	m.cpl = 3;
	for (level = 4; level >= 1; level--) {
		*e64(p.at[level]) &= ~RW;
		expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
		assert_int_equal(walk(&m, GVA64, RD, &res), 0);
		assert_int_equal(res.perm, KVMPP_WALK_PERM_USER | KVMPP_WALK_PERM_EXEC);
		*e64(p.at[level]) |= RW;
	}
}

static void user_needs_us_at_every_level(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	for (level = 4; level >= 1; level--) {
		*e64(p.at[level]) &= ~US;
		m.cpl = 3;
		expect_fault(&m, GVA64, RD, EC_P | EC_U);
		m.cpl = 0;
		assert_int_equal(walk(&m, GVA64, RD, &res), 0);
		assert_int_equal(res.perm, KVMPP_WALK_PERM_WRITE | KVMPP_WALK_PERM_EXEC);
		*e64(p.at[level]) |= US;
	}
}

static void xd_at_any_level_stops_fetches(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	for (level = 4; level >= 1; level--) {
		*e64(p.at[level]) |= XD;
		m.cpl = 0;
		expect_fault(&m, GVA64, EX, EC_P | EC_ID);
		assert_int_equal(walk(&m, GVA64, WR, &res), 0);
		assert_int_equal(res.perm, KVMPP_WALK_PERM_WRITE | KVMPP_WALK_PERM_USER);
		m.cpl = 3;
		expect_fault(&m, GVA64, EX, EC_P | EC_U | EC_ID);
		*e64(p.at[level]) &= ~XD;
	}
	expect_ok(&m, GVA64, EX);
}

static void id_bit_needs_nxe_or_smep(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | RW);	/* supervisor page */
	m.cpl = 3;
	m.efer &= ~EFER_NXE;
	expect_fault(&m, GVA64, EX, EC_P | EC_U);
	expect_fault(&m, 0x1000, EX, EC_U);
	m.cr4 |= CR4_SMEP;
	expect_fault(&m, GVA64, EX, EC_P | EC_U | EC_ID);
	m.cr4 &= ~CR4_SMEP;
	m.efer |= EFER_NXE;
	expect_fault(&m, GVA64, EX, EC_P | EC_U | EC_ID);
	expect_fault(&m, 0x1000, EX, EC_U | EC_ID);
	/* I/D belongs to fetches only. */
	expect_fault(&m, 0x1000, RD, EC_U);
}

static void smep_stops_supervisor_fetch_from_user_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	expect_ok(&m, GVA64, EX);
	m.cr4 |= CR4_SMEP;
	expect_fault(&m, GVA64, EX, EC_P | EC_ID);
	expect_ok(&m, GVA64, RD);
	expect_ok(&m, GVA64, WR);
	m.cpl = 3;
	expect_ok(&m, GVA64, EX);
	/* U/S=0 at one level makes it a supervisor page: fetch allowed. */
	m.cpl = 0;
	*e64(p.at[3]) &= ~US;
	expect_ok(&m, GVA64, EX);
}

static void smap_stops_supervisor_data_access_to_user_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, UPPER);
	m.cr4 |= CR4_SMAP;
	expect_fault(&m, GVA64, RD, EC_P);
	expect_fault(&m, GVA64, WR, EC_P | EC_W);
	expect_ok(&m, GVA64, EX);	/* fetches are SMEP's business */
	m.rflags = RFLAGS_AC;
	expect_ok(&m, GVA64, RD);
	expect_ok(&m, GVA64, WR);
	/* User-mode accesses are not affected, whatever AC. */
	m.cpl = 3;
	m.rflags = 0;
	expect_ok(&m, GVA64, WR);
}

static void smap_ac_does_not_cover_implicit_accesses(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, UPPER);
	m.cr4 |= CR4_SMAP;
	m.rflags = RFLAGS_AC;
	expect_fault(&m, GVA64, IMPL, EC_P);
	expect_fault(&m, GVA64, IMPL | WR, EC_P | EC_W);
	/* At CPL 3 too; and the error code says supervisor. */
	m.cpl = 3;
	expect_fault(&m, GVA64, IMPL, EC_P);
	m.cr4 &= ~CR4_SMAP;
	expect_ok(&m, GVA64, IMPL);
}

static void smap_with_ac_still_honours_wp(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | US);
	m.cr4 |= CR4_SMAP;
	m.rflags = RFLAGS_AC;
	expect_fault(&m, GVA64, WR, EC_P | EC_W);
	m.cr0 &= ~CR0_WP;
	expect_ok(&m, GVA64, WR);
	m.rflags = 0;
	expect_fault(&m, GVA64, WR, EC_P | EC_W);
}

static void smap_leaves_supervisor_pages_alone(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | RW);
	m.cr4 |= CR4_SMAP | CR4_SMEP;
	expect_ok(&m, GVA64, RD);
	expect_ok(&m, GVA64, WR);
	expect_ok(&m, GVA64, EX);
	expect_ok(&m, GVA64, IMPL | WR);
}

static void implicit_access_at_cpl3_is_supervisor(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P);	/* supervisor, read-only */
	m.cpl = 3;
	expect_ok(&m, GVA64, IMPL);
	expect_fault(&m, GVA64, IMPL | WR, EC_P | EC_W);
	m.cr0 &= ~CR0_WP;
	expect_ok(&m, GVA64, IMPL | WR);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
}

static void pkru_access_disable(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, UPPER | PKEY(5));
	map64(NULL, m.cr3, 4, 0x1000, 0x2000, 1, UPPER | PKEY(4));
	m.cr4 |= CR4_PKE;
	m.pkru = 1u << 10;	/* AD5 */
	m.cpl = 3;
	expect_fault(&m, GVA64, RD, EC_P | EC_U | EC_PK);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U | EC_PK);
	expect_ok(&m, GVA64, EX);
	expect_ok(&m, 0x1000, WR);
	/* Keys guard user-mode addresses against every data access, supervisor's too. */
	m.cpl = 0;
	expect_fault(&m, GVA64, RD, EC_P | EC_PK);
	expect_fault(&m, GVA64, IMPL, EC_P | EC_PK);
	m.cr0 &= ~CR0_WP;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_PK);
}

static void pkru_write_disable(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, UPPER | PKEY(5));
	m.cr4 |= CR4_PKE;
	m.pkru = 1u << 11;	/* WD5 */
	m.cpl = 3;
	expect_ok(&m, GVA64, RD);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U | EC_PK);
	m.cpl = 0;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_PK);
	m.cr0 &= ~CR0_WP;
	expect_ok(&m, GVA64, WR);
	/* CR0.WP=0 lifts WD for supervisor writes only. */
	m.cpl = 3;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U | EC_PK);
}

static void pkey_flag_joins_an_ordinary_violation(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | US | PKEY(15));
	m.cr4 |= CR4_PKE;
	m.pkru = 1u << 31;	/* WD15 */
	m.cpl = 3;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U | EC_PK);
	m.pkru = 0;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
}

static void pkru_needs_pke_and_a_user_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | RW | PKEY(1));	/* supervisor page */
	map64(NULL, m.cr3, 4, 0x1000, 0x2000, 1, UPPER | PKEY(1));
	m.pkru = 0xffffffff;
	expect_ok(&m, 0x1000, WR);	/* CR4.PKE=0 */
	m.cr4 |= CR4_PKE;
	expect_fault(&m, 0x1000, WR, EC_P | EC_W | EC_PK);
	expect_ok(&m, GVA64, WR);	/* PKRU has no say over supervisor pages */
}

static void pkrs_guards_supervisor_pages(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(NULL, &m, P | RW | PKEY(3));
	map64(NULL, m.cr3, 4, 0x1000, 0x2000, 1, UPPER | PKEY(3));
	m.pkrs = 1u << 6;	/* AD3 */
	expect_ok(&m, GVA64, RD);	/* CR4.PKS=0 */
	m.cr4 |= CR4_PKS;
	expect_fault(&m, GVA64, RD, EC_P | EC_PK);
	expect_ok(&m, GVA64, EX);
	m.rflags = RFLAGS_AC;
	expect_ok(&m, 0x1000, WR);	/* PKRS has no say over user pages */
	m.pkrs = 1u << 7;	/* WD3 */
	expect_ok(&m, GVA64, RD);
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_PK);
	m.cr0 &= ~CR0_WP;
	expect_ok(&m, GVA64, WR);
}

static void pkey_of_a_large_page(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map64(NULL, m.cr3, 4, 0x200000, 0x400000, 2, UPPER | PKEY(9));
	map64(NULL, m.cr3, 4, 0x40000000, 0x80000000ull, 3, UPPER | PKEY(9));
	m.cr4 |= CR4_PKE;
	m.pkru = 1u << 18;	/* AD9 */
	m.cpl = 3;
	expect_fault(&m, 0x200000, RD, EC_P | EC_U | EC_PK);
	expect_fault(&m, 0x40000000, RD, EC_P | EC_U | EC_PK);
}

static void perm_reports_the_rights(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map_test_page(NULL, &m, UPPER);
	assert_int_equal(walk(&m, GVA64, RD, &res), 0);
	assert_int_equal(res.perm, KVMPP_WALK_PERM_WRITE | KVMPP_WALK_PERM_USER |
				   KVMPP_WALK_PERM_EXEC);
	map_test_page(NULL, &m, P | XD);
	assert_int_equal(walk(&m, GVA64, RD, &res), 0);
	assert_int_equal(res.perm, 0);
	/* Without NXE nothing is execute-disabled. */
	m.efer &= ~EFER_NXE;
	map_test_page(NULL, &m, P);
	assert_int_equal(walk(&m, GVA64, RD, &res), 0);
	assert_int_equal(res.perm, KVMPP_WALK_PERM_EXEC);
}

/* ---- accessed and dirty flags ---- */

static void read_sets_accessed_at_every_level(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	expect_ok(&m, GVA64, RD);
	for (level = 4; level >= 1; level--)
		assert_int_equal(*e64(p.at[level]) & (ACC | DIRTY), ACC);
	assert_int_equal(fake.cmpxchgs, 4);
	assert_int_equal(fake.last_len, 8);
	/* Fetches set A too. */
	map_test_page(&p, &m, UPPER);
	expect_ok(&m, GVA64, EX);
	assert_int_equal(*e64(p.at[1]) & (ACC | DIRTY), ACC);
}

static void write_sets_dirty_in_the_leaf_only(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map64(&p, m.cr3, 4, 0x200000, 0x400000, 2, UPPER);
	expect_ok(&m, 0x200000, WR);
	assert_int_equal(*e64(p.at[4]) & (ACC | DIRTY), ACC);
	assert_int_equal(*e64(p.at[3]) & (ACC | DIRTY), ACC);
	assert_int_equal(*e64(p.at[2]) & (ACC | DIRTY), ACC | DIRTY);
	assert_int_equal(*e64(p.at[2]) & ~(ACC | DIRTY), 0x400000 | UPPER | PS);
}

static void no_accessed_dirty_writes_when_the_walk_faults(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, P | US);
	m.cpl = 3;
	expect_fault(&m, GVA64, WR, EC_P | EC_W | EC_U);
	*e64(p.at[1]) = 0;
	expect_fault(&m, GVA64, RD, EC_U);
	*e64(p.at[1]) = GPA64 | UPPER | BIT(45);
	expect_fault(&m, GVA64, RD, EC_P | EC_U | EC_RSVD);
	for (level = 4; level >= 2; level--)
		assert_int_equal(*e64(p.at[level]) & ACC, 0);
	assert_int_equal(fake.cmpxchgs, 0);
}

static void flags_already_set_are_not_written(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER | ACC);
	for (level = 4; level >= 2; level--)
		*e64(p.at[level]) |= ACC;
	expect_ok(&m, GVA64, RD);
	assert_int_equal(fake.cmpxchgs, 0);
	expect_ok(&m, GVA64, WR);	/* only D is missing */
	assert_int_equal(fake.cmpxchgs, 1);
	expect_ok(&m, GVA64, WR);
	assert_int_equal(fake.cmpxchgs, 1);
}

static void lost_race_restarts_the_walk(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	fake.races = 1;
	expect_gpa(&m, GVA64, WR, GPA64 | 0xabc);
	assert_int_equal(fake.reads, 8);
	assert_int_equal(fake.cmpxchgs, 5);	/* 1 lost, then 4 */
	assert_int_equal(*e64(p.at[1]) & (ACC | DIRTY), ACC | DIRTY);
}

static struct path race_path;

static void guest_unmaps_the_page(void)
{
	*e64(race_path.at[1]) &= ~P;
}

static void restarted_walk_sees_the_guests_change(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();

	(void)state;
	map_test_page(&race_path, &m, UPPER);
	fake.races = 1;
	fake.on_race = guest_unmaps_the_page;
	expect_fault(&m, GVA64, WR, EC_W);
	assert_int_equal(fake.reads, 8);
}

static void endless_races_give_up_with_eagain(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map_test_page(NULL, &m, UPPER);
	fake.races = 1000000;
	assert_int_equal(walk(&m, GVA64, RD, &res), -EAGAIN);
	assert_true(fake.cmpxchgs < 100);
}

static void cmpxchg_error_is_returned(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;

	(void)state;
	map_test_page(NULL, &m, UPPER);
	fake.cmpxchg_error = -EFAULT;
	assert_int_equal(walk(&m, GVA64, RD, &res), -EFAULT);
	assert_int_equal(fake.cmpxchgs, 1);
}

static void no_cmpxchg_means_no_flag_updates(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;
	struct path p;

	(void)state;
	map_test_page(&p, &m, UPPER);
	assert_int_equal(kvmpp_walk(&read_only_ops, &m, GVA64, WR, &res), 0);
	assert_int_equal(res.gpa, GPA64 | 0xabc);
	assert_int_equal(*e64(p.at[1]), GPA64 | UPPER);
	assert_int_equal(*e64(p.at[4]) & ACC, 0);
}

/* ---- errors from guest memory ---- */

static void read_error_is_returned(void **state)
{
	struct kvmpp_walk_mode m = mode_4level();
	struct kvmpp_walk_result res;
	struct path p;
	int level;

	(void)state;
	map_test_page(&p, &m, UPPER);
	for (level = 4; level >= 1; level--) {
		fake.fail_read = true;
		fake.fail_read_gpa = p.at[level];
		assert_int_equal(walk(&m, GVA64, RD, &res), -EFAULT);
	}
	fake.fail_read = false;
	/* A table beyond guest memory. */
	*e64(p.at[2]) = 0x40000000 | UPPER;
	assert_int_equal(walk(&m, GVA64, RD, &res), -EFAULT);
	assert_int_equal(fake.cmpxchgs, 0);
}

static void pae_pdpte_read_error_is_returned(void **state)
{
	struct kvmpp_walk_mode m = mode_pae();
	struct kvmpp_walk_result res;

	(void)state;
	m.cr3 = MEM_SIZE + 0x20;
	assert_int_equal(walk(&m, GVA_PAE, RD, &res), -EFAULT);
	/* Cached PDPTEs need no read of the PDPT. */
	m.pdptrs_valid = true;
	expect_fault(&m, GVA_PAE, RD, 0);
}

static void pg32_read_error_is_returned(void **state)
{
	struct kvmpp_walk_mode m = mode_32bit();
	struct kvmpp_walk_result res;

	(void)state;
	*e32(m.cr3 + 4 * (0x40123abc >> 22)) = 0x80000000 | (u32)UPPER;
	assert_int_equal(walk(&m, 0x40123abc, RD, &res), -EFAULT);
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(error_code_bits_match_the_sdm),
		T(meaningless_access_is_einval),
		T(long_mode_without_pae_is_einval),
		T(no_paging_is_identity_truncated_to_32_bits),
		T(no_paging_allows_every_access),
		T(pg32_4k_page),
		T(pg32_not_present),
		T(pg32_4m_page_with_pse),
		T(pg32_ps_is_ignored_without_pse),
		T(pg32_pse36_high_address_bits),
		T(pg32_pse36_reserved_bits_follow_maxphyaddr),
		T(pg32_4k_entries_have_no_reserved_bits),
		T(pg32_has_no_xd_and_sets_id_only_with_smep),
		T(pg32_accessed_dirty_are_4_byte_updates),
		T(pg32_self_mapping_directory_converges),
		T(pae_4k_page_above_4g),
		T(pae_2m_page),
		T(pae_pdpt_is_32_byte_aligned_in_cr3),
		T(pae_pdpte_not_present),
		T(pae_pdpte_reserved_bits),
		T(pae_cached_pdptes_replace_memory),
		T(pae_xd_needs_nxe),
		T(pae_reserved_bits_in_pde_and_pte),
		T(pae_has_no_protection_keys),
		T(pae_pdpte_gets_no_accessed_flag),
		T(pae_ignores_la57),
		T(long_4k_page),
		T(long_2m_page),
		T(long_1g_page),
		T(long_high_half),
		T(long_noncanonical_is_not_a_page_fault),
		T(long_not_present_at_each_level),
		T(long_reserved_ignored_when_not_present),
		T(long_reserved_above_maxphyaddr_at_each_level),
		T(long_ps_is_reserved_in_pml4e_and_pml5e),
		T(long_1g_page_reserved_bits),
		T(long_2m_page_reserved_bits),
		T(long_xd_is_reserved_without_nxe),
		T(long_ignored_bits_are_ignored),
		T(amd_reserves_bit_8_of_pml4e_only),
		T(reserved_fault_reports_the_access),
		T(la57_walks_five_levels),
		T(la57_maps_1g_pages),
		T(user_access_to_supervisor_page),
		T(user_write_to_read_only_page_faults_whatever_wp),
		T(supervisor_write_to_read_only_page_with_wp),
		T(supervisor_write_to_read_only_page_without_wp),
		T(write_needs_rw_at_every_level),
		T(user_needs_us_at_every_level),
		T(xd_at_any_level_stops_fetches),
		T(id_bit_needs_nxe_or_smep),
		T(smep_stops_supervisor_fetch_from_user_page),
		T(smap_stops_supervisor_data_access_to_user_page),
		T(smap_ac_does_not_cover_implicit_accesses),
		T(smap_with_ac_still_honours_wp),
		T(smap_leaves_supervisor_pages_alone),
		T(implicit_access_at_cpl3_is_supervisor),
		T(pkru_access_disable),
		T(pkru_write_disable),
		T(pkey_flag_joins_an_ordinary_violation),
		T(pkru_needs_pke_and_a_user_page),
		T(pkrs_guards_supervisor_pages),
		T(pkey_of_a_large_page),
		T(perm_reports_the_rights),
		T(read_sets_accessed_at_every_level),
		T(write_sets_dirty_in_the_leaf_only),
		T(no_accessed_dirty_writes_when_the_walk_faults),
		T(flags_already_set_are_not_written),
		T(lost_race_restarts_the_walk),
		T(restarted_walk_sees_the_guests_change),
		T(endless_races_give_up_with_eagain),
		T(cmpxchg_error_is_returned),
		T(no_cmpxchg_means_no_flag_updates),
		T(read_error_is_returned),
		T(pae_pdpte_read_error_is_returned),
		T(pg32_read_error_is_returned),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
