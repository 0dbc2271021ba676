// SPDX-License-Identifier: GPL-2.0-only
/*
 * The guest's FPU/SSE/AVX state. It lives in a guest fpstate from the kernel's
 * FPU core and is swapped into the registers for the whole of KVM_RUN (the
 * kernel then saves and restores it like any task state across preemption),
 * so guest code never sees or changes the VMM thread's own FPU registers.
 */
#include <linux/kvm.h>
#include <linux/uaccess.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>
#include <asm/fpu/xstate.h>

#include "../core/kvmpp.h"

int kvmpp_x86_fpu_create(struct kvmpp_vcpu *vcpu)
{
	return fpu_alloc_guest_fpstate(&vcpu->arch.guest_fpu) ? 0 : -ENOMEM;
}

void kvmpp_x86_fpu_free(struct kvmpp_vcpu *vcpu)
{
	if (vcpu->arch.guest_fpu.fpstate)
		fpu_free_guest_fpstate(&vcpu->arch.guest_fpu);
}

void kvmpp_x86_fpu_load(struct kvmpp_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(&vcpu->arch.guest_fpu, true);
}

void kvmpp_x86_fpu_put(struct kvmpp_vcpu *vcpu)
{
	fpu_swap_kvm_fpstate(&vcpu->arch.guest_fpu, false);
}

/* KVM_GET_FPU: the x87 and XMM registers of the legacy (FXSAVE) area. */
long kvmpp_x86_get_fpu(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	const struct fxregs_state *fx = &vcpu->arch.guest_fpu.fpstate->regs.fxsave;
	struct kvm_fpu fpu = {};

	memcpy(fpu.fpr, fx->st_space, sizeof(fpu.fpr));
	fpu.fcw = fx->cwd;
	fpu.fsw = fx->swd;
	fpu.ftwx = fx->twd;
	fpu.last_opcode = fx->fop;
	fpu.last_ip = fx->rip;
	fpu.last_dp = fx->rdp;
	memcpy(fpu.xmm, fx->xmm_space, sizeof(fpu.xmm));
	/* KVM reports no MXCSR here (the field stays 0): KVM_GET_XSAVE has it. */
	return copy_to_user(argp, &fpu, sizeof(fpu)) ? -EFAULT : 0;
}

long kvmpp_x86_set_fpu(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct fpstate *fps = vcpu->arch.guest_fpu.fpstate;
	struct fxregs_state *fx = &fps->regs.fxsave;
	struct kvm_fpu fpu;

	if (copy_from_user(&fpu, argp, sizeof(fpu)))
		return -EFAULT;
	memcpy(fx->st_space, fpu.fpr, sizeof(fpu.fpr));
	fx->cwd = fpu.fcw;
	fx->swd = fpu.fsw;
	fx->twd = fpu.ftwx;
	fx->fop = fpu.last_opcode;
	fx->rip = fpu.last_ip;
	fx->rdp = fpu.last_dp;
	memcpy(fx->xmm_space, fpu.xmm, sizeof(fpu.xmm));
	/* Nor does KVM take MXCSR from it. */
	/* XRSTOR loads x87 and SSE state only if the header says it is there. */
	if (boot_cpu_has(X86_FEATURE_XSAVE))
		fps->regs.xsave.header.xfeatures |= XFEATURE_MASK_FPSSE;
	return 0;
}
