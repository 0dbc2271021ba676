// SPDX-License-Identifier: GPL-2.0-only
/*
 * Guest memory by linear address, as the vCPU sees it: translated through the
 * guest's own page tables (x86/walker.c), then read or written through the
 * memslots. A translation fault is delivered to the guest as #PF (or #GP for a
 * non-canonical address), the way the CPU would have delivered it.
 */
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <asm/processor.h>
#include <asm/traps.h>

#include "../core/kvmpp.h"
#include "walker.h"

/*
 * The walker's view of guest memory during one walk: the memslots under one
 * SRCU read section for the whole walk (not one per table entry), and the
 * slot of the last entry read, which the next level's table is usually in.
 */
struct walk_ctx {
	struct kvmpp_vm *vm;
	const struct kvmpp_memslots *slots;
	const struct kvmpp_memslot *slot;	/* last one found, or NULL */
};

static int walk_read(void *opaque, u64 gpa, void *buf, int len)
{
	struct walk_ctx *w = opaque;
	u64 gfn = gpa >> PAGE_SHIFT;

	/* Anything but an aligned entry (the PAE PDPTEs) takes the general path. */
	if ((len != 4 && len != 8) || (gpa & (len - 1)))
		return kvmpp_read_guest(w->vm, gpa, buf, len);
	if (current->mm != w->vm->mm)
		return -EFAULT;
	if (!w->slot || gfn - w->slot->base_gfn >= w->slot->npages) {
		w->slot = kvmpp_memslot_find(w->slots, gfn);
		if (!w->slot)
			return -EFAULT;
	}
	return kvmpp_memslot_read_word(w->slot, gpa, buf, len);
}

/*
 * Compare-and-exchange @len (1, 2, 4 or 8) bytes of guest-physical memory,
 * within one page: 0 when exchanged, 1 when memory no longer held @old,
 * -ENOENT when no writable memslot backs @gpa (MMIO), -EFAULT when the host
 * memory is not accessible, -EINVAL for another @len.
 */
int kvmpp_x86_cmpxchg_gpa(struct kvmpp_vm *vm, u64 gpa, const void *old, const void *new,
			  unsigned int len)
{
	const struct kvmpp_memslot *slot;
	void __user *hva;
	int idx, r = -ENOENT;

	idx = srcu_read_lock(&vm->mem.srcu);
	slot = kvmpp_memslot_find(srcu_dereference(vm->mem.slots, &vm->mem.srcu),
				  gpa >> PAGE_SHIFT);
	if (!slot || (slot->flags & KVM_MEM_READONLY))
		goto out;
	hva = kvmpp_memslot_hva(slot, gpa);
	r = -EFAULT;
	if (current->mm != vm->mm || !access_ok(hva, len))
		goto out;
	/* 0 (exchanged), 1 (memory held another value) or -EFAULT; the label is the macro's. */
#define CMPXCHG_USER(type, label) ({						\
		type expected = *(const type *)old;				\
		__try_cmpxchg_user((type __user *)hva, &expected, *(const type *)new, label); \
	})
	switch (len) {
	case 1:
		r = CMPXCHG_USER(u8, fault1);
		break;
	case 2:
		r = CMPXCHG_USER(u16, fault2);
		break;
	case 4:
		r = CMPXCHG_USER(u32, fault4);
		break;
	case 8:
		r = CMPXCHG_USER(u64, fault8);
		break;
	default:
		r = -EINVAL;
	}
#undef CMPXCHG_USER
out:
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}

/* Accessed/dirty updates: compare-and-exchange on the guest page itself. */
static int walk_cmpxchg(void *opaque, u64 gpa, u64 old, u64 new, int len)
{
	struct walk_ctx *w = opaque;
	int r;

	if (len == 4) {
		u32 old32 = old, new32 = new;

		r = kvmpp_x86_cmpxchg_gpa(w->vm, gpa, &old32, &new32, 4);
	} else {
		r = kvmpp_x86_cmpxchg_gpa(w->vm, gpa, &old, &new, len);
	}
	return r == -ENOENT ? -EFAULT : r;
}

/* kvmpp_walk() through @vm's memory, in one SRCU read section. */
static int walk_guest(struct kvmpp_vm *vm, const struct kvmpp_walk_mode *mode, u64 gva,
		      u32 access, struct kvmpp_walk_result *res)
{
	struct walk_ctx w = { .vm = vm };
	const struct kvmpp_walk_ops ops = {
		.ctx = &w, .read = walk_read, .cmpxchg = walk_cmpxchg,
	};
	int idx, r;

	idx = srcu_read_lock(&vm->mem.srcu);
	w.slots = srcu_dereference(vm->mem.slots, &vm->mem.srcu);
	r = kvmpp_walk(&ops, mode, gva, access, res);
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}

