/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Two-dimensional paging (NPT on SVM, EPT on VMX): the guest-physical to
 * host-physical tables the CPU walks after the guest's own page tables.
 *
 * Pages are mapped on demand from the memslots' host memory and are not pinned:
 * an MMU notifier on the VM's mm zaps mappings whose host pages change (munmap,
 * madvise, mprotect, migration, swap, KSM), and a memslot change zaps the slot's
 * range. After zapping, kvmpp_vm_flush_tlbs() makes every vCPU flush before it
 * runs guest code again.
 */
#ifndef KVMPP_TDP_H
#define KVMPP_TDP_H

#include <linux/mmu_notifier.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct kvmpp_vm;
struct kvmpp_vcpu;

/*
 * How a backend's table entries look; NPT entries are ordinary x86 page-table
 * entries, EPT entries have their own bits (Intel SDM 29.3.2). Every level has
 * 512 entries and bits 51:12 hold the address; @large_bit marks a 2 MiB / 1 GiB
 * leaf at level 2 / 3.
 */
struct kvmpp_tdp_format {
	u64 present_mask;	/* any of these set: the entry is present */
	u64 table_bits;		/* bits of an entry that points to a table */
	u64 leaf_bits;		/* bits of a read-only, executable leaf */
	u64 writable_bit;	/* added to a leaf the guest may write */
	u64 large_bit;
	/*
	 * NPT: the CPU walks the nested tables with the host's own paging depth
	 * (APM 15.25.5: the host's paging mode at VMRUN), so under a host with
	 * 5-level paging (CR4.LA57) the tables need a fifth level. Leave false
	 * for EPT, whose depth the EPTP chooses (4 levels).
	 */
	bool host_paging_depth;
};

struct kvmpp_tdp {
	const struct kvmpp_tdp_format *format;
	/*
	 * Protects the tables' entries (the CPU walks them concurrently, so every
	 * entry is written whole with WRITE_ONCE) and the invalidation fields
	 * below. A spinlock: it is taken inside MMU notifier callbacks, which may
	 * run in reclaim or with page-table locks held, so nothing under it
	 * sleeps or allocates.
	 */
	spinlock_t lock;
	u64 *root;			/* level-4 table, one page; set for the VM's life */
	/*
	 * With a 5-level walk (host_paging_depth under LA57): the level-5 table
	 * whose entry 0 points to @root, else NULL. Guest-physical addresses stay
	 * below 2^48 (kvmpp_tdp_max_gfn), so the other entries remain empty.
	 */
	u64 *top;
	/*
	 * The fault path reads @invalidate_seq (locklessly) before it looks up
	 * the host page and maps the page only if, under @lock, the sequence is
	 * unchanged and no invalidation in progress covers the page's host
	 * address: otherwise the page may already be on its way out.
	 */
	unsigned long invalidate_seq;	/* bumped at the end of every invalidation */
	long invalidate_in_progress;	/* invalidate_range_start without _end */
	/* Union of the host ranges of the invalidations in progress. */
	unsigned long invalidate_start, invalidate_end;
	/*
	 * Set by kvmpp_tdp_destroy(): no vCPU can run any more, and notifier
	 * callbacks still running must not flush through vCPUs being freed.
	 */
	bool dying;
	struct mmu_notifier notifier;	/* on vm->mm, from init to destroy */
};

/* Faults that are not the guest's problem but the VMM's. */
enum kvmpp_tdp_fault_result {
	KVMPP_TDP_MAPPED = 0,	/* retry the access */
	KVMPP_TDP_NO_SLOT,	/* no memslot: MMIO */
	KVMPP_TDP_READONLY,	/* write to a KVM_MEM_READONLY slot: MMIO */
};

#define KVMPP_TDP_ACCESS_WRITE	(1u << 0)
#define KVMPP_TDP_ACCESS_FETCH	(1u << 1)

/*
 * Sets up the tables and the MMU notifier on vm->mm. Call from the process that
 * owns the VM (KVM_CREATE_VM), after kvmpp_memory_init(). @format must live as
 * long as the VM.
 */
int kvmpp_tdp_init(struct kvmpp_vm *vm, const struct kvmpp_tdp_format *format);
/*
 * Unregisters the notifier and frees the tables. Call before the vCPUs are freed
 * (a notifier callback still running flushes through vm->vcpus[]) and before
 * kvmpp_memory_destroy() and the mmdrop() of vm->mm. A no-op if init did not
 * succeed.
 */
void kvmpp_tdp_destroy(struct kvmpp_vm *vm);

/*
 * The highest guest frame number the tables can map: the host's MAXPHYADDR as
 * Linux 6.1 takes it (kvm_mmu_max_gfn with TDP), capped at the 48 bits that
 * four-level tables reach. Memslots may not go beyond it.
 */
u64 kvmpp_tdp_max_gfn(void);

/* The host-physical address of the top-level table (for nCR3 / the EPTP). */
u64 kvmpp_tdp_root_pa(struct kvmpp_vm *vm);

/*
 * Resolve a TDP fault (NPF / EPT violation) at @gpa for @access: map the page
 * and return KVMPP_TDP_MAPPED (also when the fault raced with a host change:
 * the guest then simply faults again), or say why it cannot be mapped (a
 * kvmpp_tdp_fault_result), or return a negative errno for KVM_RUN: -EFAULT
 * when the memslot's host memory is not accessible for the access (unmapped,
 * PROT_NONE, a write to PROT_READ memory: as KVM 6.1), -EINTR on a fatal
 * signal, -ENOMEM. May sleep: call with preemption enabled, from the VM's
 * process (get_user_pages works on current->mm).
 */
int kvmpp_tdp_page_fault(struct kvmpp_vcpu *vcpu, u64 gpa, u32 access);

/*
 * Unmap [start_gfn, end_gfn) and flush; used when a memslot is moved or deleted.
 * May sleep. Does nothing before kvmpp_tdp_init().
 */
void kvmpp_tdp_zap_range(struct kvmpp_vm *vm, u64 start_gfn, u64 end_gfn);

#endif /* KVMPP_TDP_H */
