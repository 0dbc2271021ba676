/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * x86 vCPU state the core keeps for every backend, and the x86 parts of the core
 * that backends call from their exit handlers.
 */
#ifndef KVMPP_X86_H
#define KVMPP_X86_H

#include <linux/kvm.h>
#include <linux/types.h>
#include <asm/fpu/types.h>
#include <asm/kvm_vcpu_regs.h>

#include "emulate.h"

struct kvmpp_vcpu;
struct kvmpp_vm;

#define KVMPP_NR_GPRS 16

/* Segment registers in their x86 encoding (as in SVM's and VMX's exit information). */
enum kvmpp_seg {
	KVMPP_SEG_ES, KVMPP_SEG_CS, KVMPP_SEG_SS, KVMPP_SEG_DS, KVMPP_SEG_FS, KVMPP_SEG_GS,
};

/* An IN/OUT or INS/OUTS, as the backend decoded it from its exit information. */
struct kvmpp_io_insn {
	u16 port;
	u8 size;		/* 1, 2 or 4 */
	bool in;
	bool string;
	bool rep;
	/*
	 * String forms: the address size (2, 4 or 8) and, for OUTS, the source
	 * segment (enum kvmpp_seg). A backend without decode assists gives the
	 * mode's default address size with @from_mode and a segment of -1; the
	 * core then reads the prefixes (0x67, segment overrides) itself.
	 */
	u8 addr_size;
	bool addr_size_from_mode;
	s8 seg;
	unsigned long next_rip;
};

/* A port I/O exit to userspace, completed by the next KVM_RUN. */
struct kvmpp_pio {
	bool pending;
	struct kvmpp_io_insn insn;
	u32 count;		/* elements in the PIO page */
	unsigned long rip;	/* the instruction; completion only if RIP still points here */
};

struct kvmpp_x86_vcpu {
	/*
	 * GPRs (indexed by __VCPU_REGS_*), RIP and RFLAGS. The backend copies them
	 * into its control structure before each entry and back after each exit;
	 * in between, this copy is the truth.
	 */
	unsigned long regs[KVMPP_NR_GPRS];
	unsigned long rip;
	unsigned long rflags;
	u64 apic_base;		/* stored only: no in-kernel APIC yet */
	u8 cr8;			/* the task priority, without an in-kernel APIC */
	/*
	 * An external interrupt being injected (KVM_SET_SREGS' interrupt_bitmap),
	 * or one whose delivery an exit interrupted: delivered at the next entry
	 * whatever RFLAGS.IF says, as KVM does with an injected interrupt. -1: none.
	 */
	s16 pending_irq;

	struct kvmpp_pio pio;
	/*
	 * The instruction emulator's state (mmio.c): an instruction that waits
	 * for userspace to complete a KVM_EXIT_MMIO stays here between KVM_RUNs.
	 */
	struct kvmpp_emul_ctxt emul;
	struct fpu_guest guest_fpu;	/* fpu.c */
	/* Guest MSRs the core keeps (msr.c); the rest live in the backend. */
	u64 tsc_offset;

	/* KVM_SET_CPUID2's table (kvmpp_cpuid_*), answered for guest CPUID. */
	int cpuid_nent;
	struct kvm_cpuid_entry2 *cpuid_entries;
};

/* regs.c: KVM_{GET,SET}_{REGS,SREGS}. */
long kvmpp_x86_get_regs(struct kvmpp_vcpu *vcpu, void __user *argp);
long kvmpp_x86_set_regs(struct kvmpp_vcpu *vcpu, void __user *argp);
long kvmpp_x86_get_sregs(struct kvmpp_vcpu *vcpu, void __user *argp);
long kvmpp_x86_set_sregs(struct kvmpp_vcpu *vcpu, void __user *argp);
void kvmpp_x86_reset_regs(struct kvmpp_vcpu *vcpu);
unsigned long kvmpp_x86_cr4_supported_bits(void);

/* pio.c: port I/O exits. */
int kvmpp_x86_pio(struct kvmpp_vcpu *vcpu, const struct kvmpp_io_insn *insn);
int kvmpp_x86_complete_userspace_io(struct kvmpp_vcpu *vcpu);

