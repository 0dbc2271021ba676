/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The one interface between kvmpp's generic core (kvmpp.ko) and a hardware
 * backend (kvmpp-amd.ko, kvmpp-intel.ko).
 *
 * A backend probes the CPU in its module init, fills a struct kvmpp_backend_ops
 * and calls kvmpp_register_backend(); from then on /dev/kvm exists and the core
 * calls back into the backend. Only one backend can be registered at a time.
 */
#ifndef KVMPP_BACKEND_H
#define KVMPP_BACKEND_H

#include <linux/kvm.h>
#include <linux/module.h>
#include <linux/types.h>

struct kvmpp_vm;
struct kvmpp_vcpu;
struct kvmpp_walk_mode;

struct kvmpp_backend_ops {
	/* Short name for log lines ("svm", "vmx"). */
	const char *name;
	/*
	 * The backend module. The core makes it the owner of /dev/kvm and of every
	 * VM fd, so an open fd pins the backend exactly as Linux's kvm pins its
	 * vendor module.
	 */
	struct module *owner;

	/*
	 * Turn hardware virtualization on/off on the calling CPU. Called with
	 * preemption disabled (IPI, CPU hotplug, reboot or syscore context), never
	 * twice in a row for the same CPU: the core tracks which CPUs are on.
	 * hardware_enable returns 0 or a negative errno and leaves the CPU off on
	 * failure. Neither may sleep or allocate.
	 */
	int (*hardware_enable)(void);
	void (*hardware_disable)(void);

	/*
	 * Per-VM state: called at KVM_CREATE_VM after the memslots exist (the backend
	 * sets up its TDP tables here) and when the last reference to the VM goes.
	 */
	int (*vm_init)(struct kvmpp_vm *vm);
	void (*vm_destroy)(struct kvmpp_vm *vm);

	/*
	 * Per-vCPU state. vcpu_create allocates vcpu->backend_data and puts the
	 * vCPU in its reset state (vcpu_reset does the same again on request).
	 */
	int (*vcpu_create)(struct kvmpp_vcpu *vcpu);
	void (*vcpu_free)(struct kvmpp_vcpu *vcpu);
	void (*vcpu_reset)(struct kvmpp_vcpu *vcpu);

	/*
	 * Enter the guest once and handle the exit. Called with preemption enabled,
	 * vcpu->mutex held. Returns 1 to enter again, 0 to return to userspace with
	 * vcpu->run->exit_reason set, or a negative errno for KVM_RUN to return.
	 */
	int (*vcpu_run)(struct kvmpp_vcpu *vcpu);

	/*
	 * Architectural state the backend keeps in its own control structure
	 * (VMCB/VMCS). GPRs, RIP and RFLAGS live in struct kvmpp_vcpu instead, which
	 * the backend copies in and out around each entry.
	 */
	void (*get_sregs)(struct kvmpp_vcpu *vcpu, struct kvm_sregs *sregs);
	/* @sregs has been checked by the core (x86/regs.c). */
	void (*set_sregs)(struct kvmpp_vcpu *vcpu, const struct kvm_sregs *sregs);
	/* Current privilege level and paging state: what the mode helpers need. */
	int (*get_cpl)(struct kvmpp_vcpu *vcpu);
	bool (*is_long_mode)(struct kvmpp_vcpu *vcpu);
	bool (*is_paging)(struct kvmpp_vcpu *vcpu);
	/* CR0, CR3, CR4, EFER and CPL into a struct kvmpp_walk_mode (x86/walker.h). */
	void (*get_paging_mode)(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode);
	u64 (*get_segment_base)(struct kvmpp_vcpu *vcpu, int seg);
	/*
	 * The six segment bases (ES, CS, SS, DS, FS, GS) and CS.L, CS.D: with
	 * get_paging_mode, the mode the instruction emulator needs, read
	 * without converting every segment as get_sregs does.
	 */
	void (*get_code_segments)(struct kvmpp_vcpu *vcpu, u64 bases[6], bool *cs_l, bool *cs_db);

	/*
	 * What the hardware said about the last exit, for the debug data of
	 * KVM_EXIT_INTERNAL_ERROR (KVM's get_exit_info): the exit reason (code),
	 * its two qualifications, the interrupted event and its error code.
	 */
	void (*get_exit_info)(struct kvmpp_vcpu *vcpu, u64 info[5]);

	/* Deliver an exception at the next entry; an event already pending wins. */
	void (*inject_exception)(struct kvmpp_vcpu *vcpu, int vector, bool has_error, u32 error);
	void (*inject_page_fault)(struct kvmpp_vcpu *vcpu, u64 address, u32 error);

	/*
	 * The MSRs the control structure holds (EFER, STAR, LSTAR, CSTAR, SFMASK,
	 * KERNEL_GS_BASE, SYSENTER_*, PAT). Values have been checked by the core
	 * (x86/msr.c). Return 0, or 1 for an MSR the backend does not hold.
	 */
	int (*get_msr)(struct kvmpp_vcpu *vcpu, u32 index, u64 *data);
	int (*set_msr)(struct kvmpp_vcpu *vcpu, u32 index, u64 data);
};

int kvmpp_register_backend(const struct kvmpp_backend_ops *ops);
void kvmpp_unregister_backend(const struct kvmpp_backend_ops *ops);

#endif /* KVMPP_BACKEND_H */
