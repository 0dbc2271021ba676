/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the two world switches (svm/vmenter.S, vmx/vmenter.S) do alike with the
 * guest's general-purpose registers after an exit. The guest GPRs live in an
 * array indexed by __VCPU_REGS_* (<asm/kvm_vcpu_regs.h>); RSP travels in the
 * VMCB or VMCS, and RAX is each backend's own (VMRUN takes the VMCB address in
 * it, and the VMX exit path needs it as the array pointer). The loads before
 * the entry differ (each backend keeps the array in another register and
 * loads that one last), so they stay with the backends.
 */
#ifndef KVMPP_X86_VMENTER_GPRS_H
#define KVMPP_X86_VMENTER_GPRS_H

#include <asm/kvm_vcpu_regs.h>

#define GPR(n) (__VCPU_REGS_##n * 8)

/* Store the guest's RCX, RDX, RBX, RBP, RSI, RDI and R8-R15 into the array at %rax. */
.macro KVMPP_SAVE_GUEST_GPRS
	mov %rcx, GPR(RCX)(%rax)
	mov %rdx, GPR(RDX)(%rax)
	mov %rbx, GPR(RBX)(%rax)
	mov %rbp, GPR(RBP)(%rax)
	mov %rsi, GPR(RSI)(%rax)
	mov %rdi, GPR(RDI)(%rax)
	mov %r8, GPR(R8)(%rax)
	mov %r9, GPR(R9)(%rax)
	mov %r10, GPR(R10)(%rax)
	mov %r11, GPR(R11)(%rax)
	mov %r12, GPR(R12)(%rax)
	mov %r13, GPR(R13)(%rax)
	mov %r14, GPR(R14)(%rax)
	mov %r15, GPR(R15)(%rax)
.endm

/*
 * Leave no guest value in a caller-saved register the host might speculate
 * on (the callee-saved ones are restored from the stack right after).
 */
.macro KVMPP_CLEAR_GUEST_GPRS
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
.endm

#endif /* KVMPP_X86_VMENTER_GPRS_H */
