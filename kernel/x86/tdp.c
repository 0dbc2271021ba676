// SPDX-License-Identifier: GPL-2.0-only
/*
 * Two-dimensional paging: one four-level table tree per VM, in the encoding the
 * backend gives (NPT or EPT), filled on demand from the memslots' host memory.
 *
 * Coherence with the host: pages are not pinned. A fault looks the host page up
 * with get_user_pages, maps it, and drops the reference; the MMU notifier on the
 * VM's mm zaps a mapping before the host changes or frees the page behind it
 * (invalidate_range_start) and flushes the vCPUs' TLBs before the host goes on.
 * A fault that raced with an invalidation is detected with the invalidation
 * sequence (struct kvmpp_tdp) and left for the guest to retry.
 *
 * Every zap flushes the vCPUs' TLBs before it drops tdp->lock. Flushing after
 * unlocking would open a window in which an invalidation finds nothing left to
 * zap, returns without a flush, and the host frees a page a vCPU still has in
 * its TLB. kvmpp_vm_flush_tlbs() only spins (IPIs), so this is allowed.
 *
 * Intermediate tables are never freed while the VM lives: the CPU may be
 * walking one at any time, and freeing them safely would need a flush per
 * table; they cost one page per 2 MiB of guest memory ever mapped 4 KiB-wise.
 */
#include <linux/highmem.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/pgtable.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <asm/processor.h>

#include "../core/kvmpp.h"
#include "tdp.h"

#define TDP_LEVELS		4
#define TDP_ENTRIES		512
#define TDP_LEVEL_BITS		9
/* Bits 51:12 of an entry hold the address of a table or page (NPT and EPT). */
#define TDP_ADDR_MASK		GENMASK_ULL(51, 12)
/* Guest frames per 2 MiB leaf. */
#define TDP_LARGE_PAGES		(1ULL << TDP_LEVEL_BITS)
#define TDP_LARGE_SIZE		(TDP_LARGE_PAGES << KVMPP_GFN_SHIFT)

/* At most one new table per level below the root. */
#define TDP_MAX_NEW_TABLES	(TDP_LEVELS - 1)

static inline struct kvmpp_vm *tdp_vm(struct kvmpp_tdp *tdp)
{
	return container_of(tdp, struct kvmpp_vm, tdp);
}

static inline bool tdp_present(const struct kvmpp_tdp *tdp, u64 entry)
{
	return entry & tdp->format->present_mask;
}

/* A present entry at @level maps a page rather than pointing to a table. */
static inline bool tdp_leaf(const struct kvmpp_tdp *tdp, u64 entry, int level)
{
	return level == 1 || (entry & tdp->format->large_bit);
}

static inline u64 *tdp_child(u64 entry)
{
	return __va(entry & TDP_ADDR_MASK);
}

/* Guest frames one entry at @level covers. */
static inline u64 tdp_span(int level)
{
	return 1ULL << (TDP_LEVEL_BITS * (level - 1));
}

static inline unsigned int tdp_index(u64 gfn, int level)
{
	return (gfn >> (TDP_LEVEL_BITS * (level - 1))) & (TDP_ENTRIES - 1);
}

u64 kvmpp_tdp_max_gfn(void)
{
	unsigned int bits = 36;

	/* The CPUID value, not x86_phys_bits, which SME/MKTME key bits reduce. */
	if (boot_cpu_data.extended_cpuid_level >= 0x80000008)
		bits = cpuid_eax(0x80000008) & 0xff;
	bits = clamp(bits, 32u, 48u);
	return (1ULL << (bits - KVMPP_GFN_SHIFT)) - 1;
}

/*
 * Zaps every leaf of @table (at @level, its first entry covering @base) that
 * maps a frame of [@start, @end); a large leaf that covers part of the range
 * goes whole. Returns whether anything was zapped. Under tdp->lock.
 */
