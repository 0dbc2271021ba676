/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Guest page-table walker: translates a guest-linear address into a
 * guest-physical one the way the CPU's paging unit does (Intel SDM vol. 3A,
 * chapter 4 "Paging"; AMD APM vol. 2, chapter 5 "Page Translation and
 * Protection"), for the instruction emulator and for KVM_TRANSLATE.
 *
 * Pure logic: guest memory is reached only through the caller's callbacks,
 * so the file compiles into kvmpp.ko and into the CMocka tests.
 *
 * Modes: no paging, 32-bit paging (4 KiB, 4 MiB with CR4.PSE and PSE-36 high
 * address bits), PAE paging (4 KiB, 2 MiB), 4-level and 5-level paging
 * (4 KiB, 2 MiB, 1 GiB). Access rights: R/W with CR0.WP, U/S, XD with
 * EFER.NXE, SMEP, SMAP with RFLAGS.AC, protection keys (PKRU with CR4.PKE,
 * IA32_PKRS with CR4.PKS). Not modelled: CET shadow-stack accesses, HLAT,
 * SGX, linear-address masking; 1 GiB pages are assumed supported.
 */
#ifndef KVMPP_X86_WALKER_H
#define KVMPP_X86_WALKER_H

#include <kvmpp/pure.h>

/* Guest-physical memory, as the caller reaches it. */
struct kvmpp_walk_ops {
	void *ctx;
	/* Read @len bytes at @gpa into @buf: 0, or -errno (-EFAULT: no memory there). */
	int (*read)(void *ctx, u64 gpa, void *buf, int len);
	/*
	 * Replace the @len-byte (4 or 8) little-endian value at @gpa with @new if
	 * it still is @old, atomically with respect to the guest: 0 when done,
	 * 1 when the value had changed (nothing written), or -errno. Used to set
	 * accessed and dirty flags; may be NULL, and then the walk leaves them
	 * alone (a debugger-style translation that must not touch the guest).
	 */
	int (*cmpxchg)(void *ctx, u64 gpa, u64 old, u64 new, int len);
};

/* The paging state of the vCPU, as the guest last loaded it. */
struct kvmpp_walk_mode {
	/*
	 * The paging mode follows from CR0.PG, CR4.PAE, EFER.LMA (not LME) and
	 * CR4.LA57, as on the CPU.
	 */
	u64 cr0, cr3, cr4, efer;
	u64 rflags;			/* AC overrides SMAP for explicit accesses */
	int cpl;			/* 3: accesses are user-mode unless implicit */
	/*
	 * PAE paging only: the PDPTE registers as loaded at the last CR3 write.
	 * When !pdptrs_valid they are read from the PDPT at CR3 on every walk
	 * (as the CPU does under AMD nested paging).
	 */
	u64 pdptrs[4];
	bool pdptrs_valid;
	/* Guest physical-address width, for reserved-bit checks; clamped to 32..52. */
	int maxphyaddr;
	u32 pkru;			/* used when CR4.PKE=1 in 4/5-level paging */
	u32 pkrs;			/* IA32_PKRS, used when CR4.PKS=1 in 4/5-level paging */
	/* AMD CPU: bit 8 of PML4Es and PML5Es is reserved (must be zero). */
	bool amd;
};

/* Access kinds for kvmpp_walk(); none of them set means a data read. */
#define KVMPP_WALK_WRITE		(1u << 0)
#define KVMPP_WALK_FETCH		(1u << 1)
/*
 * An implicit supervisor-mode access (descriptor tables, TSS, ...): treated
 * as supervisor whatever the CPL, and RFLAGS.AC does not lift SMAP for it.
 * Without this flag the access is user-mode iff mode->cpl == 3.
 */
#define KVMPP_WALK_IMPLICIT_SUPERVISOR	(1u << 2)

/*
 * Page-fault error code bits (Intel SDM vol. 3A, 4.7 "Page-Fault Exceptions").
 * PRESENT: the translation exists (or a reserved bit was found), as opposed
 * to a not-present entry. FETCH (I/D) is set for instruction fetches only
 * when CR4.SMEP=1, or CR4.PAE=1 and EFER.NXE=1.
 */
#define KVMPP_PF_PRESENT	(1u << 0)
#define KVMPP_PF_WRITE		(1u << 1)
#define KVMPP_PF_USER		(1u << 2)
#define KVMPP_PF_RSVD		(1u << 3)	/* reserved bit set in a present entry */
#define KVMPP_PF_FETCH		(1u << 4)
#define KVMPP_PF_PK		(1u << 5)	/* denied by a protection key */

/* Access rights of a translation, in kvmpp_walk_result.perm. */
#define KVMPP_WALK_PERM_WRITE	(1u << 0)	/* R/W=1 at every level */
#define KVMPP_WALK_PERM_USER	(1u << 1)	/* U/S=1 at every level */
#define KVMPP_WALK_PERM_EXEC	(1u << 2)	/* XD clear at every level, or XD not in use */

struct kvmpp_walk_result {
	/* On success: */
	u64 gpa;
	u64 page_size;		/* 4 KiB, 2 MiB, 4 MiB or 1 GiB; 4 KiB without paging */
	u32 perm;		/* KVMPP_WALK_PERM_* */
	/* On KVMPP_WALK_FAULT: */
	u32 error_code;		/* KVMPP_PF_*: the caller injects #PF with it, CR2 = gva */
};

/* kvmpp_walk() outcomes other than 0 (translated) and -errno. */
#define KVMPP_WALK_FAULT		1	/* page fault: see error_code */
#define KVMPP_WALK_NONCANONICAL		2	/* 4/5-level paging: #GP or #SS, not #PF */

/*
 * Translate @gva for an access of kind @access (KVMPP_WALK_*). In 32-bit and
 * PAE paging and without paging, only the low 32 bits of @gva count.
 *
 * Returns 0 with the translation in @res; KVMPP_WALK_FAULT with
 * @res->error_code; KVMPP_WALK_NONCANONICAL; -EINVAL for a meaningless
 * @access (unknown bits, or a fetch that is also a write or implicit) or
 * EFER.LMA without CR4.PAE; a -errno from ops->read or ops->cmpxchg as is;
 * or -EAGAIN when accessed/dirty updates kept losing races with the guest
 * (the caller can let the guest run and retry the instruction).
 *
 * Accessed flags are set in every entry used and the dirty flag in the leaf
 * for writes, only when the access is allowed; a lost race restarts the walk.
 */
int kvmpp_walk(const struct kvmpp_walk_ops *ops,
	       const struct kvmpp_walk_mode *mode, u64 gva, u32 access,
	       struct kvmpp_walk_result *res);

#endif /* KVMPP_X86_WALKER_H */
