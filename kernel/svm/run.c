// SPDX-License-Identifier: GPL-2.0-only
/*
 * One guest entry: copy the core's register state into the VMCB, enter with
 * interrupts off and GIF clear, copy back, then handle the exit (exits.c).
 */
#include <linux/irqflags.h>
#include <asm/cpufeature.h>
#include <asm/special_insns.h>
#include <asm/debugreg.h>

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
	u32 host_pkru = 0;

	vmcb->save.rax = arch->regs[__VCPU_REGS_RAX];
	vmcb->save.rsp = arch->regs[__VCPU_REGS_RSP];
	vmcb->save.rip = arch->rip;
	vmcb->save.rflags = arch->rflags;
	vmcb->control.tsc_offset = arch->tsc_offset;
	/* The guest's CR8 is the VMCB's virtual TPR. */
	vmcb->control.int_ctl = (vmcb->control.int_ctl & ~V_TPR_MASK) | arch->cr8;

	local_irq_disable();
	kvmpp_vcpu_enter_prepare(vcpu);
	svm_assign_asid(svm, test_and_clear_bit(KVMPP_REQ_TLB_FLUSH, &vcpu->requests));
	/* Every field may have changed since the last entry: nothing is clean. */
	vmcb->control.clean = 0;

	/*
	 * The guest may change PKRU (its CR4 writes do not exit) and the debug
	 * registers: the VMM thread and the host must get theirs back.
	 */
	if (cpu_feature_enabled(X86_FEATURE_OSPKE))
		host_pkru = rdpkru();

	/*
	 * With V_INTR_MASKING, the host's RFLAGS.IF at VMRUN decides whether host
	 * interrupts reach (and so exit) the guest: set it, with GIF clear so that
	 * none is taken here in host code (APM 15.21.1, 15.17).
	 */
	clgi();
	raw_local_irq_enable();
	kvmpp_svm_vmenter(svm->vmcb_pa, arch->regs, svm_host_vmsave_pa());
	raw_local_irq_disable();
	stgi();

	if (cpu_feature_enabled(X86_FEATURE_OSPKE) && rdpkru() != host_pkru)
		wrpkru(host_pkru);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();

	kvmpp_vcpu_exit_done(vcpu);
	/* Host interrupts and NMIs that made the guest exit are taken here. */
	local_irq_enable();

	arch->regs[__VCPU_REGS_RAX] = vmcb->save.rax;
	arch->regs[__VCPU_REGS_RSP] = vmcb->save.rsp;
	arch->rip = vmcb->save.rip;
	arch->rflags = vmcb->save.rflags;
	arch->cr8 = vmcb->control.int_ctl & V_TPR_MASK;
}

/*
 * An event the guest was receiving when it exited is delivered again at the
 * next entry: an external interrupt goes back to the pending one, an exception
 * or NMI straight to the VMCB. A software interrupt is not: RIP still points
 * at the INT instruction, which runs again. Nor are #BP and #OF: only INT3
 * and INTO raise them, and SVM reports those as exceptions (EXITINTINFO has
 * no software-exception type) with RIP still at the instruction; injected as
 * exceptions they would push the instruction's own address as the return
 * address, and the handler would return into a second INT3.
 */
static void svm_requeue_interrupted_event(struct kvmpp_vcpu *vcpu, struct vmcb_control_area *ctl)
{
	u32 info = ctl->exit_int_info;

	ctl->event_inj = 0;
	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	switch (info & SVM_EXITINTINFO_TYPE_MASK) {
	case SVM_EXITINTINFO_TYPE_SOFT:
		break;
	case SVM_EXITINTINFO_TYPE_INTR:
		vcpu->arch.pending_irq = info & SVM_EXITINTINFO_VEC_MASK;
		break;
	case SVM_EXITINTINFO_TYPE_EXEPT:
		if ((info & SVM_EXITINTINFO_VEC_MASK) == BP_VECTOR ||
		    (info & SVM_EXITINTINFO_VEC_MASK) == OF_VECTOR)
			break;
		fallthrough;
	default:
		ctl->event_inj = info;
		ctl->event_inj_err = ctl->exit_int_info_err;
		break;
	}
}

int svm_vcpu_run(struct kvmpp_vcpu *vcpu)
{
	struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;

	/* An exception to deliver goes first; the interrupt waits for the next entry. */
	if (vcpu->arch.pending_irq >= 0 && !(ctl->event_inj & SVM_EVTINJ_VALID)) {
		ctl->event_inj = vcpu->arch.pending_irq | SVM_EVTINJ_TYPE_INTR | SVM_EVTINJ_VALID;
		vcpu->arch.pending_irq = -1;
	}
	svm_enter_guest(vcpu);
	svm_requeue_interrupted_event(vcpu, ctl);
	return svm_handle_exit(vcpu);
}