static bool zap_table(struct kvmpp_tdp *tdp, u64 *table, int level, u64 base,
		      u64 start, u64 end)
{
	u64 span = tdp_span(level);
	u64 i = start > base ? (start - base) / span : 0;
	bool zapped = false;

	for (; i < TDP_ENTRIES && base + i * span < end; i++) {
		u64 entry = table[i];

		if (!tdp_present(tdp, entry))
			continue;
		if (tdp_leaf(tdp, entry, level)) {
			WRITE_ONCE(table[i], 0);
			zapped = true;
		} else {
			zapped |= zap_table(tdp, tdp_child(entry), level - 1, base + i * span,
					    start, end);
		}
	}
	return zapped;
}

static bool zap_gfn_range(struct kvmpp_tdp *tdp, u64 start, u64 end)
{
	lockdep_assert_held(&tdp->lock);
	if (start >= end)
		return false;
	return zap_table(tdp, tdp->root, TDP_LEVELS, 0, start, end);
}

/*
 * Zaps what maps host addresses [@start, @end) through any slot of @slots.
 * Under tdp->lock and the memslots' SRCU. A linear scan: VMMs use few slots,
 * and each one costs two comparisons.
 */
static bool zap_hva_range(struct kvmpp_tdp *tdp, const struct kvmpp_memslots *slots,
			  unsigned long start, unsigned long end)
{
	bool zapped = false;
	int i;

	for (i = 0; i < slots->nr; i++) {
		const struct kvmpp_memslot *slot = &slots->slots[i];
		unsigned long slot_start = slot->userspace_addr;
		unsigned long slot_end = slot_start + (slot->npages << KVMPP_GFN_SHIFT);
		unsigned long from, to;

		if (start >= slot_end || end <= slot_start)
			continue;
		from = max(start, slot_start) - slot_start;
		to = min(end, slot_end) - slot_start;
		zapped |= zap_gfn_range(tdp, slot->base_gfn + (from >> KVMPP_GFN_SHIFT),
					slot->base_gfn + DIV_ROUND_UP(to, KVMPP_GFN_SIZE));
	}
	return zapped;
}

/*
 * Drops tdp->lock, flushing first if entries the vCPUs may cache were zapped
 * (not once the VM is being destroyed: no vCPU runs, and the backend flushes
 * an ASID/VPID before it reuses it anyway).
 */
static void tdp_unlock(struct kvmpp_tdp *tdp, bool flush)
{
	if (flush && !tdp->dying)
		kvmpp_vm_flush_tlbs(tdp_vm(tdp));
	spin_unlock(&tdp->lock);
}

void kvmpp_tdp_zap_range(struct kvmpp_vm *vm, u64 start_gfn, u64 end_gfn)
{
	struct kvmpp_tdp *tdp = &vm->tdp;

	if (!tdp->root)
		return;
	spin_lock(&tdp->lock);
	tdp_unlock(tdp, zap_gfn_range(tdp, start_gfn, end_gfn));
}
EXPORT_SYMBOL_GPL(kvmpp_tdp_zap_range);

/* The leaf that maps @gfn, or 0. Under tdp->lock. */
static u64 lookup_leaf(struct kvmpp_tdp *tdp, u64 gfn)
{
	u64 *table = tdp->root;
	int level;

	for (level = TDP_LEVELS; level >= 1; level--) {
		u64 entry = table[tdp_index(gfn, level)];

		if (!tdp_present(tdp, entry))
			return 0;
		if (tdp_leaf(tdp, entry, level))
			return entry;
		table = tdp_child(entry);
	}
	return 0;
}

/* ---- The fault path ---- */

/* Table pages allocated outside the lock for one fault; unused ones are freed. */
struct tdp_spares {
	int nr;
	u64 *pages[TDP_MAX_NEW_TABLES];
};

static void spares_free(struct tdp_spares *spares)
{
	while (spares->nr)
		free_page((unsigned long)spares->pages[--spares->nr]);
}

