/* SPDX-License-Identifier: GPL-2.0-only */
/* Declarations private to kvmpp-intel.ko. */
#ifndef KVMPP_VMX_H
#define KVMPP_VMX_H

#include <linux/list.h>
#include <linux/types.h>

#include "../core/kvmpp.h"

#define KVMPP_VMX_LOG_PREFIX "kvmpp-intel: "

/* What the probe found out about the CPU; written once at module load. */
struct vmx_config {
	u32 revision_id;	/* VMCS revision identifier, IA32_VMX_BASIC[30:0] */
	u32 vmcs_size;		/* bytes, at most a page */
	bool true_ctls;		/* IA32_VMX_TRUE_*_CTLS exist */
	bool vpid;
	bool unrestricted_guest;
	bool ept_ad;		/* EPT accessed/dirty flags */
	bool ins_outs_info;	/* INS/OUTS exits report address size and segment */
	bool saves_lma;		/* VM exits store EFER.LMA into the IA-32e entry control */

	/* The VM-execution, VM-exit and VM-entry controls every VMCS starts with. */
	u32 pin, proc, proc2, exit, entry;
	u64 ept_vpid_cap;	/* IA32_VMX_EPT_VPID_CAP */
	/* Bits of the real CR0/CR4 that VMX operation fixes to 1 or to 0. */
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

extern struct vmx_config vmx_config;

/*
 * Per-vCPU state: vcpu->backend_data.
 *
 * Most guest state lives in the VMCS, which VMREAD/VMWRITE reach only while
 * it is current on the CPU executing them. @cpu says where it is current:
 * it, @launched and @loaded_link change only on that CPU with interrupts off
 * (vmx_vcpu_load, the VMCLEAR IPI, hardware_disable), so whoever has the
 * VMCS loaded here with interrupts off may use them without a lock. Every
 * other field belongs to the thread holding vcpu->mutex.
 */
struct vmx_vcpu {
	struct kvmpp_vcpu *vcpu;
	void *vmcs;
	u64 vmcs_pa;
	int cpu;			/* CPU the VMCS is current on, or -1 (clear) */
	bool launched;			/* VMRESUME rather than VMLAUNCH */
	struct list_head loaded_link;	/* on that CPU's list of loaded VMCSs */

	u16 vpid;			/* 0 without VPID support */
	u64 eptp;
	/* Flushes owed before the next entry (see vmx_flush_before_entry). */
	bool flush_tdp;			/* EPT-derived translations of this VM */
	bool flush_guest;		/* the guest's own (VPID-tagged) translations */

	/* What the VMCS holds, so that unchanged host fields are not rewritten. */
	unsigned long host_rsp, host_cr3, host_cr4, host_fs_base;
	u16 host_fs_sel, host_gs_sel;

	/*
	 * Guest state VMX does not switch: CR2 and DR6 are the CPU's own
	 * registers while the guest runs; the SYSCALL MSRs and KERNEL_GS_BASE
	 * are loaded around each entry (run.c).
	 */
	unsigned long cr2, dr6;
	u64 star, lstar, cstar, sfmask, kernel_gs_base;

	/*
	 * An exception (or a re-delivered NMI) for the next entry, in the format
	 * of the VM-entry interruption-information field; 0 when none.
	 */
	u32 inject_info;
	u32 inject_error;

