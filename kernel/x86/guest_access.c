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

static int walk_read(void *ctx, u64 gpa, void *buf, int len)
{
	return kvmpp_read_guest(ctx, gpa, buf, len);
}

/* Accessed/dirty updates: compare-and-exchange on the guest page itself. */
static int walk_cmpxchg(void *ctx, u64 gpa, u64 old, u64 new, int len)
{
	struct kvmpp_vm *vm = ctx;
	const struct kvmpp_memslot *slot;
	unsigned long hva;
	int idx, r = -EFAULT;

	idx = srcu_read_lock(&vm->mem.srcu);
	slot = kvmpp_memslot_find(srcu_dereference(vm->mem.slots, &vm->mem.srcu),
				  gpa >> PAGE_SHIFT);
	if (!slot || (slot->flags & KVM_MEM_READONLY))
		goto out;
	hva = slot->userspace_addr + (gpa - (slot->base_gfn << PAGE_SHIFT));
	if (!access_ok((void __user *)hva, len))
		goto out;
	/* 0: exchanged, 1: the value had changed, -EFAULT: not accessible. */
	if (len == 8) {
		u64 expected = old;

		r = __try_cmpxchg_user((u64 __user *)hva, &expected, new, efault8);
	} else {
		u32 expected = old;

		r = __try_cmpxchg_user((u32 __user *)hva, &expected, (u32)new, efault4);
	}
out:
	srcu_read_unlock(&vm->mem.srcu, idx);
	return r;
}

/*
 * Translate @gva for @access (KVMPP_WALK_*): 0 and the guest-physical address,
 * 1 when a fault was delivered to the guest instead, or -errno.
 */
int kvmpp_x86_translate(struct kvmpp_vcpu *vcpu, u64 gva, u32 access, u64 *gpa)
{
	const struct kvmpp_walk_ops ops = {
		.ctx = vcpu->vm, .read = walk_read, .cmpxchg = walk_cmpxchg,
	};
	struct kvmpp_walk_mode mode = {
		.rflags = vcpu->arch.rflags,
		.maxphyaddr = boot_cpu_data.x86_phys_bits,
		.amd = boot_cpu_data.x86_vendor == X86_VENDOR_AMD,
	};
	struct kvmpp_walk_result res;
	int r;

	kvmpp_backend->get_paging_mode(vcpu, &mode);
	r = kvmpp_walk(&ops, &mode, gva, access, &res);
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
