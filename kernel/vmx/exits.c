// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exit handling: one handler per basic VM-exit reason (Intel SDM vol. 3D,
 * appendix C), dispatched through vmx_exit_handlers[]. A handler returns 1
 * to re-enter the guest, 0 to return to userspace with kvm_run filled in, or
 * a negative errno.
 *
 * run.c has read the exit information and the guest's RIP, RSP and RFLAGS
 * into struct vmx_vcpu and vcpu->arch; the instruction length the CPU
 * reports moves RIP past an emulated instruction.
 */
#include <linux/kvm.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>
#include <asm/vmx.h>

#include "vmx.h"

/* The number of the control register in a CR-access exit qualification: bits 3:0. */
#define CR_ACCESS_NUM		0xf
#define CR_ACCESS_TYPE_SHIFT	4
enum { CR_MOV_TO, CR_MOV_FROM, CR_CLTS, CR_LMSW };

/* I/O exit qualification (SDM table 28-5). */
#define IO_SIZE_MASK		0x7	/* size - 1 */
#define IO_IN			BIT(3)
#define IO_STRING		BIT(4)
#define IO_REP			BIT(5)
#define IO_PORT_SHIFT		16
/* VM-exit instruction information for INS/OUTS (SDM table 28-8). */
#define IO_INFO_ADDR_SIZE_SHIFT	7
#define IO_INFO_SEG_SHIFT	15

/* Completing the instruction; run.c ends an STI/MOV SS shadow when RIP moved. */
static void skip_instruction(struct kvmpp_vcpu *vcpu)
{
	vcpu->arch.rip += to_vmx(vcpu)->exit_insn_len;
}

static void inject_gp(struct kvmpp_vcpu *vcpu)
{
	vmx_inject_exception(vcpu, X86_TRAP_GP, true, 0);
}

/* An exit kvmpp did not ask for: KVM reports it the same way. */
static int unexpected_exit(struct kvmpp_vcpu *vcpu)
{
	return kvmpp_x86_unexpected_exit(vcpu, to_vmx(vcpu)->exit_reason);
}

/* Nothing to do: a host interrupt (taken when run.c enabled interrupts) or an INIT. */
static int handle_host_event(struct kvmpp_vcpu *vcpu)
{
	return 1;
}

/*
 * Exception bitmap: only #MC exits, and host NMIs. run.c has already run the
 * NMI handler. A machine check belongs to the host, which without MCE
 * support in this kernel has nothing to run: the guest goes on.
 */
static int handle_exception_nmi(struct kvmpp_vcpu *vcpu)
{
	u32 info = to_vmx(vcpu)->exit_intr_info;
	u32 type = info & INTR_INFO_INTR_TYPE_MASK;

	if (type == INTR_TYPE_NMI_INTR)
		return 1;
	if (type == INTR_TYPE_HARD_EXCEPTION && (info & INTR_INFO_VECTOR_MASK) == X86_TRAP_MC)
		return 1;
	return unexpected_exit(vcpu);
}

/* As KVM on VMX: report it; the vCPU stays as the triple fault left it. */
static int handle_triple_fault(struct kvmpp_vcpu *vcpu)
{
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
	return 0;
}

static int handle_cpuid(struct kvmpp_vcpu *vcpu)
{
	kvmpp_x86_emulate_cpuid(vcpu);
	skip_instruction(vcpu);
	return 1;
}

