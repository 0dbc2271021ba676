/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Entering the guest, and running the host's NMI handler after an NMI exit.
 *
 * int kvmpp_vmx_vmenter(unsigned long *regs, bool launched, unsigned long *host_rsp)
 *
 * Called with interrupts off and the vCPU's VMCS current. @regs holds the
 * guest GPRs indexed by __VCPU_REGS_*; RSP, RIP and RFLAGS travel in the
 * VMCS instead. A VM exit does not come back here like a return: the CPU
 * loads RSP from HOST_RSP and jumps to HOST_RIP (kvmpp_vmx_vmexit), with
 * every other GPR still holding the guest's value. So HOST_RSP is this
 * function's stack pointer at the VM entry, and the exit path finds @regs on
 * the stack. Returns 0 after a VM exit (also one that reports a failed VM
 * entry), 1 when VMLAUNCH/VMRESUME itself failed (VMfail: nothing was
 * loaded, the guest did not run).
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/nospec-branch.h>
#include <asm/segment.h>
#include <asm/unwind_hints.h>

#include "../x86/vmenter_gprs.h"
#include "vmenter.h"

	.section .noinstr.text, "ax"

SYM_FUNC_START(kvmpp_vmx_vmenter)
	push %rbp
	mov %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
	/* @regs, at 0(%rsp) = HOST_RSP when the exit lands. */
	push %rdi

	/* HOST_RSP, rewritten only when the stack is not where it was last time. */
	cmp %rsp, (%rdx)
	je 1f
	mov %rsp, (%rdx)
	mov $KVMPP_VMX_HOST_RSP, %eax
	vmwrite %rsp, %rax
	jna .Lfail
1:
	/* ZF set: first entry since VMCLEAR, VMLAUNCH. MOVs leave flags alone. */
	test %sil, %sil

	mov GPR(RAX)(%rdi), %rax
	mov GPR(RCX)(%rdi), %rcx
	mov GPR(RDX)(%rdi), %rdx
	mov GPR(RBX)(%rdi), %rbx
	mov GPR(RBP)(%rdi), %rbp
	mov GPR(RSI)(%rdi), %rsi
	mov GPR(R8)(%rdi), %r8
	mov GPR(R9)(%rdi), %r9
	mov GPR(R10)(%rdi), %r10
	mov GPR(R11)(%rdi), %r11
	mov GPR(R12)(%rdi), %r12
	mov GPR(R13)(%rdi), %r13
	mov GPR(R14)(%rdi), %r14
	mov GPR(R15)(%rdi), %r15
	mov GPR(RDI)(%rdi), %rdi

	/* The exit comes back with this stack state (HOST_RSP). */
	UNWIND_HINT_SAVE
	jz .Llaunch
.Lresume:
	vmresume
	jmp .Lfail
.Llaunch:
	vmlaunch
	jmp .Lfail

	/* A fault (#UD outside VMX operation) is a failure like VMfail. */
	_ASM_EXTABLE(.Lresume, .Lfail)
	_ASM_EXTABLE(.Llaunch, .Lfail)

SYM_INNER_LABEL(kvmpp_vmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR
	/* RSP is ours again, every other register still the guest's. */
	push %rax
	mov 8(%rsp), %rax
	KVMPP_SAVE_GUEST_GPRS
	pop GPR(RAX)(%rax)

	/*
	 * The guest may have filled the return stack buffer with its own
	 * targets: refill it before the first RET where the kernel asks for it.
	 */
	FILL_RETURN_BUFFER %rcx, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT

	xor %eax, %eax
	jmp .Lout

.Lfail:
	mov $1, %eax

.Lout:
	KVMPP_CLEAR_GUEST_GPRS

	add $8, %rsp
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET
SYM_FUNC_END(kvmpp_vmx_vmenter)

	.section .text, "ax"

/*
 * void kvmpp_vmx_call_nmi_handler(void)
 *
 * An NMI that arrives in the guest exits it instead of being delivered (NMI
 * exiting), and leaves NMIs blocked until the next IRET (SDM 27.1). Call the
 * kernel's NMI entry (the variant for use on the kernel stack, exported for
 * hypervisors) with the frame the CPU would have pushed for an NMI in kernel
 * mode: SS, RSP, RFLAGS, CS and, by the CALL, RIP; the handler's IRET comes
 * back here and ends the blocking. Interrupts are off.
 */
SYM_FUNC_START(kvmpp_vmx_call_nmi_handler)
	push %rbp
	mov %rsp, %rbp
	/* In 64-bit mode the CPU aligns RSP to 16 bytes before pushing the frame. */
	and $-16, %rsp
	push $__KERNEL_DS
	push %rbp
	pushf
	push $__KERNEL_CS
	call asm_exc_nmi_noist
	leave
	RET
SYM_FUNC_END(kvmpp_vmx_call_nmi_handler)