/*
 * Installs @leaf for @gfn at @level (1: 4 KiB, 2: 2 MiB). Returns 0, -EAGAIN
 * when it needs a table page and @spares has none, or -EEXIST when a 2 MiB leaf
 * is asked for where a table of 4 KiB leaves already is (the caller maps 4 KiB
 * instead: replacing a table would mean freeing it under the CPU's feet). Sets
 * *@flush when a translation the vCPUs may have cached changed to another page.
 * Under tdp->lock.
 */
static int install_leaf(struct kvmpp_tdp *tdp, u64 gfn, int level, u64 leaf,
			struct tdp_spares *spares, bool *flush)
{
	const struct kvmpp_tdp_format *format = tdp->format;
	u64 *table = tdp->root;
	u64 *entry, old;
	int l;

	for (l = TDP_LEVELS; l > level; l--) {
		entry = &table[tdp_index(gfn, l)];
		old = *entry;
		if (tdp_present(tdp, old) && tdp_leaf(tdp, old, l)) {
			/*
			 * A 2 MiB leaf where a 4 KiB one is wanted: the host
			 * page behind it is no longer mapped huge or the
			 * access needs rights the large leaf does not give.
			 * Drop it; the table that replaces it starts empty,
			 * so the TLBs must forget the old leaf.
			 */
			WRITE_ONCE(*entry, 0);
			*flush = true;
			old = 0;
		}
		if (!tdp_present(tdp, old)) {
			u64 *new_table;

			if (!spares->nr)
				return -EAGAIN;
			new_table = spares->pages[--spares->nr];
			WRITE_ONCE(*entry, __pa(new_table) | format->table_bits);
			table = new_table;
		} else {
			table = tdp_child(old);
		}
	}

	entry = &table[tdp_index(gfn, level)];
	old = *entry;
	if (tdp_present(tdp, old)) {
		if (!tdp_leaf(tdp, old, level))
			return -EEXIST;
		/*
		 * Another vCPU mapped it first, or this is a write to a page
		 * mapped read-only. Only if the page itself changed (a slot
		 * update racing with this fault) can a cached translation be
		 * wrong; a stale read-only or writable one for the same host
		 * page is harmless as long as the host page stays mapped.
		 */
		if ((old ^ leaf) & TDP_ADDR_MASK)
			*flush = true;
	}
	WRITE_ONCE(*entry, leaf);
	return 0;
}

/*
 * Whether the host maps @hva with a PMD or PUD leaf (a THP or a hugetlb page),
 * writable if @writable. A lockless walk, with interrupts off so the page
 * tables cannot be freed under it (as get_user_pages_fast walks). What it
 * finds may change at any moment, but only after an invalidation starts,
 * which the caller's sequence check (done under tdp->lock, like this walk)
 * covers.
 */
static bool host_maps_huge(struct mm_struct *mm, unsigned long hva, bool writable)
{
	unsigned long flags;
	bool huge = false;
	pgd_t pgd;
	p4d_t p4d;
	pud_t pud;
	pmd_t pmd;

	local_irq_save(flags);
	pgd = READ_ONCE(*pgd_offset(mm, hva));
	if (pgd_none(pgd) || !pgd_present(pgd))
		goto out;
	p4d = READ_ONCE(*p4d_offset(&pgd, hva));
	if (p4d_none(p4d) || !p4d_present(p4d))
		goto out;
	pud = READ_ONCE(*pud_offset(&p4d, hva));
	if (pud_none(pud) || !pud_present(pud))
		goto out;
	if (pud_leaf(pud)) {
		huge = !writable || pud_write(pud);
		goto out;
	}
	pmd = READ_ONCE(*pmd_offset(&pud, hva));
	if (pmd_none(pmd) || !pmd_present(pmd))
		goto out;
	huge = pmd_leaf(pmd) && (!writable || pmd_write(pmd));
out:
	local_irq_restore(flags);
	return huge;
}

