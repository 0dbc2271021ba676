// SPDX-License-Identifier: GPL-2.0-only
/*
 * Exit handling: one handler per SVM exit code (AMD APM vol. 2, appendix C),
 * dispatched through svm_exit_handlers[]. A handler returns 1 to re-enter the
 * guest, 0 to return to userspace with kvm_run filled in, or a negative errno.
 *
 * QEMU's SVM has no next-RIP saving and no decode assists, so instruction
 * lengths come from the instruction (fixed for the ones handled here).
 */
#include <linux/kvm.h>
#include <asm/svm.h>
#include <asm/trap_pf.h>
#include <asm/traps.h>

#include "svm.h"

static void skip_instruction(struct kvmpp_vcpu *vcpu, int len)
{
	vcpu->arch.rip += len;
	/* Completing the instruction ends an STI/MOV SS interrupt shadow. */
	to_svm(vcpu)->vmcb->control.int_state = 0;
}

/* Nothing to do: a host interrupt or NMI exited the guest and has been taken. */
static int handle_host_event(struct kvmpp_vcpu *vcpu)
{
	return 1;
}

static int handle_cpuid(struct kvmpp_vcpu *vcpu)
{
	kvmpp_x86_emulate_cpuid(vcpu);
	skip_instruction(vcpu, 2);
	return 1;
}

