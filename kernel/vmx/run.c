// SPDX-License-Identifier: GPL-2.0-only
/*
 * One guest entry: bring the VMCS up to date (registers, events to inject,
 * host state that moves), switch what VMX does not switch, VMLAUNCH or
 * VMRESUME (vmenter.S), restore the host, then handle the exit (exits.c).
 *
 * What the CPU switches on entry and exit: CR0/CR3/CR4, RSP/RIP/RFLAGS, the
 * segment registers and descriptor tables, SYSENTER_*, EFER, PAT, DR7 and
 * DEBUGCTL (the latter two with the debug-controls bits). What it does not:
 * - CR2 and DR6: the guest's values are loaded before the entry and saved
 *   after the exit, and the host's DR6 is put back.
 * - STAR, LSTAR, CSTAR, SFMASK (SYSCALL) and KERNEL_GS_BASE (SWAPGS): the
 *   guest needs its own values in the real MSRs, so they are written before
 *   each entry and the host's after each exit. The four SYSCALL MSRs are
 *   constant on the host and written only where the guest's differ; the
 *   guest can only change them through WRMSR, which exits. KERNEL_GS_BASE is
 *   the host task's user GS base and SWAPGS in the guest changes it, so it is
 *   read back every time. (KVM instead leaves the guest's values in place
 *   until the thread returns to user mode or is preempted; that needs hooks
 *   around KVM_RUN the core does not offer yet.)
 * - The VM exit leaves DS, ES, FS, GS and LDTR with null or the host-field
 *   selectors, GDTR.limit at 0xffff and TR.limit at 0x67 (SDM 28.5.2): the
 *   user's selectors and the LDT are reloaded when they were not null, the
 *   GDT limit is restored (load_fixmap_gdt) and the TSS limit is marked
 *   stale for the kernel (invalidate_tss_limit), as KVM does.
 * - IA32_DEBUGCTL is cleared by every exit, PKRU may have been changed by
 *   the guest, and the breakpoint registers too: all are put back.
 */
#include <linux/build_bug.h>
#include <linux/irqflags.h>
#include <linux/sched/signal.h>
#include <asm/cpufeature.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/fsgsbase.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/processor.h>
#include <asm/segment.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>
#include <asm/vmx.h>

#include "vmcs.h"
#include "vmenter.h"
#include "vmx.h"

static_assert(KVMPP_VMX_HOST_RSP == HOST_RSP);

/* The host state an exit clobbers and run.c puts back. */
struct vmx_host_state {
	u16 ds, es, fs, gs, ldt;
	u64 kernel_gs_base;
	unsigned long debugctl;
	u32 pkru;
};

static const u32 vmx_syscall_msrs[] = { MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK };

static u16 vmx_read_ldt(void)
{
	u16 sel;

	asm volatile("sldt %0" : "=g"(sel));
	return sel;
}

static void vmx_load_ldt(u16 sel)
{
	asm volatile("lldt %0" : : "rm"(sel));
}

/*
 * Before an entry, interrupts off: note what the exit will clobber, and bring
 * the host fields that follow the task (CR3, CR4, FS) up to date.
 */
static void vmx_save_host_state(struct vmx_vcpu *vmx, struct vmx_host_state *host)
{
	unsigned long cr3, cr4, fs_base;
	u16 fs_sel, gs_sel;

	savesegment(ds, host->ds);
	savesegment(es, host->es);
	savesegment(fs, host->fs);
	savesegment(gs, host->gs);
	host->ldt = vmx_read_ldt();

	/* Host selector fields must have RPL and TI clear: others are reloaded after. */
	fs_sel = host->fs & 7 ? 0 : host->fs;
	gs_sel = host->gs & 7 ? 0 : host->gs;
	if (fs_sel != vmx->host_fs_sel) {
		vmcs_write(HOST_FS_SELECTOR, fs_sel);
		vmx->host_fs_sel = fs_sel;
	}
	if (gs_sel != vmx->host_gs_sel) {
		vmcs_write(HOST_GS_SELECTOR, gs_sel);
		vmx->host_gs_sel = gs_sel;
	}
	fs_base = x86_fsbase_read_cpu();
	if (fs_base != vmx->host_fs_base) {
		vmcs_write(HOST_FS_BASE, fs_base);
		vmx->host_fs_base = fs_base;
	}
	cr3 = __read_cr3();
	if (cr3 != vmx->host_cr3) {
		vmcs_write(HOST_CR3, cr3);
		vmx->host_cr3 = cr3;
	}
	cr4 = cr4_read_shadow();
	if (cr4 != vmx->host_cr4) {
		vmcs_write(HOST_CR4, cr4);
		vmx->host_cr4 = cr4;
	}

	rdmsrl(MSR_KERNEL_GS_BASE, host->kernel_gs_base);
	host->debugctl = get_debugctlmsr();
	host->pkru = cpu_feature_enabled(X86_FEATURE_OSPKE) ? rdpkru() : 0;
}