/*
 * Whether @slot allows a 2 MiB leaf around @gfn: the whole 2 MiB lies inside
 * the slot, guest and host addresses are congruent modulo 2 MiB, and dirty
 * logging (which needs 4 KiB granularity) is off.
 */
static bool slot_allows_large(const struct kvmpp_memslot *slot, u64 gfn)
{
	u64 first = gfn & ~(TDP_LARGE_PAGES - 1);

	if (slot->flags & KVM_MEM_LOG_DIRTY_PAGES)
		return false;
	if (((slot->userspace_addr >> KVMPP_GFN_SHIFT) - slot->base_gfn) & (TDP_LARGE_PAGES - 1))
		return false;
	return first >= slot->base_gfn && first + TDP_LARGE_PAGES <= slot->base_gfn + slot->npages;
}

/*
 * Finds the host page at @hva. A write access needs it writable (breaking COW
 * if need be); a read of a writable slot takes it writable if it already is,
 * without faulting, so the guest's first write does not fault again. Returns
 * 0 with a page reference and *@writable, -EINTR on a fatal signal, or
 * -EFAULT (nothing mapped, PROT_NONE, a write to PROT_READ memory, a
 * PFNMAP/IO mapping, hardware poison), which is what KVM 6.1 answers too.
 */
static int get_host_page(unsigned long hva, bool write, bool slot_writable,
			 struct page **page, bool *writable)
{
	long n;

	if (slot_writable && get_user_page_fast_only(hva, FOLL_WRITE, page)) {
		*writable = true;
		return 0;
	}
	n = get_user_pages_unlocked(hva, 1, page, FOLL_HWPOISON | (write ? FOLL_WRITE : 0));
	if (n == 1) {
		*writable = write;
		return 0;
	}
	if (n == -EINTR || n == -ERESTARTSYS || fatal_signal_pending(current))
		return -EINTR;
	return -EFAULT;
}

/*
 * Marks a host page the guest may write without a host write fault. For an
 * anonymous page outside the swap cache, folio_mark_dirty() does nothing but
 * set the flag, so set it directly (on a fresh page this saves the page lock
 * and a handful of calls per nested fault); any other page goes through its
 * mapping's dirty_folio with the page locked.
 */
static void mark_page_dirty_for_guest(struct page *page)
{
	if (PageAnon(page) && !PageSwapCache(page)) {
		if (!PageDirty(page))
			SetPageDirty(page);
		return;
	}
	set_page_dirty_lock(page);
}

/* Whether an invalidation since @seq, or one still running, covers [start, end). */
static bool fault_is_stale(struct kvmpp_tdp *tdp, unsigned long seq,
			   unsigned long start, unsigned long end)
{
	lockdep_assert_held(&tdp->lock);
	if (tdp->invalidate_in_progress &&
	    start < tdp->invalidate_end && end > tdp->invalidate_start)
		return true;
	return tdp->invalidate_seq != seq;
}