/* guest_access.c: guest memory by linear address (1: a fault went to the guest). */
struct kvmpp_walk_mode;
void kvmpp_x86_walk_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode);
int kvmpp_x86_translate_in(struct kvmpp_vcpu *vcpu, const struct kvmpp_walk_mode *mode,
			   u64 gva, u32 access, u64 *gpa);
int kvmpp_x86_translate(struct kvmpp_vcpu *vcpu, u64 gva, u32 access, u64 *gpa);
int kvmpp_x86_cmpxchg_gpa(struct kvmpp_vm *vm, u64 gpa, const void *old, const void *new,
			  unsigned int len);
long kvmpp_x86_ioctl_translate(struct kvmpp_vcpu *vcpu, void __user *argp);
int kvmpp_x86_read_linear(struct kvmpp_vcpu *vcpu, u64 gva, void *buf, unsigned int len);
int kvmpp_x86_write_linear(struct kvmpp_vcpu *vcpu, u64 gva, const void *buf, unsigned int len);

/* fpu.c */
int kvmpp_x86_fpu_create(struct kvmpp_vcpu *vcpu);
void kvmpp_x86_fpu_free(struct kvmpp_vcpu *vcpu);
void kvmpp_x86_fpu_load(struct kvmpp_vcpu *vcpu);
void kvmpp_x86_fpu_put(struct kvmpp_vcpu *vcpu);
long kvmpp_x86_get_fpu(struct kvmpp_vcpu *vcpu, void __user *argp);
long kvmpp_x86_set_fpu(struct kvmpp_vcpu *vcpu, void __user *argp);

/* msr.c */
bool kvmpp_x86_apic_base_valid(u64 value);
int kvmpp_x86_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data);
int kvmpp_x86_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data, bool host);
int kvmpp_x86_emulate_rdmsr(struct kvmpp_vcpu *vcpu);
int kvmpp_x86_emulate_wrmsr(struct kvmpp_vcpu *vcpu);
long kvmpp_x86_msr_io(struct kvmpp_vcpu *vcpu, void __user *argp, bool write);
long kvmpp_x86_get_msr_index_list(void __user *argp);

/* exit.c: what exit handlers share (1: re-enter, 0: to userspace, -errno). */
int kvmpp_x86_emulation_failure(struct kvmpp_vcpu *vcpu);
int kvmpp_x86_emulation_failure_insn(struct kvmpp_vcpu *vcpu, const u8 *insn, unsigned int len);
int kvmpp_x86_unexpected_exit(struct kvmpp_vcpu *vcpu, u64 reason);
int kvmpp_x86_tdp_fault(struct kvmpp_vcpu *vcpu, u64 gpa, u32 access);

/*
 * mmio.c: emulate the instruction at RIP, whose access at @gpa reached
 * guest-physical memory no memslot backs (@no_slot) or a read-only slot
 * refused a write (1: re-enter, 0: KVM_EXIT_MMIO or
 * KVM_EXIT_INTERNAL_ERROR, -errno), and complete it after userspace did.
 */
int kvmpp_x86_emulate_mmio(struct kvmpp_vcpu *vcpu, u64 gpa, bool fetch, bool no_slot);
int kvmpp_x86_complete_mmio(struct kvmpp_vcpu *vcpu);

/* tpr.c: a guest MOV to CR8 (1: re-enter, 0: KVM_EXIT_SET_TPR). */
int kvmpp_x86_set_cr8(struct kvmpp_vcpu *vcpu, unsigned long value);
int kvmpp_x86_write_cr8(struct kvmpp_vcpu *vcpu);

/* supported_cpuid.c */
long kvmpp_x86_get_supported_cpuid(void __user *argp);

/* cpuid.c */
long kvmpp_x86_set_cpuid2(struct kvmpp_vcpu *vcpu, void __user *argp);
long kvmpp_x86_get_cpuid2(struct kvmpp_vcpu *vcpu, void __user *argp);
void kvmpp_x86_emulate_cpuid(struct kvmpp_vcpu *vcpu);
void kvmpp_x86_free_cpuid(struct kvmpp_vcpu *vcpu);

#endif /* KVMPP_X86_H */
