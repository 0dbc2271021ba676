// SPDX-License-Identifier: GPL-2.0-only
/*
 * Guest page-table walker (interface in walker.h). One loop serves every
 * paging mode: a mode is its number of levels, its entry size and the levels
 * at which an entry may map a page; the rest is the reserved-bit and
 * access-right arithmetic of the manuals.
 */
#include "walker.h"

/*
 * Architectural bits. CR0, CR4 and RFLAGS come from the kernel's UAPI
 * <asm/processor-flags.h>, which the CMocka tests include as well. What the
 * UAPI headers do not have is named here (the kernel's own names, in
 * <asm/msr-index.h> and <asm/pgtable_types.h>, are not usable from the tests):
 * - IA32_EFER: SDM vol. 3A, 2.2.1 "Extended Feature Enable Register".
 * - CR4.PKS: SDM vol. 3A, 2.5 "Control Registers".
 * - Paging-structure entries: SDM vol. 3A, 4.3 (32-bit paging, tables 4-4 to
 *   4-6), 4.4 (PAE paging, tables 4-8 to 4-11) and 4.5 (4-level and 5-level
 *   paging, tables 4-14 to 4-20). P, R/W, U/S, A, PS and XD sit at the same
 *   positions in every format; D only means something in an entry that maps
 *   a page.
 * - PKRU and IA32_PKRS: SDM vol. 3A, 4.6.2 "Protection Keys": for key i,
 *   bit 2i is access-disable and bit 2i+1 write-disable.
 */
#include <asm/processor-flags.h>

#define WALK_CR4_PKS		(1ull << 24)
#define WALK_EFER_LMA		(1ull << 10)
#define WALK_EFER_NXE		(1ull << 11)

#define WALK_PTE_P		(1ull << 0)
#define WALK_PTE_RW		(1ull << 1)
#define WALK_PTE_US		(1ull << 2)
#define WALK_PTE_A		(1ull << 5)
#define WALK_PTE_D		(1ull << 6)
#define WALK_PTE_PS		(1ull << 7)
/* AMD APM vol. 2, 5.3.3 (figures 5-18 and 5-19): bit 8 of a PML4E (and PML5E) is MBZ. */
#define WALK_PTE_AMD_MBZ8	(1ull << 8)
#define WALK_PTE_XD		(1ull << 63)
/* Bits 62:59 of a 4/5-level entry that maps a page: its protection key. */
#define WALK_PTE_PKEY_SHIFT	59
#define WALK_PTE_PKEY_MASK	0xfull
/* 32-bit paging, 4 MiB PDE: bits 20:13 are physical-address bits 39:32 (PSE-36). */
#define WALK_PDE4M_HIGH_SHIFT	13

#define WALK_PAGE_SHIFT		12
#define WALK_PAGE_SIZE		(1ull << WALK_PAGE_SHIFT)

enum walk_format {
	WALK_32BIT,	/* CR4.PAE=0: 2 levels of 4-byte entries */
	WALK_PAE,	/* CR4.PAE=1, EFER.LMA=0: PDPTEs, then 2 levels of 8-byte entries */
	WALK_4LEVEL,	/* EFER.LMA=1 */
	WALK_5LEVEL,	/* EFER.LMA=1, CR4.LA57=1 */
};

#define WALK_MAX_LEVELS		5
/* Restarts after losing an A/D race to the guest, before giving up with -EAGAIN. */
#define WALK_MAX_RETRIES	16
/* walk_once(): an A/D update lost a race, walk again. Not a kvmpp_walk() result. */
#define WALK_RACE		3

struct walk_entry {
	u64 gpa;
	u64 value;
};

struct walk {
	const struct kvmpp_walk_ops *ops;
	const struct kvmpp_walk_mode *mode;
	enum walk_format fmt;
	u64 gva;
	bool write, fetch, implicit;
	bool user;		/* user-mode access: CPL 3 and not implicit */
	bool nx;		/* XD bits in use: PAE or 4/5-level paging, EFER.NXE=1 */
	int maxphyaddr;

	/* What one pass found. */
	struct walk_entry used[WALK_MAX_LEVELS];	/* entries with an A flag, root first */
	int nr_used;
	bool writable;		/* R/W=1 at every level */
	bool user_page;		/* U/S=1 at every level: a user-mode address */
	bool xd;		/* XD=1 at some level (only when nx) */
};

/* Bits @hi down to @lo; none when @lo > @hi. */
static u64 bit_range(int hi, int lo)
{
	if (lo > hi)
		return 0;
	return (~0ull >> (63 - hi)) & (~0ull << lo);
}

static bool long_mode(const struct walk *w)
{
	return w->fmt == WALK_4LEVEL || w->fmt == WALK_5LEVEL;
}