int kvmpp_tdp_page_fault(struct kvmpp_vcpu *vcpu, u64 gpa, u32 access)
{
	struct kvmpp_vm *vm = vcpu->vm;
	struct kvmpp_tdp *tdp = &vm->tdp;
	const struct kvmpp_tdp_format *format = tdp->format;
	bool write = access & KVMPP_TDP_ACCESS_WRITE;
	const struct kvmpp_memslots *slots;
	const struct kvmpp_memslot *slot;
	struct tdp_spares spares = { .nr = 0 };
	u64 gfn = gpa >> KVMPP_GFN_SHIFT;
	unsigned long hva, seq, range_start, range_end;
	bool slot_writable, writable, large, flush = false;
	struct page *page;
	int idx, level, r;
	u64 leaf;

	/* get_user_pages works on current->mm: only the VM's own threads fault. */
	if (WARN_ON_ONCE(!tdp->root) || current->mm != vm->mm)
		return -EFAULT;

	idx = srcu_read_lock(&vm->mem.srcu);
	slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
	slot = kvmpp_memslot_find(slots, gfn);
	if (!slot) {
		r = KVMPP_TDP_NO_SLOT;
		goto out_srcu;
	}
	slot_writable = !(slot->flags & KVM_MEM_READONLY);
	if (write && !slot_writable) {
		r = KVMPP_TDP_READONLY;
		goto out_srcu;
	}
	hva = slot->userspace_addr + ((gfn - slot->base_gfn) << KVMPP_GFN_SHIFT);

	/*
	 * Read the sequence before the host page tables: an invalidation that
	 * changes them after this point also bumps it (pairs with the update
	 * under tdp->lock in invalidate_range_end).
	 */
	seq = READ_ONCE(tdp->invalidate_seq);
	smp_rmb();

	r = get_host_page(hva, write, slot_writable, &page, &writable);
	if (r)
		goto out_srcu;

	/*
	 * The guest may write through a writable mapping without the host ever
	 * seeing a write fault: the page must count as dirty, or reclaim or
	 * writeback could drop the guest's data. A later writeback cleans it
	 * only after write-protecting the host PTE, which zaps this mapping.
	 */
	if (writable)
		mark_page_dirty_for_guest(page);

	/* The host range a 2 MiB leaf would cover; a 4 KiB one is within it. */
	large = slot_allows_large(slot, gfn);
	range_start = large ? ALIGN_DOWN(hva, TDP_LARGE_SIZE) : hva;
	range_end = range_start + (large ? TDP_LARGE_SIZE : PAGE_SIZE);

	for (;;) {
		spin_lock(&tdp->lock);
		if (fault_is_stale(tdp, seq, range_start, range_end)) {
			/* The page may be on its way out: let the guest fault again. */
			tdp_unlock(tdp, flush);
			flush = false;
			r = KVMPP_TDP_MAPPED;
			break;
		}

		level = 1;
		if (large && host_maps_huge(vm->mm, hva, writable) &&
		    (page_to_pfn(page) & (TDP_LARGE_PAGES - 1)) == (gfn & (TDP_LARGE_PAGES - 1)))
			level = 2;
		for (;;) {
			u64 pfn = page_to_pfn(page);

			if (level == 2)
				pfn &= ~(TDP_LARGE_PAGES - 1);
			leaf = ((u64)pfn << PAGE_SHIFT) | format->leaf_bits;
			if (writable)
				leaf |= format->writable_bit;
			if (level == 2)
				leaf |= format->large_bit;
			r = install_leaf(tdp, gfn, level, leaf, &spares, &flush);
			if (r != -EEXIST || level == 1)
				break;
			level = 1;
		}
		tdp_unlock(tdp, flush);
		flush = false;
		if (r != -EAGAIN)
			break;

		/*
		 * A table was missing: allocate one outside the lock and retry.
		 * Tables are never freed, so this happens at most once per level.
		 */
		if (WARN_ON_ONCE(spares.nr == TDP_MAX_NEW_TABLES)) {
			r = -EFAULT;
			break;
		}
		spares.pages[spares.nr] = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!spares.pages[spares.nr]) {
			r = -ENOMEM;
			break;
		}
		spares.nr++;
	}
	if (WARN_ON_ONCE(r == -EEXIST))
		r = -EFAULT;
	put_page(page);
	spares_free(&spares);
out_srcu:
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}
EXPORT_SYMBOL_GPL(kvmpp_tdp_page_fault);

/* ---- The MMU notifier ---- */

static inline struct kvmpp_tdp *notifier_tdp(struct mmu_notifier *mn)
{
	return container_of(mn, struct kvmpp_tdp, notifier);
}

/*
 * The host is about to change or unmap [start, end): zap what maps it and
 * flush before returning, because once we return the host may free or reuse
 * the pages. Until the matching _end, faults on the range are left for the
 * guest to retry. This may run without permission to sleep (the OOM reaper)
 * and must not fail (we have an _end), so it only spins: tdp->lock, and the
 * IPIs of the flush (whose GFP_ATOMIC cpumask allocation may fail and fall
 * back to one IPI at a time).
 */