/* The guest's values of what VMX does not switch; interrupts off. */
static void vmx_load_guest_state(struct vmx_vcpu *vmx, const struct vmx_host_state *host)
{
	const u64 guest_msrs[] = { vmx->star, vmx->lstar, vmx->cstar, vmx->sfmask };
	const u64 *host_msrs = vmx_host_syscall_msrs();
	unsigned long dr6;
	int i;

	for (i = 0; i < ARRAY_SIZE(vmx_syscall_msrs); i++)
		if (guest_msrs[i] != host_msrs[i])
			wrmsrl(vmx_syscall_msrs[i], guest_msrs[i]);
	if (vmx->kernel_gs_base != host->kernel_gs_base)
		wrmsrl(MSR_KERNEL_GS_BASE, vmx->kernel_gs_base);
	if (native_read_cr2() != vmx->cr2)
		native_write_cr2(vmx->cr2);
	get_debugreg(dr6, 6);
	if (dr6 != vmx->dr6)
		set_debugreg(vmx->dr6, 6);
}

/* After the exit (or a failed VMLAUNCH/VMRESUME), interrupts still off. */
static void vmx_restore_host_state(struct vmx_vcpu *vmx, const struct vmx_host_state *host)
{
	const u64 guest_msrs[] = { vmx->star, vmx->lstar, vmx->cstar, vmx->sfmask };
	const u64 *host_msrs = vmx_host_syscall_msrs();
	bool gs_reloaded = false;
	int i;

	vmx->cr2 = native_read_cr2();
	get_debugreg(vmx->dr6, 6);
	if (vmx->dr6 != DR6_RESERVED)
		set_debugreg(DR6_RESERVED, 6);
	rdmsrl(MSR_KERNEL_GS_BASE, vmx->kernel_gs_base);

	/* The LDT first: a GS or FS selector may point into it. */
	if (host->ldt || (host->gs & 7)) {
		vmx_load_ldt(host->ldt);
		/* Loads the user GS with the kernel's GS base kept (SWAPGS around it). */
		load_gs_index(host->gs);
		gs_reloaded = true;
	}
	if (host->fs & 7)
		loadsegment(fs, host->fs);
	if (host->ds | host->es) {
		loadsegment(ds, host->ds);
		loadsegment(es, host->es);
	}
	invalidate_tss_limit();
	load_fixmap_gdt(smp_processor_id());

	/* After load_gs_index, which sets the inactive GS base from the descriptor. */
	if (gs_reloaded || vmx->kernel_gs_base != host->kernel_gs_base)
		wrmsrl(MSR_KERNEL_GS_BASE, host->kernel_gs_base);
	for (i = 0; i < ARRAY_SIZE(vmx_syscall_msrs); i++)
		if (guest_msrs[i] != host_msrs[i])
			wrmsrl(vmx_syscall_msrs[i], host_msrs[i]);

	if (host->debugctl)
		update_debugctlmsr(host->debugctl);
	if (cpu_feature_enabled(X86_FEATURE_OSPKE) && rdpkru() != host->pkru)
		wrpkru(host->pkru);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
}

/*
 * The event for this entry, in the VM-entry interruption-information field:
 * an exception (or a re-delivered event) first, else the pending external
 * interrupt. Returns true when that is the pending interrupt, which counts
 * as delivered only once the entry succeeds.
 */
