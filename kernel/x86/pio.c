// SPDX-License-Identifier: GPL-2.0-only
/*
 * Port I/O exits to userspace (KVM_EXIT_IO), single IN/OUT of 1, 2 or 4 bytes.
 *
 * As in KVM, the instruction completes on the next KVM_RUN: until then RIP still
 * points at it, OUT data sits in the PIO page and IN data is expected there. If
 * userspace moves RIP meanwhile, the instruction is dropped instead.
 */
#include <linux/kvm.h>
#include <linux/mm.h>

#include "../core/kvmpp.h"

int kvmpp_x86_pio(struct kvmpp_vcpu *vcpu, u16 port, int size, bool in,
		  unsigned long next_rip)
{
	struct kvmpp_pio *pio = &vcpu->arch.pio;
	struct kvm_run *run = vcpu->run;

	if (!in)
		memcpy(vcpu->pio_data, &vcpu->arch.regs[__VCPU_REGS_RAX], size);

	pio->pending = true;
	pio->in = in;
	pio->size = size;
	pio->port = port;
	pio->rip = vcpu->arch.rip;
	pio->next_rip = next_rip;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.port = port;
	run->io.count = 1;
	run->io.data_offset = KVM_PIO_PAGE_OFFSET * PAGE_SIZE;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_pio);

/* Finish the I/O instruction userspace has handled; 1: go on into the guest. */
int kvmpp_x86_complete_userspace_io(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_pio *pio = &vcpu->arch.pio;
	unsigned long *rax = &vcpu->arch.regs[__VCPU_REGS_RAX];

	pio->pending = false;
	if (vcpu->arch.rip != pio->rip)
		return 1;

	if (pio->in) {
		switch (pio->size) {
		case 1:
			*rax = (*rax & ~0xffUL) | *(u8 *)vcpu->pio_data;
			break;
		case 2:
			*rax = (*rax & ~0xffffUL) | *(u16 *)vcpu->pio_data;
			break;
		default:
			/* A 32-bit destination zero-extends into RAX. */
			*rax = *(u32 *)vcpu->pio_data;
			break;
		}
	}
	vcpu->arch.rip = pio->next_rip;
	return 1;
}