/* Without an in-kernel APIC, a halted vCPU goes to userspace (KVM_EXIT_HLT). */
static int handle_hlt(struct kvmpp_vcpu *vcpu)
{
	skip_instruction(vcpu, 1);
	vcpu->run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

/*
 * IN/OUT/INS/OUTS: EXITINFO1 has the port, size, direction, string and REP
 * flags and the address size; EXITINFO2 the next RIP.
 */
static int handle_io(struct kvmpp_vcpu *vcpu)
{
	const struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;
	u32 info = ctl->exit_info_1;
	struct kvmpp_io_insn insn = {
		.port = info >> 16,
		.size = (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT,	/* 1, 2, 4 */
		.in = info & SVM_IOIO_TYPE_MASK,
		.string = info & SVM_IOIO_STR_MASK,
		.rep = info & SVM_IOIO_REP_MASK,
		/* A16, A32, A64 flags: bits 7, 8, 9 -> 2, 4, 8 bytes. */
		.addr_size = ((info & SVM_IOIO_ASIZE_MASK) >> SVM_IOIO_ASIZE_SHIFT) * 2,
		/* The segment field needs decode assists, which QEMU lacks. */
		.seg = -1,
		.next_rip = ctl->exit_info_2,
	};

	/* QEMU leaves the address-size flags clear too: start from the mode's. */
	if (insn.string && !insn.addr_size) {
		insn.addr_size = svm_default_addr_size(vcpu);
		insn.addr_size_from_mode = true;
	}

	return kvmpp_x86_pio(vcpu, &insn);
}

/* A triple fault. KVM INITs the vCPU: the VMCB is undefined after it. */
static int handle_shutdown(struct kvmpp_vcpu *vcpu)
{
	svm_vmcb_reset(vcpu);
	kvmpp_x86_reset_regs(vcpu);
	vcpu->run->exit_reason = KVM_EXIT_SHUTDOWN;
	return 0;
}

/* MOV to CR8: the intercepted write does not reach the virtual TPR by itself. */
static int handle_cr8_write(struct kvmpp_vcpu *vcpu)
{
	int r = kvmpp_x86_write_cr8(vcpu);

	to_svm(vcpu)->vmcb->control.int_state = 0;
	return r;
}

/* Instructions of features kvmpp does not offer the guest. */
static int handle_undefined(struct kvmpp_vcpu *vcpu)
{
	svm_inject_exception(vcpu, X86_TRAP_UD, false, 0);
	return 1;
}

/* RDMSR (EXITINFO1 0) or WRMSR (1); an MSR the guest does not have raises #GP. */
static int handle_msr(struct kvmpp_vcpu *vcpu)
{
	bool write = to_svm(vcpu)->vmcb->control.exit_info_1;

	if (write ? kvmpp_x86_emulate_wrmsr(vcpu) : kvmpp_x86_emulate_rdmsr(vcpu))
		skip_instruction(vcpu, 2);
	else
		svm_inject_exception(vcpu, X86_TRAP_GP, true, 0);
	return 1;
}

/* Machine checks belong to the host; the guest goes on. */
static int handle_machine_check(struct kvmpp_vcpu *vcpu)
{
	return 1;
}

/* A nested page fault: EXITINFO1 is the error code, EXITINFO2 the guest-physical address. */
static int handle_npf(struct kvmpp_vcpu *vcpu)
{
	const struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;
	u64 error = ctl->exit_info_1;
	u32 access = 0;

	if (error & X86_PF_WRITE)
		access |= KVMPP_TDP_ACCESS_WRITE;
	if (error & X86_PF_INSTR)
		access |= KVMPP_TDP_ACCESS_FETCH;
	return kvmpp_x86_tdp_fault(vcpu, ctl->exit_info_2, access);
}

typedef int (*svm_exit_handler)(struct kvmpp_vcpu *vcpu);

static const svm_exit_handler svm_exit_handlers[] = {
	[SVM_EXIT_EXCP_BASE + MC_VECTOR] = handle_machine_check,
	[SVM_EXIT_WRITE_CR8] = handle_cr8_write,
	[SVM_EXIT_INTR] = handle_host_event,
	[SVM_EXIT_NMI] = handle_host_event,
	[SVM_EXIT_SMI] = handle_host_event,
	[SVM_EXIT_CPUID] = handle_cpuid,
	[SVM_EXIT_INVD] = handle_host_event,
	[SVM_EXIT_HLT] = handle_hlt,
	[SVM_EXIT_INVLPGA] = handle_undefined,
	[SVM_EXIT_IOIO] = handle_io,
	[SVM_EXIT_MSR] = handle_msr,
	[SVM_EXIT_SHUTDOWN] = handle_shutdown,
	[SVM_EXIT_VMRUN] = handle_undefined,
	[SVM_EXIT_VMMCALL] = handle_undefined,
	[SVM_EXIT_VMLOAD] = handle_undefined,
	[SVM_EXIT_VMSAVE] = handle_undefined,
	[SVM_EXIT_STGI] = handle_undefined,
	[SVM_EXIT_CLGI] = handle_undefined,
	[SVM_EXIT_SKINIT] = handle_undefined,
	[SVM_EXIT_MONITOR] = handle_undefined,
	[SVM_EXIT_MWAIT] = handle_undefined,
	[SVM_EXIT_XSETBV] = handle_undefined,
	[SVM_EXIT_RDPRU] = handle_undefined,
	[SVM_EXIT_NPF] = handle_npf,
};

/* EXITCODE, EXITINFO1, EXITINFO2, EXITINTINFO and its error code, as KVM reports them. */
void svm_get_exit_info(struct kvmpp_vcpu *vcpu, u64 info[5])
{
	const struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;

	info[0] = ctl->exit_code;
	info[1] = ctl->exit_info_1;
	info[2] = ctl->exit_info_2;
	info[3] = ctl->exit_int_info;
	info[4] = ctl->exit_int_info_err;
}

int svm_handle_exit(struct kvmpp_vcpu *vcpu)
{
	const struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;
	struct kvm_run *run = vcpu->run;
	u64 code = ctl->exit_code | (u64)ctl->exit_code_hi << 32;

	/* VMRUN refused the guest state (APM 15.5.1); KVM reports the 32-bit code. */
	if (ctl->exit_code == (u32)SVM_EXIT_ERR) {
		run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = ctl->exit_code;
		run->fail_entry.cpu = vcpu->cpu;
		return 0;
	}
	if (code < ARRAY_SIZE(svm_exit_handlers) && svm_exit_handlers[code])
		return svm_exit_handlers[code](vcpu);

	return kvmpp_x86_unexpected_exit(vcpu, code);
}
