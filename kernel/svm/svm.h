/* SPDX-License-Identifier: GPL-2.0-only */
/* Declarations private to kvmpp-amd.ko. */
#ifndef KVMPP_SVM_H
#define KVMPP_SVM_H

#include <linux/types.h>
#include <asm/svm.h>

#include "../core/kvmpp.h"

#define KVMPP_SVM_LOG_PREFIX "kvmpp-amd: "

/* Per-vCPU state: vcpu->backend_data. */
struct svm_vcpu {
	struct vmcb *vmcb;
	u64 vmcb_pa;
	/* ASID on CPU @asid_cpu, valid while @asid_generation is that CPU's. */
	u32 asid;
	int asid_cpu;
	u64 asid_generation;
};

static inline struct svm_vcpu *to_svm(struct kvmpp_vcpu *vcpu)
{
	return vcpu->backend_data;
}

/* hardware.c: EFER.SVME, the host save areas and ASIDs, per CPU. */
int svm_hardware_setup(void);
void svm_hardware_unsetup(void);
int svm_hardware_enable(void);
void svm_hardware_disable(void);
u64 svm_host_vmsave_pa(void);
void svm_assign_asid(struct svm_vcpu *svm, bool flush);

/* vmcb.c: the VMCB's contents. */
extern u64 svm_iopm_pa, svm_msrpm_pa;
int svm_permission_maps_setup(void);
void svm_permission_maps_unsetup(void);
void svm_vmcb_reset(struct kvmpp_vcpu *vcpu);
void svm_get_sregs(struct kvmpp_vcpu *vcpu, struct kvm_sregs *sregs);
void svm_set_sregs(struct kvmpp_vcpu *vcpu, const struct kvm_sregs *sregs);
int svm_get_cpl(struct kvmpp_vcpu *vcpu);
bool svm_is_long_mode(struct kvmpp_vcpu *vcpu);
bool svm_is_paging(struct kvmpp_vcpu *vcpu);
int svm_default_addr_size(struct kvmpp_vcpu *vcpu);
int svm_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data);
int svm_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data);
void svm_inject_exception(struct kvmpp_vcpu *vcpu, int vector, bool has_error, u32 error);
void svm_inject_page_fault(struct kvmpp_vcpu *vcpu, u64 address, u32 error);
void svm_get_paging_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode);
u64 svm_get_segment_base(struct kvmpp_vcpu *vcpu, int seg);
void svm_get_code_segments(struct kvmpp_vcpu *vcpu, u64 bases[6], bool *cs_l, bool *cs_db);

/* run.c: one guest entry and its exit. */
int svm_vcpu_run(struct kvmpp_vcpu *vcpu);
/* vmenter.S: load guest GPRs, VMRUN, store them; GIF is clear around it. */
void kvmpp_svm_vmenter(u64 vmcb_pa, unsigned long *regs, u64 host_vmsave_pa);

/* exits.c: one handler per exit code. */
int svm_handle_exit(struct kvmpp_vcpu *vcpu);
void svm_get_exit_info(struct kvmpp_vcpu *vcpu, u64 info[5]);

/* npt.c */
extern const struct kvmpp_tdp_format svm_npt_format;

#endif /* KVMPP_SVM_H */