	/* The last exit, read while the VMCS was still loaded after it. */
	bool entry_failed;		/* VMLAUNCH/VMRESUME itself failed (VMfail) */
	u32 instruction_error;		/* VM_INSTRUCTION_ERROR after a VMfail */
	u32 exit_reason;
	unsigned long exit_qual;
	u32 exit_intr_info;
	u32 exit_insn_len;
	u32 idt_info, idt_error;
	unsigned long exit_rip;		/* guest RIP at the exit */
};

static inline struct vmx_vcpu *to_vmx(struct kvmpp_vcpu *vcpu)
{
	return vcpu->backend_data;
}

/* ept.c */
extern const struct kvmpp_tdp_format vmx_ept_format;

/*
 * hardware.c: VMXON/VMXOFF and what each CPU owns while in VMX operation
 * (its VMXON region, the VMCSs loaded on it, the host's SYSCALL MSRs), and
 * the VPIDs.
 */
int vmx_hardware_setup(void);
void vmx_hardware_unsetup(void);
int vmx_hardware_enable(void);
void vmx_hardware_disable(void);
int vmx_vcpu_load(struct vmx_vcpu *vmx, unsigned long *flags);
void vmx_vcpu_unload(struct vmx_vcpu *vmx);
u16 vmx_alloc_vpid(void);
void vmx_free_vpid(u16 vpid);
void vmx_flush_before_entry(struct vmx_vcpu *vmx);
/* The host's STAR, LSTAR, CSTAR, SFMASK on this CPU (constant after boot). */
const u64 *vmx_host_syscall_msrs(void);

/* vmcs.c: VMCS contents and the state operations of the ops table. */
int vmx_vmcs_setup(void);
void vmx_vmcs_unsetup(void);
int vmx_vmcs_init(struct kvmpp_vcpu *vcpu);
void vmx_vcpu_reset(struct kvmpp_vcpu *vcpu);
void vmx_set_host_cpu_state(struct vmx_vcpu *vmx);
void vmx_get_sregs(struct kvmpp_vcpu *vcpu, struct kvm_sregs *sregs);
void vmx_set_sregs(struct kvmpp_vcpu *vcpu, const struct kvm_sregs *sregs);
int vmx_get_cpl(struct kvmpp_vcpu *vcpu);
bool vmx_is_long_mode(struct kvmpp_vcpu *vcpu);
bool vmx_is_paging(struct kvmpp_vcpu *vcpu);
void vmx_get_paging_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode);
u64 vmx_get_segment_base(struct kvmpp_vcpu *vcpu, int seg);
void vmx_get_code_segments(struct kvmpp_vcpu *vcpu, u64 bases[6], bool *cs_l, bool *cs_db);
int vmx_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data);
int vmx_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data);
void vmx_inject_exception(struct kvmpp_vcpu *vcpu, int vector, bool has_error, u32 error);
void vmx_inject_page_fault(struct kvmpp_vcpu *vcpu, u64 address, u32 error);
/* For exits.c: guest control-register writes that exit, and the mode. */
int vmx_guest_set_cr0(struct kvmpp_vcpu *vcpu, u64 value);
int vmx_guest_set_cr3(struct kvmpp_vcpu *vcpu, u64 value);
u64 vmx_guest_cr0(struct kvmpp_vcpu *vcpu);
u64 vmx_guest_cr3(struct kvmpp_vcpu *vcpu);
/* One VMCS field, loading the VMCS around the VMREAD. */
u64 vmx_read_field(struct kvmpp_vcpu *vcpu, unsigned long field);
/* exits.c */
void vmx_get_exit_info(struct kvmpp_vcpu *vcpu, u64 info[5]);
int vmx_default_addr_size(struct kvmpp_vcpu *vcpu);
void vmx_vmwrite_failed(unsigned long field, unsigned long value);

/* run.c: one guest entry and its exit. */
int vmx_vcpu_run(struct kvmpp_vcpu *vcpu);

/*
 * vmenter.S: load the guest GPRs, VMLAUNCH (@launched false) or VMRESUME,
 * store them back. Returns 0 after a VM exit, 1 if the instruction failed.
 * Interrupts are off and the VMCS is current. @host_rsp caches HOST_RSP.
 */
int kvmpp_vmx_vmenter(unsigned long *regs, bool launched, unsigned long *host_rsp);
/* Where VM exits land (HOST_RIP). */
extern const char kvmpp_vmx_vmexit[];
/* Run the host's NMI handler, as the CPU would have had the NMI not exited the guest. */
void kvmpp_vmx_call_nmi_handler(void);

/* exits.c: one handler per basic exit reason. */
int vmx_handle_exit(struct kvmpp_vcpu *vcpu);

#endif /* KVMPP_VMX_H */