/* The vCPU's paging state, as the walker takes it. */
void kvmpp_x86_walk_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode)
{
	*mode = (struct kvmpp_walk_mode) {
		.rflags = vcpu->arch.rflags,
		.maxphyaddr = boot_cpu_data.x86_phys_bits,
		.amd = boot_cpu_data.x86_vendor == X86_VENDOR_AMD,
	};
	kvmpp_backend->get_paging_mode(vcpu, mode);
}

/*
 * Translate @gva for @access (KVMPP_WALK_*) in @mode: 0 and the guest-physical
 * address, 1 when a fault was delivered to the guest instead, or -errno.
 */
int kvmpp_x86_translate_in(struct kvmpp_vcpu *vcpu, const struct kvmpp_walk_mode *mode,
			   u64 gva, u32 access, u64 *gpa)
{
	struct kvmpp_walk_result res;
	int r;

	r = walk_guest(vcpu->vm, mode, gva, access, &res);
	switch (r) {
	case 0:
		*gpa = res.gpa;
		return 0;
	case KVMPP_WALK_FAULT:
		kvmpp_backend->inject_page_fault(vcpu, gva, res.error_code);
		return 1;
	case KVMPP_WALK_NONCANONICAL:
		kvmpp_backend->inject_exception(vcpu, X86_TRAP_GP, true, 0);
		return 1;
	default:
		return r;
	}
}

int kvmpp_x86_translate(struct kvmpp_vcpu *vcpu, u64 gva, u32 access, u64 *gpa)
{
	struct kvmpp_walk_mode mode;

	kvmpp_x86_walk_mode(vcpu, &mode);
	return kvmpp_x86_translate_in(vcpu, &mode, gva, access, gpa);
}

/* What KVM_TRANSLATE reports for an address that does not translate (KVM's INVALID_GPA). */
#define KVMPP_INVALID_GPA (~0ULL)

/*
 * KVM_TRANSLATE, as KVM answers it: a supervisor data read at the current
 * CPL's SMAP rules, accessed flags set on the way, nothing delivered to the
 * guest; without paging the address is its own translation. writeable and
 * usermode are always 1 and 0 (KVM does not look at the permissions).
 */
long kvmpp_x86_ioctl_translate(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_translation tr;
	struct kvmpp_walk_mode mode;
	struct kvmpp_walk_result res;
	u64 gva;
	int r;

	if (copy_from_user(&tr, argp, sizeof(tr)))
		return -EFAULT;
	gva = tr.linear_address;
	kvmpp_x86_walk_mode(vcpu, &mode);
	if (!(mode.cr0 & X86_CR0_PG)) {
		tr.physical_address = gva;
	} else {
		/* A supervisor access even at CPL 3, where RFLAGS.AC does not lift SMAP. */
		if (mode.cpl == 3) {
			mode.cpl = 0;
			mode.rflags &= ~X86_EFLAGS_AC;
		}
		/* KVM's walk ignores the address bits above the top level's index. */
		if (mode.efer & EFER_LMA)
			gva = mode.cr4 & X86_CR4_LA57 ? sign_extend64(gva, 56) : sign_extend64(gva, 47);
		r = walk_guest(vcpu->vm, &mode, gva, 0, &res);
		if (r < 0 && r != -EAGAIN)
			return r;
		tr.physical_address = r ? KVMPP_INVALID_GPA : res.gpa;
	}
	tr.valid = tr.physical_address != KVMPP_INVALID_GPA;
	tr.writeable = 1;
	tr.usermode = 0;
	return copy_to_user(argp, &tr, sizeof(tr)) ? -EFAULT : 0;
}

/* Copy between the guest's linear address space and @buf, page by page. */
static int linear_copy(struct kvmpp_vcpu *vcpu, u64 gva, void *buf, unsigned int len,
		       bool write)
{
	u32 access = write ? KVMPP_WALK_WRITE : 0;

	while (len) {
		unsigned int chunk = min_t(unsigned int, len, PAGE_SIZE - offset_in_page(gva));
		u64 gpa;
		int r;

		r = kvmpp_x86_translate(vcpu, gva, access, &gpa);
		if (r)
			return r;
		r = write ? kvmpp_write_guest(vcpu->vm, gpa, buf, chunk) :
			    kvmpp_read_guest(vcpu->vm, gpa, buf, chunk);
		if (r)
			return r;
		gva += chunk;
		buf += chunk;
		len -= chunk;
	}
	return 0;
}

int kvmpp_x86_read_linear(struct kvmpp_vcpu *vcpu, u64 gva, void *buf, unsigned int len)
{
	return linear_copy(vcpu, gva, buf, len, false);
}

int kvmpp_x86_write_linear(struct kvmpp_vcpu *vcpu, u64 gva, const void *buf, unsigned int len)
{
	return linear_copy(vcpu, gva, (void *)buf, len, true);
}