static bool vmx_prepare_events(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long rflags = vcpu->arch.rflags;
	u32 info = vmx->inject_info, intr, new_intr;
	bool irq = false;

	/*
	 * As KVM with an injected interrupt, whatever RFLAGS.IF says: with IF
	 * clear the CPU refuses the entry (SDM 26.3.1.4), and userspace learns
	 * of it from KVM_EXIT_FAIL_ENTRY.
	 */
	if (!(info & INTR_INFO_VALID_MASK) && vcpu->arch.pending_irq >= 0) {
		info = vcpu->arch.pending_irq | INTR_TYPE_EXT_INTR | INTR_INFO_VALID_MASK;
		irq = true;
	}
	/* Real mode pushes no error codes, and VM entry refuses one there (26.2.1.3). */
	if ((info & INTR_INFO_DELIVER_CODE_MASK) && !(vmcs_read(GUEST_CR0) & X86_CR0_PE))
		info &= ~INTR_INFO_DELIVER_CODE_MASK;
	/* Always written: a failed entry may leave the last one's valid bit set. */
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, info);
	if (info & INTR_INFO_DELIVER_CODE_MASK)
		vmcs_write(VM_ENTRY_EXCEPTION_ERROR_CODE, vmx->inject_error);

	/*
	 * The STI / MOV SS shadow covers one instruction: once an exit handler
	 * or userspace has moved RIP past it, it is over (and VM entry refuses
	 * STI blocking with IF clear, or any blocking with an interrupt to
	 * inject; an injected event ends the shadow anyway, SDM 26.6.1).
	 */
	if ((info & INTR_INFO_VALID_MASK) || vcpu->arch.rip != vmx->exit_rip ||
	    !(rflags & X86_EFLAGS_IF)) {
		intr = vmcs_read(GUEST_INTERRUPTIBILITY_INFO);
		new_intr = intr;
		if ((info & INTR_INFO_VALID_MASK) || vcpu->arch.rip != vmx->exit_rip)
			new_intr &= ~(GUEST_INTR_STATE_STI | GUEST_INTR_STATE_MOV_SS);
		if (!(rflags & X86_EFLAGS_IF))
			new_intr &= ~GUEST_INTR_STATE_STI;
		if (new_intr != intr)
			vmcs_write(GUEST_INTERRUPTIBILITY_INFO, new_intr);
	}
	return irq;
}

/* What the exit handlers need, read while the VMCS is still loaded here. */
static void vmx_read_exit(struct kvmpp_vcpu *vcpu, bool fail)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvmpp_x86_vcpu *arch = &vcpu->arch;
	u32 reason;

	vmx->entry_failed = fail;
	vmx->idt_info = 0;
	vmx->exit_intr_info = 0;
	if (fail) {
		vmx->instruction_error = vmcs_read(VM_INSTRUCTION_ERROR);
		return;
	}
	reason = vmcs_read(VM_EXIT_REASON);
	vmx->exit_reason = reason;
	vmx->exit_qual = vmcs_read(EXIT_QUALIFICATION);
	/* A failed VM entry changed no guest state (SDM 27.8). */
	if (reason & VMX_EXIT_REASONS_FAILED_VMENTRY)
		return;

	vmx->launched = true;
	vmx->exit_insn_len = vmcs_read(VM_EXIT_INSTRUCTION_LEN);
	vmx->idt_info = vmcs_read(IDT_VECTORING_INFO_FIELD);
	if (vmx->idt_info & VECTORING_INFO_DELIVER_CODE_MASK)
		vmx->idt_error = vmcs_read(IDT_VECTORING_ERROR_CODE);
	if ((u16)reason == EXIT_REASON_EXCEPTION_NMI)
		vmx->exit_intr_info = vmcs_read(VM_EXIT_INTR_INFO);
	arch->rip = vmx->exit_rip = vmcs_read(GUEST_RIP);
	arch->regs[__VCPU_REGS_RSP] = vmcs_read(GUEST_RSP);
	arch->rflags = vmcs_read(GUEST_RFLAGS);

	/* The guest may have entered or left IA-32e mode; older CPUs do not note it. */
	if (!vmx_config.saves_lma) {
		if (vmcs_read(GUEST_IA32_EFER) & EFER_LMA)
			vmcs_set_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
		else
			vmcs_clear_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
	}
}