/* Without an in-kernel APIC, a halted vCPU goes to userspace (KVM_EXIT_HLT). */
static int handle_hlt(struct kvmpp_vcpu *vcpu)
{
	skip_instruction(vcpu);
	vcpu->run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

/* INVD exits unconditionally; the caches are the host's: nothing to do. */
static int handle_invd(struct kvmpp_vcpu *vcpu)
{
	skip_instruction(vcpu);
	return 1;
}

/* RDPMC: no virtual PMU, so no counter exists (KVM injects #GP too). */
static int handle_rdpmc(struct kvmpp_vcpu *vcpu)
{
	inject_gp(vcpu);
	return 1;
}

/* Instructions of features kvmpp does not offer the guest (VMX itself, XSETBV, ...). */
static int handle_undefined(struct kvmpp_vcpu *vcpu)
{
	vmx_inject_exception(vcpu, X86_TRAP_UD, false, 0);
	return 1;
}

/*
 * Without an in-kernel APIC the task priority is userspace's: as KVM, a
 * guest that lowers it exits with KVM_EXIT_SET_TPR (userspace may now have
 * an interrupt to inject), once the MOV is done.
 */
static int handle_cr8_write(struct kvmpp_vcpu *vcpu, unsigned long value)
{
	int r = kvmpp_x86_set_cr8(vcpu, value);

	if (r < 0)
		return 1;	/* #GP queued: the MOV did not happen */
	skip_instruction(vcpu);
	return r;
}

/*
 * MOV to/from CR0, CR3 (on CPUs that insist on CR3 exits), CR4, CR8; CLTS;
 * LMSW. CR0 and CR4 writes exit only when they change a host-owned bit
 * (vmcs.c), CR8 always: without an in-kernel APIC the task priority is
 * userspace's (kvm_run.cr8), and the real one must stay the host's.
 */
static int handle_cr(struct kvmpp_vcpu *vcpu)
{
	unsigned long qual = to_vmx(vcpu)->exit_qual;
	unsigned long *reg = &vcpu->arch.regs[(qual & CONTROL_REG_ACCESS_REG) >> 8];
	int cr = qual & CR_ACCESS_NUM;
	int r = -1;
	u64 cr0;

	switch ((qual & CONTROL_REG_ACCESS_TYPE) >> CR_ACCESS_TYPE_SHIFT) {
	case CR_MOV_TO:
		if (cr == 0) {
			r = vmx_guest_set_cr0(vcpu, *reg);
		} else if (cr == 3) {
			r = vmx_guest_set_cr3(vcpu, *reg);
		} else if (cr == 4) {
			/* Only bits the guest may not set exit. */
			r = 1;
		} else if (cr == 8) {
			return handle_cr8_write(vcpu, *reg);
		}
		break;
	case CR_MOV_FROM:
		if (cr == 3) {
			*reg = vmx_guest_cr3(vcpu);
			r = 0;
		} else if (cr == 8) {
			*reg = vcpu->arch.cr8;
			r = 0;
		}
		break;
	case CR_CLTS:
		r = vmx_guest_set_cr0(vcpu, vmx_guest_cr0(vcpu) & ~(u64)X86_CR0_TS);
		break;
	case CR_LMSW:
		/* LMSW writes PE, MP, EM, TS; it can set PE but not clear it. */
		cr0 = vmx_guest_cr0(vcpu);
		cr0 = (cr0 & ~(u64)(X86_CR0_MP | X86_CR0_EM | X86_CR0_TS)) |
		      ((qual >> LMSW_SOURCE_DATA_SHIFT) &
		       (X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS));
		r = vmx_guest_set_cr0(vcpu, cr0);
		break;
	}
	if (r == -1)
		return unexpected_exit(vcpu);
	if (r < 0)
		return r;
	if (r)
		inject_gp(vcpu);
	else
		skip_instruction(vcpu);
	return 1;
}

/*
 * IN/OUT/INS/OUTS: the qualification has the port, size, direction, string
 * and REP flags; for the string forms the instruction information has the
 * address size and OUTS's segment, where the CPU reports them.
 */
static int handle_io(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long qual = vmx->exit_qual;
	struct kvmpp_io_insn insn = {
		.port = qual >> IO_PORT_SHIFT,
		.size = (qual & IO_SIZE_MASK) + 1,	/* 1, 2, 4 */
		.in = qual & IO_IN,
		.string = qual & IO_STRING,
		.rep = qual & IO_REP,
		.seg = -1,
		.next_rip = vcpu->arch.rip + vmx->exit_insn_len,
	};
	u32 info;

	if (insn.string) {
		if (vmx_config.ins_outs_info) {
			info = vmx_read_field(vcpu, VMX_INSTRUCTION_INFO);
			/* 0, 1, 2: 16, 32, 64 bits. */
			insn.addr_size = 2 << ((info >> IO_INFO_ADDR_SIZE_SHIFT) & 7);
			/* INS always writes through ES; the field is undefined for it. */
			insn.seg = insn.in ? KVMPP_SEG_ES : (info >> IO_INFO_SEG_SHIFT) & 7;
		} else {
			insn.addr_size = vmx_default_addr_size(vcpu);
			insn.addr_size_from_mode = true;
		}
	}
	return kvmpp_x86_pio(vcpu, &insn);
}

/* RDMSR and WRMSR; an MSR the guest does not have raises #GP. */
static int handle_rdmsr(struct kvmpp_vcpu *vcpu)
{
	if (kvmpp_x86_emulate_rdmsr(vcpu))
		skip_instruction(vcpu);
	else
		inject_gp(vcpu);
	return 1;
}

static int handle_wrmsr(struct kvmpp_vcpu *vcpu)
{
	if (kvmpp_x86_emulate_wrmsr(vcpu))
		skip_instruction(vcpu);
	else
		inject_gp(vcpu);
	return 1;
}

/* The guest touched a guest-physical page the EPT tables do not map (yet). */
static int handle_ept_violation(struct kvmpp_vcpu *vcpu)
{
	unsigned long qual = to_vmx(vcpu)->exit_qual;
	u64 gpa = vmx_read_field(vcpu, GUEST_PHYSICAL_ADDRESS);
	u32 access = 0;

	if (qual & EPT_VIOLATION_ACC_WRITE)
		access |= KVMPP_TDP_ACCESS_WRITE;
	if (qual & EPT_VIOLATION_ACC_INSTR)
		access |= KVMPP_TDP_ACCESS_FETCH;
	return kvmpp_x86_tdp_fault(vcpu, gpa, access);
}

/* kvmpp never writes a misconfigured EPT entry: a bug, reported with its address. */
static int handle_ept_misconfig(struct kvmpp_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	unexpected_exit(vcpu);
	run->internal.ndata = 3;
	run->internal.data[2] = vmx_read_field(vcpu, GUEST_PHYSICAL_ADDRESS);
	return 0;
}

typedef int (*vmx_exit_handler)(struct kvmpp_vcpu *vcpu);

static const vmx_exit_handler vmx_exit_handlers[] = {
	[EXIT_REASON_EXCEPTION_NMI] = handle_exception_nmi,
	[EXIT_REASON_EXTERNAL_INTERRUPT] = handle_host_event,
	[EXIT_REASON_TRIPLE_FAULT] = handle_triple_fault,
	[EXIT_REASON_INIT_SIGNAL] = handle_host_event,
	[EXIT_REASON_CPUID] = handle_cpuid,
	[EXIT_REASON_HLT] = handle_hlt,
	[EXIT_REASON_INVD] = handle_invd,
	[EXIT_REASON_RDPMC] = handle_rdpmc,
	[EXIT_REASON_VMCALL] = handle_undefined,
	[EXIT_REASON_VMCLEAR] = handle_undefined,
	[EXIT_REASON_VMLAUNCH] = handle_undefined,
	[EXIT_REASON_VMPTRLD] = handle_undefined,
	[EXIT_REASON_VMPTRST] = handle_undefined,
	[EXIT_REASON_VMREAD] = handle_undefined,
	[EXIT_REASON_VMRESUME] = handle_undefined,
	[EXIT_REASON_VMWRITE] = handle_undefined,
	[EXIT_REASON_VMOFF] = handle_undefined,
	[EXIT_REASON_VMON] = handle_undefined,
	[EXIT_REASON_CR_ACCESS] = handle_cr,
	[EXIT_REASON_IO_INSTRUCTION] = handle_io,
	[EXIT_REASON_MSR_READ] = handle_rdmsr,
	[EXIT_REASON_MSR_WRITE] = handle_wrmsr,
	[EXIT_REASON_MWAIT_INSTRUCTION] = handle_undefined,
	[EXIT_REASON_MONITOR_INSTRUCTION] = handle_undefined,
	[EXIT_REASON_EPT_VIOLATION] = handle_ept_violation,
	[EXIT_REASON_EPT_MISCONFIG] = handle_ept_misconfig,
	[EXIT_REASON_INVEPT] = handle_undefined,
	[EXIT_REASON_INVVPID] = handle_undefined,
	[EXIT_REASON_XSETBV] = handle_undefined,
	[EXIT_REASON_VMFUNC] = handle_undefined,
};

/*
 * The exit reason, the exit qualification, the IDT-vectoring information,
 * the exit interruption information and its error code, as KVM reports them.
 */
void vmx_get_exit_info(struct kvmpp_vcpu *vcpu, u64 info[5])
{
	const struct vmx_vcpu *vmx = to_vmx(vcpu);

	info[0] = vmx->exit_reason;
	info[1] = vmx->exit_qual;
	info[2] = vmx->idt_info;
	info[3] = vmx->exit_intr_info;
	info[4] = 0;
	if ((vmx->exit_intr_info & INTR_INFO_VALID_MASK) &&
	    (vmx->exit_intr_info & INTR_INFO_DELIVER_CODE_MASK))
		info[4] = vmx_read_field(vcpu, VM_EXIT_INTR_ERROR_CODE);
}

int vmx_handle_exit(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	struct kvm_run *run = vcpu->run;
	u16 basic = vmx->exit_reason;

	/* VMLAUNCH/VMRESUME refused the controls or host state: KVM reports the error number. */
	if (vmx->entry_failed) {
		run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = vmx->instruction_error;
		run->fail_entry.cpu = vcpu->cpu;
		return 0;
	}
	/* VM entry failed on the guest state (or MSR loading, or a #MC): the full reason. */
	if (vmx->exit_reason & VMX_EXIT_REASONS_FAILED_VMENTRY) {
		run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = vmx->exit_reason;
		run->fail_entry.cpu = vcpu->cpu;
		return 0;
	}
	if (basic < ARRAY_SIZE(vmx_exit_handlers) && vmx_exit_handlers[basic])
		return vmx_exit_handlers[basic](vcpu);
	return unexpected_exit(vcpu);
}