static int tdp_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct kvmpp_tdp *tdp = notifier_tdp(mn);
	struct kvmpp_vm *vm = tdp_vm(tdp);
	const struct kvmpp_memslots *slots;
	int idx;

	idx = srcu_read_lock(&vm->mem.srcu);
	slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
	spin_lock(&tdp->lock);
	if (tdp->invalidate_in_progress++ == 0) {
		tdp->invalidate_start = range->start;
		tdp->invalidate_end = range->end;
	} else {
		tdp->invalidate_start = min(tdp->invalidate_start, range->start);
		tdp->invalidate_end = max(tdp->invalidate_end, range->end);
	}
	tdp_unlock(tdp, zap_hva_range(tdp, slots, range->start, range->end));
	srcu_read_unlock(&vm->mem.srcu, idx);
	return 0;
}

static void tdp_invalidate_range_end(struct mmu_notifier *mn,
				     const struct mmu_notifier_range *range)
{
	struct kvmpp_tdp *tdp = notifier_tdp(mn);

	spin_lock(&tdp->lock);
	/* Faults that looked the host page up during the invalidation retry. */
	tdp->invalidate_seq++;
	WARN_ON_ONCE(--tdp->invalidate_in_progress < 0);
	spin_unlock(&tdp->lock);
}

/*
 * Page aging for reclaim. The table formats have no accessed bit we can rely
 * on (EPT has one only when enabled), so a mapping's presence is the "young"
 * signal: report it and zap it, so that next time the page is young only if
 * the guest touched it again in between. Zapping without an invalidation in
 * progress is safe: the host page stays mapped, a racing fault may map it
 * again, which just makes it young.
 */
static int tdp_clear_flush_young(struct mmu_notifier *mn, struct mm_struct *mm,
				 unsigned long start, unsigned long end)
{
	struct kvmpp_tdp *tdp = notifier_tdp(mn);
	struct kvmpp_vm *vm = tdp_vm(tdp);
	bool zapped;
	int idx;

	idx = srcu_read_lock(&vm->mem.srcu);
	spin_lock(&tdp->lock);
	zapped = zap_hva_range(tdp, srcu_dereference(vm->mem.slots, &vm->mem.srcu), start, end);
	tdp_unlock(tdp, zapped);
	srcu_read_unlock(&vm->mem.srcu, idx);
	return zapped;
}

/*
 * Aging without a flush (idle page tracking, DAMON): "not young" is always a
 * safe answer, it can make the host think a page idle but never lose data,
 * and zapping here would need the flush the caller wants to avoid.
 */
static int tdp_clear_young(struct mmu_notifier *mn, struct mm_struct *mm,
			   unsigned long start, unsigned long end)
{
	return 0;
}

/* Young if the guest has the page mapped. */
static int tdp_test_young(struct mmu_notifier *mn, struct mm_struct *mm,
			  unsigned long address)
{
	struct kvmpp_tdp *tdp = notifier_tdp(mn);
	struct kvmpp_vm *vm = tdp_vm(tdp);
	const struct kvmpp_memslots *slots;
	bool young = false;
	int idx, i;

	idx = srcu_read_lock(&vm->mem.srcu);
	slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
	spin_lock(&tdp->lock);
	for (i = 0; i < slots->nr && !young; i++) {
		const struct kvmpp_memslot *slot = &slots->slots[i];
		unsigned long offset = address - slot->userspace_addr;

		/* A host page may back several slots: any mapping makes it young. */
		if (address >= slot->userspace_addr &&
		    offset < (slot->npages << KVMPP_GFN_SHIFT))
			young = lookup_leaf(tdp, slot->base_gfn + (offset >> KVMPP_GFN_SHIFT));
	}
	spin_unlock(&tdp->lock);
	srcu_read_unlock(&vm->mem.srcu, idx);
	return young;
}