static bool vmx_exit_was_nmi(struct vmx_vcpu *vmx)
{
	u32 info = vmx->exit_intr_info;

	return !vmx->entry_failed && (u16)vmx->exit_reason == EXIT_REASON_EXCEPTION_NMI &&
	       (info & INTR_INFO_VALID_MASK) &&
	       (info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR;
}

/*
 * Returns 1 after an exit (or a failed entry) to handle, 0 when the entry
 * was not made because the thread has something else to do first, or -EIO
 * when the CPU is not in VMX operation.
 */
static int vmx_enter_guest(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvmpp_x86_vcpu *arch = &vcpu->arch;
	struct vmx_host_state host;
	unsigned long flags;
	bool irq, fail, entered;
	int r;

	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;
	/*
	 * A signal or a reschedule that came after the core's checks: its IPI
	 * was taken before interrupts went off, so the guest would not exit for
	 * it. Let the core's loop see to it.
	 */
	if (need_resched() || signal_pending(current)) {
		local_irq_restore(flags);
		return 0;
	}

	kvmpp_vcpu_enter_prepare(vcpu);
	if (test_and_clear_bit(KVMPP_REQ_TLB_FLUSH, &vcpu->requests))
		vmx->flush_tdp = true;
	vmx_flush_before_entry(vmx);

	vmcs_write(GUEST_RIP, arch->rip);
	vmcs_write(GUEST_RSP, arch->regs[__VCPU_REGS_RSP]);
	vmcs_write(GUEST_RFLAGS, arch->rflags);
	vmcs_write(TSC_OFFSET, arch->tsc_offset);
	irq = vmx_prepare_events(vcpu);

	vmx_save_host_state(vmx, &host);
	vmx_load_guest_state(vmx, &host);
	fail = kvmpp_vmx_vmenter(arch->regs, vmx->launched, &vmx->host_rsp);
	vmx_restore_host_state(vmx, &host);

	vmx_read_exit(vcpu, fail);
	entered = !fail && !(vmx->exit_reason & VMX_EXIT_REASONS_FAILED_VMENTRY);
	if (entered) {
		/* The CPU delivered the event (or noted in IDT-vectoring info that it did not). */
		vmx->inject_info = 0;
		if (irq)
			arch->pending_irq = -1;
	}
	/* Host NMIs that exited the guest are handled before anything else. */
	if (vmx_exit_was_nmi(vmx))
		kvmpp_vmx_call_nmi_handler();

	kvmpp_vcpu_exit_done(vcpu);
	/* Host interrupts that exited the guest are taken here. */
	local_irq_restore(flags);
	return 1;
}

/*
 * An event the guest was receiving when it exited is delivered again at the
 * next entry: an external interrupt goes back to the pending one, an
 * exception or NMI to the next entry's event. A software interrupt or
 * exception (INT n, INT3, INTO, INT1) is not: RIP still points at the
 * instruction, which runs again.
 */
static void vmx_requeue_interrupted_event(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u32 info = vmx->idt_info;

	if (!(info & VECTORING_INFO_VALID_MASK))
		return;
	switch (info & VECTORING_INFO_TYPE_MASK) {
	case INTR_TYPE_EXT_INTR:
		vcpu->arch.pending_irq = info & VECTORING_INFO_VECTOR_MASK;
		break;
	case INTR_TYPE_NMI_INTR:
	case INTR_TYPE_HARD_EXCEPTION:
		vmx->inject_info = info & (VECTORING_INFO_VECTOR_MASK | VECTORING_INFO_TYPE_MASK |
					   VECTORING_INFO_DELIVER_CODE_MASK | VECTORING_INFO_VALID_MASK);
		vmx->inject_error = vmx->idt_error;
		break;
	default:
		break;
	}
}

int vmx_vcpu_run(struct kvmpp_vcpu *vcpu)
{
	int r;

	r = vmx_enter_guest(vcpu);
	if (r <= 0)
		return r < 0 ? r : 1;
	vmx_requeue_interrupted_event(vcpu);
	return vmx_handle_exit(vcpu);
}
