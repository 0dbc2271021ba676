// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_GET/SET_REGS and KVM_GET/SET_SREGS, and the register state of a vCPU
 * after creation (the architectural power-on state KVM gives).
 */
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <asm/cpufeature.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>

#include "../core/kvmpp.h"

void kvmpp_x86_reset_regs(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_x86_vcpu *arch = &vcpu->arch;

	memset(arch->regs, 0, sizeof(arch->regs));
	/* EDX holds the processor signature (CPUID.1.EAX); KVM's default. */
	arch->regs[__VCPU_REGS_RDX] = 0x600;
	arch->rip = 0xfff0;
	arch->rflags = X86_EFLAGS_FIXED;
	arch->pio.pending = false;
	/* KVM's power-on APIC base, in-kernel APIC or not; vCPU 0 is the BSP. */
	arch->apic_base = APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE |
			  (vcpu->id == 0 ? MSR_IA32_APICBASE_BSP : 0);
	arch->cr8 = 0;
	arch->pending_irq = -1;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_reset_regs);

long kvmpp_x86_get_regs(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	const unsigned long *r = vcpu->arch.regs;
	struct kvm_regs regs = {
		.rax = r[__VCPU_REGS_RAX], .rbx = r[__VCPU_REGS_RBX],
		.rcx = r[__VCPU_REGS_RCX], .rdx = r[__VCPU_REGS_RDX],
		.rsi = r[__VCPU_REGS_RSI], .rdi = r[__VCPU_REGS_RDI],
		.rsp = r[__VCPU_REGS_RSP], .rbp = r[__VCPU_REGS_RBP],
		.r8 = r[__VCPU_REGS_R8], .r9 = r[__VCPU_REGS_R9],
		.r10 = r[__VCPU_REGS_R10], .r11 = r[__VCPU_REGS_R11],
		.r12 = r[__VCPU_REGS_R12], .r13 = r[__VCPU_REGS_R13],
		.r14 = r[__VCPU_REGS_R14], .r15 = r[__VCPU_REGS_R15],
		.rip = vcpu->arch.rip,
		.rflags = vcpu->arch.rflags,
	};

	return copy_to_user(argp, &regs, sizeof(regs)) ? -EFAULT : 0;
}

long kvmpp_x86_set_regs(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	unsigned long *r = vcpu->arch.regs;
	struct kvm_regs regs;

	if (copy_from_user(&regs, argp, sizeof(regs)))
		return -EFAULT;
	r[__VCPU_REGS_RAX] = regs.rax;
	r[__VCPU_REGS_RBX] = regs.rbx;
	r[__VCPU_REGS_RCX] = regs.rcx;
	r[__VCPU_REGS_RDX] = regs.rdx;
	r[__VCPU_REGS_RSI] = regs.rsi;
	r[__VCPU_REGS_RDI] = regs.rdi;
	r[__VCPU_REGS_RSP] = regs.rsp;
	r[__VCPU_REGS_RBP] = regs.rbp;
	r[__VCPU_REGS_R8] = regs.r8;
	r[__VCPU_REGS_R9] = regs.r9;
	r[__VCPU_REGS_R10] = regs.r10;
	r[__VCPU_REGS_R11] = regs.r11;
	r[__VCPU_REGS_R12] = regs.r12;
	r[__VCPU_REGS_R13] = regs.r13;
	r[__VCPU_REGS_R14] = regs.r14;
	r[__VCPU_REGS_R15] = regs.r15;
	vcpu->arch.rip = regs.rip;
	/* An instruction waiting on MMIO was decoded with the old registers. */
	kvmpp_emul_reset(&vcpu->arch.emul);
	/* Bit 1 of RFLAGS always reads as 1. */
	vcpu->arch.rflags = regs.rflags | X86_EFLAGS_FIXED;
	return 0;
}