static int entry_size(const struct walk *w)
{
	return w->fmt == WALK_32BIT ? 4 : 8;
}

static int top_level(const struct walk *w)
{
	switch (w->fmt) {
	case WALK_32BIT:
		return 2;
	case WALK_PAE:
		return 3;
	case WALK_4LEVEL:
		return 4;
	default:
		return 5;
	}
}

/* Lowest linear-address bit that indexes the table at @level; also log2 of its page size. */
static int level_shift(const struct walk *w, int level)
{
	if (w->fmt == WALK_32BIT)
		return WALK_PAGE_SHIFT + 10 * (level - 1);
	return WALK_PAGE_SHIFT + 9 * (level - 1);
}

static u64 level_index(const struct walk *w, int level)
{
	int bits = w->fmt == WALK_32BIT ? 10 : 9;

	if (w->fmt == WALK_PAE && level == 3)
		bits = 2;	/* four PDPTEs, linear-address bits 31:30 */
	return (w->gva >> level_shift(w, level)) & bit_range(bits - 1, 0);
}

/* Whether PS=1 in an entry at @level maps a page (elsewhere PS is reserved or ignored). */
static bool can_map_page(const struct walk *w, int level)
{
	switch (w->fmt) {
	case WALK_32BIT:
		return level == 2 && (w->mode->cr4 & X86_CR4_PSE);
	case WALK_PAE:
		return level == 2;
	default:
		return level == 2 || level == 3;	/* 1 GiB pages assumed supported */
	}
}

/* PSE-36 is limited to 40 bits of physical address (SDM 4.3: M = min(MAXPHYADDR, 40)). */
static int pse36_width(const struct walk *w)
{
	return w->maxphyaddr < 40 ? w->maxphyaddr : 40;
}

/*
 * The bits that must be zero in a present entry at @level, which maps a page
 * if @page (SDM 4.3, 4.4.1, 4.4.2, 4.5).
 */
static u64 reserved_bits(const struct walk *w, int level, bool page)
{
	int m = w->maxphyaddr;
	u64 rsvd;

	switch (w->fmt) {
	case WALK_32BIT:
		/* Only 4 MiB PDEs have any: bit 21 and the PSE-36 bits above M. */
		return level == 2 && page ? bit_range(21, pse36_width(w) - 19) : 0;
	case WALK_PAE:
		if (level == 3) {	/* PDPTE: no XD, no R/W, U/S, A, PS */
			rsvd = bit_range(63, m) | bit_range(8, 5) | bit_range(2, 1);
			/*
			 * Except on AMD when the PDPTEs are read from memory on
			 * each walk (nested paging): that CPU sets their accessed
			 * flag like any other entry's (seen under QEMU's AMD
			 * model: a guest's PDPTE 0x6001 became 0x6021).
			 */
			if (w->mode->amd && !w->mode->pdptrs_valid)
				rsvd &= ~WALK_PTE_A;
			return rsvd;
		}
		rsvd = bit_range(62, m);
		break;
	default:
		rsvd = bit_range(51, m);	/* 62:52 are ignored or protection key */
		break;
	}
	if (!w->nx)
		rsvd |= WALK_PTE_XD;
	if (level >= 4) {
		rsvd |= WALK_PTE_PS;
		if (w->mode->amd)
			rsvd |= WALK_PTE_AMD_MBZ8;
	} else if (page && level == 3) {
		rsvd |= bit_range(29, 13);	/* 1 GiB page: bit 12 is PAT */
	} else if (page && level == 2) {
		rsvd |= bit_range(20, 13);	/* 2 MiB page */
	}
	return rsvd;
}

/* Physical address of the table an entry points to, or of the page it maps. */
static u64 entry_address(const struct walk *w, u64 entry, int level, bool page)
{
	u64 offset_bits = page ? bit_range(level_shift(w, level) - 1, 0) : 0;
	u64 high;

	if (w->fmt != WALK_32BIT)
		return entry & bit_range(w->maxphyaddr - 1, WALK_PAGE_SHIFT) & ~offset_bits;
	if (level == 2 && page) {
		high = (entry >> WALK_PDE4M_HIGH_SHIFT) & bit_range(pse36_width(w) - 33, 0);
		return (entry & bit_range(31, 22)) | high << 32;
	}
	return entry & bit_range(31, WALK_PAGE_SHIFT);
}

static u64 root_table(const struct walk *w)
{
	u64 cr3 = w->mode->cr3;

	switch (w->fmt) {
	case WALK_32BIT:
		return cr3 & bit_range(31, WALK_PAGE_SHIFT);
	case WALK_PAE:
		return cr3 & bit_range(31, 5);	/* 32-byte aligned PDPT */
	default:
		return cr3 & bit_range(w->maxphyaddr - 1, WALK_PAGE_SHIFT);
	}
}