/*
 * The process's address space is going away (exit_mmap) or we unregister:
 * nothing may stay mapped. No thread of the mm is left to fault again.
 */
static void tdp_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct kvmpp_tdp *tdp = notifier_tdp(mn);

	spin_lock(&tdp->lock);
	tdp_unlock(tdp, zap_gfn_range(tdp, 0, U64_MAX));
}

/*
 * No .change_pte: the kernel calls it (KSM merging a page) only between
 * invalidate_range_start and _end, whose zap already covers it.
 */
static const struct mmu_notifier_ops tdp_notifier_ops = {
	.invalidate_range_start = tdp_invalidate_range_start,
	.invalidate_range_end = tdp_invalidate_range_end,
	.clear_flush_young = tdp_clear_flush_young,
	.clear_young = tdp_clear_young,
	.test_young = tdp_test_young,
	.release = tdp_release,
};

/* ---- Setup and teardown ---- */

int kvmpp_tdp_init(struct kvmpp_vm *vm, const struct kvmpp_tdp_format *format)
{
	struct kvmpp_tdp *tdp = &vm->tdp;
	u64 *root;
	int r;

	/* The notifier goes on vm->mm, which must be alive: the creator's. */
	if (WARN_ON_ONCE(current->mm != vm->mm))
		return -EINVAL;

	root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!root)
		return -ENOMEM;

	/* See host_paging_depth: the fifth level has a single entry, for @root. */
	tdp->top = NULL;
	if (format->host_paging_depth && pgtable_l5_enabled()) {
		tdp->top = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!tdp->top) {
			free_page((unsigned long)root);
			return -ENOMEM;
		}
		tdp->top[0] = __pa(root) | format->table_bits;
	}

	spin_lock_init(&tdp->lock);
	tdp->format = format;
	tdp->invalidate_seq = 0;
	tdp->invalidate_in_progress = 0;
	tdp->dying = false;
	tdp->notifier.ops = &tdp_notifier_ops;
	/* Set before registering: callbacks can run as soon as it returns. */
	tdp->root = root;

	r = mmu_notifier_register(&tdp->notifier, vm->mm);
	if (r) {
		tdp->root = NULL;
		free_page((unsigned long)root);
		free_page((unsigned long)tdp->top);
		tdp->top = NULL;
	}
	return r;
}
EXPORT_SYMBOL_GPL(kvmpp_tdp_init);

static void free_table(struct kvmpp_tdp *tdp, u64 *table, int level)
{
	int i;

	for (i = 0; level > 1 && i < TDP_ENTRIES; i++)
		if (tdp_present(tdp, table[i]) && !tdp_leaf(tdp, table[i], level))
			free_table(tdp, tdp_child(table[i]), level - 1);
	free_page((unsigned long)table);
}

void kvmpp_tdp_destroy(struct kvmpp_vm *vm)
{
	struct kvmpp_tdp *tdp = &vm->tdp;

	if (!tdp->root)
		return;
	/* Callbacks that take the lock after this do not flush any more. */
	spin_lock(&tdp->lock);
	tdp->dying = true;
	spin_unlock(&tdp->lock);
	/* Waits for callbacks still running; calls ->release if exit_mmap did not. */
	mmu_notifier_unregister(&tdp->notifier, vm->mm);
	free_table(tdp, tdp->root, TDP_LEVELS);
	free_page((unsigned long)tdp->top);	/* 0 is ignored */
	tdp->root = NULL;
	tdp->top = NULL;
}
EXPORT_SYMBOL_GPL(kvmpp_tdp_destroy);

u64 kvmpp_tdp_root_pa(struct kvmpp_vm *vm)
{
	return __pa(vm->tdp.top ? vm->tdp.top : vm->tdp.root);
}
EXPORT_SYMBOL_GPL(kvmpp_tdp_root_pa);