long kvmpp_x86_get_sregs(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_sregs *sregs;
	long r = 0;

	sregs = kzalloc(sizeof(*sregs), GFP_KERNEL_ACCOUNT);
	if (!sregs)
		return -ENOMEM;
	kvmpp_backend->get_sregs(vcpu, sregs);
	sregs->apic_base = vcpu->arch.apic_base;
	sregs->cr8 = vcpu->arch.cr8;
	if (vcpu->arch.pending_irq >= 0)
		__set_bit(vcpu->arch.pending_irq, (unsigned long *)sregs->interrupt_bitmap);
	if (copy_to_user(argp, sregs, sizeof(*sregs)))
		r = -EFAULT;
	kfree(sregs);
	return r;
}

/* CR4 bits the architecture defines and this host supports (KVM checks the same). */
unsigned long kvmpp_x86_cr4_supported_bits(void)
{
	unsigned long bits = X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE |
			     X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE |
			     X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;

	if (boot_cpu_has(X86_FEATURE_XSAVE))
		bits |= X86_CR4_OSXSAVE;
	if (boot_cpu_has(X86_FEATURE_SMEP))
		bits |= X86_CR4_SMEP;
	if (boot_cpu_has(X86_FEATURE_SMAP))
		bits |= X86_CR4_SMAP;
	if (boot_cpu_has(X86_FEATURE_FSGSBASE))
		bits |= X86_CR4_FSGSBASE;
	if (boot_cpu_has(X86_FEATURE_PKU))
		bits |= X86_CR4_PKE;
	if (boot_cpu_has(X86_FEATURE_UMIP))
		bits |= X86_CR4_UMIP;
	if (boot_cpu_has(X86_FEATURE_PCID))
		bits |= X86_CR4_PCIDE;
	return bits;
}
EXPORT_SYMBOL_GPL(kvmpp_x86_cr4_supported_bits);

/* The consistency rules KVM_SET_SREGS enforces before it changes anything. */
static bool sregs_valid(const struct kvm_sregs *s)
{
	if ((s->efer & EFER_LME) && (s->cr0 & X86_CR0_PG)) {
		/* 64-bit mode: PAE and LMA must be on, CR3 within the physical width. */
		if (!(s->cr4 & X86_CR4_PAE) || !(s->efer & EFER_LMA))
			return false;
		if (s->cr3 >> boot_cpu_data.x86_phys_bits)
			return false;
	} else if ((s->efer & EFER_LMA) || s->cs.l) {
		return false;
	}
	if (s->cr4 & ~kvmpp_x86_cr4_supported_bits())
		return false;
	if (s->cr0 >> 32)
		return false;
	if ((s->cr0 & X86_CR0_NW) && !(s->cr0 & X86_CR0_CD))
		return false;
	if ((s->cr0 & X86_CR0_PG) && !(s->cr0 & X86_CR0_PE))
		return false;
	if (!kvmpp_x86_apic_base_valid(s->apic_base))
		return false;
	return true;
}

long kvmpp_x86_set_sregs(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_sregs *sregs;
	unsigned long vec;
	long r = 0;

	sregs = memdup_user(argp, sizeof(*sregs));
	if (IS_ERR(sregs))
		return PTR_ERR(sregs);
	if (sregs_valid(sregs)) {
		vcpu->arch.apic_base = sregs->apic_base;
		/* KVM ignores a CR8 with reserved bits here (KVM_RUN refuses one). */
		if (!(sregs->cr8 & ~X86_CR8_TPR))
			vcpu->arch.cr8 = sregs->cr8;
		/* The lowest vector in the bitmap becomes the pending interrupt, as in KVM. */
		vec = find_first_bit((unsigned long *)sregs->interrupt_bitmap, KVM_NR_INTERRUPTS);
		if (vec < KVM_NR_INTERRUPTS)
			vcpu->arch.pending_irq = vec;
		kvmpp_backend->set_sregs(vcpu, sregs);
	} else
		r = -EINVAL;
	kfree(sregs);
	return r;
}