static int read_entry(const struct walk *w, u64 gpa, u64 *entry)
{
	u32 narrow = 0;
	u64 wide = 0;
	int ret;

	if (entry_size(w) == 4) {
		ret = w->ops->read(w->ops->ctx, gpa, &narrow, sizeof(narrow));
		wide = narrow;
	} else {
		ret = w->ops->read(w->ops->ctx, gpa, &wide, sizeof(wide));
	}
	*entry = wide;
	return ret;
}

/*
 * The error code of a #PF for this access, given the cause bits (SDM 4.7).
 * I/D is set for fetches only with SMEP, or with XD in use (PAE or 4/5-level
 * paging and EFER.NXE), not merely for any fetch.
 */
static int fault(const struct walk *w, struct kvmpp_walk_result *res, u32 cause)
{
	u32 ec = cause;

	if (w->write)
		ec |= KVMPP_PF_WRITE;
	if (w->user)
		ec |= KVMPP_PF_USER;
	if (w->fetch && (w->nx || (w->mode->cr4 & X86_CR4_SMEP)))
		ec |= KVMPP_PF_FETCH;
	res->error_code = ec;
	return KVMPP_WALK_FAULT;
}

/*
 * Whether the protection key of @leaf forbids this data access (SDM 4.6.2).
 * PKRU guards user-mode addresses (CR4.PKE), IA32_PKRS supervisor-mode ones
 * (CR4.PKS), in 4/5-level paging only. Access-disable stops every data
 * access; write-disable stops user-mode writes, and supervisor-mode writes
 * when CR0.WP=1. The keys apply whoever accesses, so a supervisor read of a
 * user page is checked against PKRU.
 */
static bool pkey_denies(const struct walk *w, u64 leaf)
{
	const struct kvmpp_walk_mode *m = w->mode;
	u32 keys, key;

	if (w->fetch || !long_mode(w))
		return false;
	if (w->user_page && (m->cr4 & X86_CR4_PKE))
		keys = m->pkru;
	else if (!w->user_page && (m->cr4 & WALK_CR4_PKS))
		keys = m->pkrs;
	else
		return false;
	key = (leaf >> WALK_PTE_PKEY_SHIFT) & WALK_PTE_PKEY_MASK;
	if (keys & (1u << (2 * key)))
		return true;
	return (keys & (1u << (2 * key + 1))) && w->write &&
	       (w->user || (m->cr0 & X86_CR0_WP));
}

/*
 * The #PF cause bits if the translation's access rights forbid the access,
 * else 0 (SDM 4.6.1). A protection-key denial adds PK even when the ordinary
 * rights forbid the access too, as the definition of the PK flag in 4.7 reads.
 */
static u32 rights_violation(const struct walk *w, u64 leaf)
{
	const struct kvmpp_walk_mode *m = w->mode;
	bool denied;

	if (w->user) {
		denied = !w->user_page || (w->write && !w->writable) ||
			 (w->fetch && w->xd);
	} else if (w->fetch) {
		denied = w->xd || (w->user_page && (m->cr4 & X86_CR4_SMEP));
	} else {
		/* SMAP: RFLAGS.AC lifts it for explicit accesses only. */
		bool smap = (m->cr4 & X86_CR4_SMAP) && w->user_page &&
			    (w->implicit || !(m->rflags & X86_EFLAGS_AC));

		denied = smap || (w->write && !w->writable && (m->cr0 & X86_CR0_WP));
	}
	if (pkey_denies(w, leaf))
		return KVMPP_PF_PRESENT | KVMPP_PF_PK;
	return denied ? KVMPP_PF_PRESENT : 0;
}

/*
 * Set the accessed flag in every entry the walk used and, for a write, the
 * dirty flag in the one that maps the page (SDM 4.8), each with a
 * compare-and-exchange against the value the walk saw: if the guest changed
 * an entry meanwhile, the walk must start over.
 */
static int set_accessed_dirty(const struct walk *w)
{
	int i, ret;

	if (!w->ops->cmpxchg)
		return 0;
	for (i = 0; i < w->nr_used; i++) {
		u64 old = w->used[i].value;
		u64 new = old | WALK_PTE_A;

		if (i == w->nr_used - 1 && w->write)
			new |= WALK_PTE_D;
		if (new == old)
			continue;
		ret = w->ops->cmpxchg(w->ops->ctx, w->used[i].gpa, old, new, entry_size(w));
		if (ret < 0)
			return ret;
		if (ret)
			return WALK_RACE;
	}
	return 0;
}

