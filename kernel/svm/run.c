// SPDX-License-Identifier: GPL-2.0-only
/*
 * One guest entry: copy the core's register state into the VMCB, enter with
 * interrupts off and GIF clear, copy back, then handle the exit (exits.c).
 */
#include <linux/irqflags.h>

#include "svm.h"

/* The global interrupt flag (APM 15.17): clear, nothing reaches the host CPU. */
static __always_inline void clgi(void)
{
	asm volatile("clgi" ::: "memory");
}

static __always_inline void stgi(void)
{
	asm volatile("stgi" ::: "memory");
}

static void svm_enter_guest(struct kvmpp_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	struct vmcb *vmcb = svm->vmcb;
	struct kvmpp_x86_vcpu *arch = &vcpu->arch;

	vmcb->save.rax = arch->regs[__VCPU_REGS_RAX];
	vmcb->save.rsp = arch->regs[__VCPU_REGS_RSP];
	vmcb->save.rip = arch->rip;
	vmcb->save.rflags = arch->rflags;
	vmcb->control.tsc_offset = arch->tsc_offset;

	local_irq_disable();
	kvmpp_vcpu_enter_prepare(vcpu);
	svm_assign_asid(svm, test_and_clear_bit(KVMPP_REQ_TLB_FLUSH, &vcpu->requests));
	/* Every field may have changed since the last entry: nothing is clean. */
	vmcb->control.clean = 0;

	clgi();
	kvmpp_svm_vmenter(svm->vmcb_pa, arch->regs, svm_host_vmsave_pa());
	stgi();

	kvmpp_vcpu_exit_done(vcpu);
	/* Host interrupts and NMIs that made the guest exit are taken here. */
	local_irq_enable();

	arch->regs[__VCPU_REGS_RAX] = vmcb->save.rax;
	arch->regs[__VCPU_REGS_RSP] = vmcb->save.rsp;
	arch->rip = vmcb->save.rip;
	arch->rflags = vmcb->save.rflags;
}

/*
 * An event (exception, interrupt, NMI) the guest was receiving when it exited
 * is delivered again at the next entry. A software interrupt is not: RIP still
 * points at the INT instruction, which runs again.
 */
static void svm_requeue_interrupted_event(struct vmcb_control_area *ctl)
{
	u32 info = ctl->exit_int_info;

	ctl->event_inj = 0;
	if (!(info & SVM_EXITINTINFO_VALID) ||
	    (info & SVM_EXITINTINFO_TYPE_MASK) == SVM_EXITINTINFO_TYPE_SOFT)
		return;
	ctl->event_inj = info;
	ctl->event_inj_err = ctl->exit_int_info_err;
}

int svm_vcpu_run(struct kvmpp_vcpu *vcpu)
{
	struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;

	svm_enter_guest(vcpu);
	svm_requeue_interrupted_event(ctl);
	return svm_handle_exit(vcpu);
}
