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
#include <asm/kvm_vcpu_regs.h>
#include <asm/nospec-branch.h>

#define WORD_SIZE 8
#define GPR(n) (__VCPU_REGS_##n * WORD_SIZE)

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

	mov 8(%rsp), %rax
	vmsave %rax
	mov 0(%rsp), %rax
	vmload %rax

	/* Leave no guest value in a register the host might speculate on. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d, %r8d
	xor %r9d, %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d

	add $24, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(kvmpp_svm_vmenter)