static int walk_once(struct walk *w, struct kvmpp_walk_result *res)
{
	const struct kvmpp_walk_mode *m = w->mode;
	u64 table = root_table(w), entry, gpa, size;
	int level = top_level(w);
	u32 cause;
	bool page;
	int ret;

	w->nr_used = 0;
	w->writable = true;
	w->user_page = true;
	w->xd = false;

	for (;; level--) {
		u64 index = level_index(w, level);
		/* PAE PDPTEs: no access rights, no accessed flag, maybe cached. */
		bool pdpte = w->fmt == WALK_PAE && level == 3;

		gpa = table + index * entry_size(w);
		if (pdpte && m->pdptrs_valid) {
			entry = m->pdptrs[index];
		} else {
			ret = read_entry(w, gpa, &entry);
			if (ret)
				return ret;
		}
		if (!(entry & WALK_PTE_P))
			return fault(w, res, 0);
		page = level == 1 || (can_map_page(w, level) && (entry & WALK_PTE_PS));
		if (entry & reserved_bits(w, level, page))
			return fault(w, res, KVMPP_PF_PRESENT | KVMPP_PF_RSVD);
		if (!pdpte) {
			w->writable &= !!(entry & WALK_PTE_RW);
			w->user_page &= !!(entry & WALK_PTE_US);
			if (w->nx && (entry & WALK_PTE_XD))
				w->xd = true;
			w->used[w->nr_used].gpa = gpa;
			w->used[w->nr_used].value = entry;
			w->nr_used++;
		}
		if (page)
			break;
		table = entry_address(w, entry, level, false);
	}

	cause = rights_violation(w, entry);
	if (cause)
		return fault(w, res, cause);
	ret = set_accessed_dirty(w);
	if (ret)
		return ret;

	size = 1ull << level_shift(w, level);
	res->gpa = entry_address(w, entry, level, true) | (w->gva & (size - 1));
	res->page_size = size;
	res->perm = (w->writable ? KVMPP_WALK_PERM_WRITE : 0) |
		    (w->user_page ? KVMPP_WALK_PERM_USER : 0) |
		    (w->xd ? 0 : KVMPP_WALK_PERM_EXEC);
	return 0;
}

/* Bits 63:width-1 all equal (SDM vol. 1, 3.3.7.1 "Canonical Addressing"). */
static bool canonical(u64 gva, int width)
{
	u64 top = gva >> (width - 1);

	return top == 0 || top == ~0ull >> (width - 1);
}

int kvmpp_walk(const struct kvmpp_walk_ops *ops,
	       const struct kvmpp_walk_mode *mode, u64 gva, u32 access,
	       struct kvmpp_walk_result *res)
{
	const u32 known = KVMPP_WALK_WRITE | KVMPP_WALK_FETCH |
			  KVMPP_WALK_IMPLICIT_SUPERVISOR;
	struct walk w = {
		.ops = ops,
		.mode = mode,
		.gva = gva,
		.write = access & KVMPP_WALK_WRITE,
		.fetch = access & KVMPP_WALK_FETCH,
		.implicit = access & KVMPP_WALK_IMPLICIT_SUPERVISOR,
	};
	int tries, ret;

	*res = (struct kvmpp_walk_result){ 0 };
	if ((access & ~known) || (w.fetch && (w.write || w.implicit)))
		return -EINVAL;
	w.user = mode->cpl == 3 && !w.implicit;

	if (!(mode->cr0 & X86_CR0_PG)) {
		/* Linear is physical; without paging the CPU is not in long mode. */
		res->gpa = (u32)gva;
		res->page_size = WALK_PAGE_SIZE;
		res->perm = KVMPP_WALK_PERM_WRITE | KVMPP_WALK_PERM_USER |
			    KVMPP_WALK_PERM_EXEC;
		return 0;
	}

	if (!(mode->cr4 & X86_CR4_PAE)) {
		if (mode->efer & WALK_EFER_LMA)
			return -EINVAL;	/* no such CPU state */
		w.fmt = WALK_32BIT;
	} else if (!(mode->efer & WALK_EFER_LMA)) {
		w.fmt = WALK_PAE;
	} else {
		w.fmt = (mode->cr4 & X86_CR4_LA57) ? WALK_5LEVEL : WALK_4LEVEL;
	}

	if (long_mode(&w)) {
		if (!canonical(gva, w.fmt == WALK_5LEVEL ? 57 : 48))
			return KVMPP_WALK_NONCANONICAL;
	} else {
		w.gva = (u32)gva;	/* linear addresses are 32 bits wide */
	}
	w.nx = w.fmt != WALK_32BIT && (mode->efer & WALK_EFER_NXE);
	w.maxphyaddr = mode->maxphyaddr < 32 ? 32 :
		       mode->maxphyaddr > 52 ? 52 : mode->maxphyaddr;

	for (tries = 0; tries < WALK_MAX_RETRIES; tries++) {
		ret = walk_once(&w, res);
		if (ret != WALK_RACE)
			return ret;
	}
	return -EAGAIN;
}
