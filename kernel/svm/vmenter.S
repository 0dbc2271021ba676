/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One VMRUN. Called with interrupts off and GIF clear (CLGI), so nothing can
 * run between the VMLOAD of the guest's FS/GS/TR/LDTR/syscall state and the
 * VMLOAD that restores the host's.
 *
 * void kvmpp_svm_vmenter(u64 vmcb_pa, unsigned long *regs, u64 host_vmsave_pa)
 *
 * @regs holds the guest GPRs indexed by __VCPU_REGS_*; RAX and RSP travel in the
 * VMCB instead (VMRUN takes the VMCB address in RAX).
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>

#include "../x86/vmenter_gprs.h"

	.section .noinstr.text, "ax"

SYM_FUNC_START(kvmpp_svm_vmenter)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	/* Stack from here: 0(%rsp) host save PA, 8 VMCB PA, 16 regs. */
	push %rsi
	push %rdi
	push %rdx

	mov %rdx, %rax
	vmsave %rax
	mov %rdi, %rax
	vmload %rax

	mov GPR(RCX)(%rsi), %rcx
	mov GPR(RDX)(%rsi), %rdx
	mov GPR(RBX)(%rsi), %rbx
	mov GPR(RBP)(%rsi), %rbp
	mov GPR(RDI)(%rsi), %rdi
	mov GPR(R8)(%rsi), %r8
	mov GPR(R9)(%rsi), %r9
	mov GPR(R10)(%rsi), %r10
	mov GPR(R11)(%rsi), %r11
	mov GPR(R12)(%rsi), %r12
	mov GPR(R13)(%rsi), %r13
	mov GPR(R14)(%rsi), %r14
	mov GPR(R15)(%rsi), %r15
	mov GPR(RSI)(%rsi), %rsi

	/* RAX = VMCB PA (still there from the VMLOAD above). */
	vmrun %rax

	/* Host RSP and RAX are back; the guest's GPRs are live. */
	mov 16(%rsp), %rax
	KVMPP_SAVE_GUEST_GPRS

	mov 8(%rsp), %rax
	vmsave %rax
	mov 0(%rsp), %rax
	vmload %rax

	KVMPP_CLEAR_GUEST_GPRS

	add $24, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(kvmpp_svm_vmenter)
