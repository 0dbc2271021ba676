// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VMCB (AMD APM vol. 2, appendix B): what the guest may do without an exit,
 * the state a vCPU starts in, and segment/control register state in the form
 * KVM_GET/SET_SREGS use.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <asm/debugreg.h>
#include <asm/desc_defs.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <asm/svm.h>
#include <asm/traps.h>

#include "../x86/walker.h"
#include "svm.h"

/*
 * The I/O and MSR permission maps: all bits set, so every port access and every
 * RDMSR/WRMSR exits. One pair serves every vCPU; it is never written again.
 */
#define SVM_IOPM_ORDER 2	/* 12 KiB used */
#define SVM_MSRPM_ORDER 1	/* 8 KiB */
u64 svm_iopm_pa, svm_msrpm_pa;
static struct page *svm_iopm, *svm_msrpm;

int svm_permission_maps_setup(void)
{
	svm_iopm = alloc_pages(GFP_KERNEL, SVM_IOPM_ORDER);
	svm_msrpm = alloc_pages(GFP_KERNEL, SVM_MSRPM_ORDER);
	if (!svm_iopm || !svm_msrpm) {
		svm_permission_maps_unsetup();
		return -ENOMEM;
	}
	memset(page_address(svm_iopm), 0xff, PAGE_SIZE << SVM_IOPM_ORDER);
	memset(page_address(svm_msrpm), 0xff, PAGE_SIZE << SVM_MSRPM_ORDER);
	svm_iopm_pa = page_to_phys(svm_iopm);
	svm_msrpm_pa = page_to_phys(svm_msrpm);
	return 0;
}

void svm_permission_maps_unsetup(void)
{
	if (svm_iopm)
		__free_pages(svm_iopm, SVM_IOPM_ORDER);
	if (svm_msrpm)
		__free_pages(svm_msrpm, SVM_MSRPM_ORDER);
	svm_iopm = svm_msrpm = NULL;
}

static void set_intercept(struct vmcb_control_area *ctl, u32 bit)
{
	ctl->intercepts[bit / 32] |= 1u << (bit % 32);
}

/*
 * What exits: host interrupts, NMIs and SMIs (so the host keeps its CPU), the
 * instructions kvmpp emulates or refuses (no nested SVM), triple faults, and
 * machine checks (a host matter).
 */
static const u32 svm_intercepts[] = {
	INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI,
	INTERCEPT_CR8_WRITE,	/* the TPR belongs to userspace: KVM_EXIT_SET_TPR */
	INTERCEPT_CPUID, INTERCEPT_HLT, INTERCEPT_INVD,
	INTERCEPT_IOIO_PROT, INTERCEPT_MSR_PROT, INTERCEPT_SHUTDOWN,
	INTERCEPT_VMRUN, INTERCEPT_VMMCALL, INTERCEPT_VMLOAD, INTERCEPT_VMSAVE,
	INTERCEPT_STGI, INTERCEPT_CLGI, INTERCEPT_SKINIT, INTERCEPT_INVLPGA,
	INTERCEPT_MONITOR, INTERCEPT_MWAIT, INTERCEPT_XSETBV, INTERCEPT_RDPRU,
	INTERCEPT_EXCEPTION_OFFSET + MC_VECTOR,
};

/* Power-on values the kernel's headers do not name (Intel SDM 3A 9.1.1, table 9-1). */
#define RESET_PAT	0x0007040600070406ull	/* WB, WT, UC-, UC, twice */
#define RESET_DR7	0x400ull		/* bit 10 reads as 1 */
#define SEG_TYPE_BUSY_TSS16 0x3

static void init_seg(struct vmcb_seg *seg, u16 attrib)
{
	seg->selector = 0;
	seg->attrib = attrib;
	seg->limit = 0xffff;
	seg->base = 0;
}

/* The VMCB of a vCPU at power-on (and after a shutdown, as KVM re-INITs then). */
void svm_vmcb_reset(struct kvmpp_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);
	struct vmcb_control_area *ctl = &svm->vmcb->control;
	struct vmcb_save_area *save = &svm->vmcb->save;
	int i;

	memset(svm->vmcb, 0, PAGE_SIZE);
	for (i = 0; i < ARRAY_SIZE(svm_intercepts); i++)
		set_intercept(ctl, svm_intercepts[i]);
	ctl->iopm_base_pa = svm_iopm_pa;
	ctl->msrpm_base_pa = svm_msrpm_pa;
	/* Guest RFLAGS.IF masks only virtual interrupts; host interrupts exit. */
	ctl->int_ctl = V_INTR_MASKING_MASK;
	ctl->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
	ctl->nested_cr3 = kvmpp_tdp_root_pa(vcpu->vm);
	/* The ASID is assigned at entry; a reset VMCB must not inherit one. */
	svm->asid_generation = 0;

	init_seg(&save->cs, SVM_SELECTOR_P_MASK | SVM_SELECTOR_S_MASK |
			    SVM_SELECTOR_CODE_MASK | SVM_SELECTOR_READ_MASK);
	save->cs.selector = 0xf000;
	save->cs.base = 0xffff0000;
	init_seg(&save->ds, SVM_SELECTOR_P_MASK | SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	save->es = save->ss = save->fs = save->gs = save->ds;
	init_seg(&save->ldtr, SVM_SELECTOR_P_MASK | DESC_LDT);
	init_seg(&save->tr, SVM_SELECTOR_P_MASK | SEG_TYPE_BUSY_TSS16);
	save->gdtr.limit = 0xffff;
	save->idtr.limit = 0xffff;

	save->cr0 = X86_CR0_NW | X86_CR0_CD | X86_CR0_ET;
	/* The guest's EFER.SVME: VMRUN requires it, the guest never sees it. */
	save->efer = EFER_SVME;
	save->dr6 = DR6_RESERVED;
	save->dr7 = RESET_DR7;
	save->g_pat = RESET_PAT;
}

static void vmcb_to_kvm_seg(const struct vmcb_seg *s, struct kvm_segment *k)
{
	k->base = s->base;
	k->limit = s->limit;
	k->selector = s->selector;
	k->type = s->attrib & SVM_SELECTOR_TYPE_MASK;
	k->s = !!(s->attrib & SVM_SELECTOR_S_MASK);
	k->dpl = (s->attrib & SVM_SELECTOR_DPL_MASK) >> SVM_SELECTOR_DPL_SHIFT;
	k->present = !!(s->attrib & SVM_SELECTOR_P_MASK);
	k->avl = !!(s->attrib & SVM_SELECTOR_AVL_MASK);
	k->l = !!(s->attrib & SVM_SELECTOR_L_MASK);
	k->db = !!(s->attrib & SVM_SELECTOR_DB_MASK);
	k->g = !!(s->attrib & SVM_SELECTOR_G_MASK);
	k->unusable = !k->present;
}

static void kvm_to_vmcb_seg(const struct kvm_segment *k, struct vmcb_seg *s)
{
	s->base = k->base;
	s->limit = k->limit;
	s->selector = k->selector;
	/* An unusable segment is a not-present one to SVM. */
	if (k->unusable) {
		s->attrib = 0;
		return;
	}
	s->attrib = (k->type & SVM_SELECTOR_TYPE_MASK) |
		    (k->s ? SVM_SELECTOR_S_MASK : 0) |
		    ((k->dpl & 3) << SVM_SELECTOR_DPL_SHIFT) |
		    (k->present ? SVM_SELECTOR_P_MASK : 0) |
		    (k->avl ? SVM_SELECTOR_AVL_MASK : 0) |
		    (k->l ? SVM_SELECTOR_L_MASK : 0) |
		    (k->db ? SVM_SELECTOR_DB_MASK : 0) |
		    (k->g ? SVM_SELECTOR_G_MASK : 0);
}

void svm_get_sregs(struct kvmpp_vcpu *vcpu, struct kvm_sregs *sregs)
{
	const struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	struct kvm_segment *data[] = { &sregs->ds, &sregs->es, &sregs->fs, &sregs->gs };
	const struct vmcb_seg *vdata[] = { &save->ds, &save->es, &save->fs, &save->gs };
	int i;

	vmcb_to_kvm_seg(&save->cs, &sregs->cs);
	vmcb_to_kvm_seg(&save->ss, &sregs->ss);
	vmcb_to_kvm_seg(&save->tr, &sregs->tr);
	vmcb_to_kvm_seg(&save->ldtr, &sregs->ldt);
	for (i = 0; i < ARRAY_SIZE(data); i++) {
		vmcb_to_kvm_seg(vdata[i], data[i]);
		/* SVM does not keep the accessed bit of usable data segments: they are. */
		if (!data[i]->unusable)
			data[i]->type |= 1;
	}
	/* Likewise a loaded TSS is busy. */
	sregs->tr.type |= 2;
	/* SS.DPL is the CPL, which SVM keeps apart. */
	if (sregs->ss.unusable)
		sregs->ss.db = 0;
	sregs->ss.dpl = save->cpl;

	sregs->gdt.base = save->gdtr.base;
	sregs->gdt.limit = save->gdtr.limit;
	sregs->idt.base = save->idtr.base;
	sregs->idt.limit = save->idtr.limit;
	sregs->cr0 = save->cr0;
	sregs->cr2 = save->cr2;
	sregs->cr3 = save->cr3;
	sregs->cr4 = save->cr4;
	sregs->efer = save->efer & ~(u64)EFER_SVME;
}

void svm_set_sregs(struct kvmpp_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	kvm_to_vmcb_seg(&sregs->cs, &save->cs);
	kvm_to_vmcb_seg(&sregs->ds, &save->ds);
	kvm_to_vmcb_seg(&sregs->es, &save->es);
	kvm_to_vmcb_seg(&sregs->fs, &save->fs);
	kvm_to_vmcb_seg(&sregs->gs, &save->gs);
	kvm_to_vmcb_seg(&sregs->ss, &save->ss);
	kvm_to_vmcb_seg(&sregs->tr, &save->tr);
	kvm_to_vmcb_seg(&sregs->ldt, &save->ldtr);
	save->cpl = sregs->ss.dpl & 3;

	save->gdtr.base = sregs->gdt.base;
	save->gdtr.limit = sregs->gdt.limit;
	save->idtr.base = sregs->idt.base;
	save->idtr.limit = sregs->idt.limit;
	save->cr0 = sregs->cr0;
	save->cr2 = sregs->cr2;
	save->cr3 = sregs->cr3;
	save->cr4 = sregs->cr4;
	/* With paging and LME, the CPU would have set LMA itself. */
	save->efer = sregs->efer | EFER_SVME;
}

int svm_get_cpl(struct kvmpp_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.cpl;
}

bool svm_is_long_mode(struct kvmpp_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.efer & EFER_LMA;
}

/* The default address size of the code segment: 8 in 64-bit mode, else by CS.D. */
int svm_default_addr_size(struct kvmpp_vcpu *vcpu)
{
	const struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	if ((save->efer & EFER_LMA) && (save->cs.attrib & SVM_SELECTOR_L_MASK))
		return 8;
	return save->cs.attrib & SVM_SELECTOR_DB_MASK ? 4 : 2;
}

bool svm_is_paging(struct kvmpp_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.cr0 & X86_CR0_PG;
}

/* The VMCB field holding an MSR, or NULL (EFER is special: SVME is hidden). */
static u64 *msr_field(struct vmcb_save_area *save, u32 index)
{
	switch (index) {
	case MSR_STAR: return &save->star;
	case MSR_LSTAR: return &save->lstar;
	case MSR_CSTAR: return &save->cstar;
	case MSR_SYSCALL_MASK: return &save->sfmask;
	case MSR_KERNEL_GS_BASE: return &save->kernel_gs_base;
	case MSR_IA32_SYSENTER_CS: return &save->sysenter_cs;
	case MSR_IA32_SYSENTER_ESP: return &save->sysenter_esp;
	case MSR_IA32_SYSENTER_EIP: return &save->sysenter_eip;
	case MSR_IA32_CR_PAT: return &save->g_pat;
	default: return NULL;
	}
}

int svm_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	u64 *field = msr_field(save, index);

	if (index == MSR_EFER) {
		*data = save->efer & ~(u64)EFER_SVME;
		return 0;
	}
	if (!field)
		return 1;
	*data = *field;
	return 0;
}

int svm_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data)
{
	struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	u64 *field = msr_field(save, index);

	if (index == MSR_EFER) {
		save->efer = data | EFER_SVME;
		return 0;
	}
	if (!field)
		return 1;
	*field = data;
	return 0;
}

void svm_get_paging_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode)
{
	const struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	mode->cr0 = save->cr0;
	mode->cr3 = save->cr3;
	mode->cr4 = save->cr4;
	mode->efer = save->efer;
	mode->cpl = save->cpl;
}

u64 svm_get_segment_base(struct kvmpp_vcpu *vcpu, int seg)
{
	const struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;
	const struct vmcb_seg *segs[] = {
		[KVMPP_SEG_ES] = &save->es, [KVMPP_SEG_CS] = &save->cs,
		[KVMPP_SEG_SS] = &save->ss, [KVMPP_SEG_DS] = &save->ds,
		[KVMPP_SEG_FS] = &save->fs, [KVMPP_SEG_GS] = &save->gs,
	};

	return seg < ARRAY_SIZE(segs) ? segs[seg]->base : 0;
}

void svm_get_code_segments(struct kvmpp_vcpu *vcpu, u64 bases[6], bool *cs_l, bool *cs_db)
{
	const struct vmcb_save_area *save = &to_svm(vcpu)->vmcb->save;

	bases[KVMPP_SEG_ES] = save->es.base;
	bases[KVMPP_SEG_CS] = save->cs.base;
	bases[KVMPP_SEG_SS] = save->ss.base;
	bases[KVMPP_SEG_DS] = save->ds.base;
	bases[KVMPP_SEG_FS] = save->fs.base;
	bases[KVMPP_SEG_GS] = save->gs.base;
	*cs_l = save->cs.attrib & SVM_SELECTOR_L_MASK;
	*cs_db = save->cs.attrib & SVM_SELECTOR_DB_MASK;
}

void svm_inject_page_fault(struct kvmpp_vcpu *vcpu, u64 address, u32 error)
{
	to_svm(vcpu)->vmcb->save.cr2 = address;
	svm_inject_exception(vcpu, X86_TRAP_PF, true, error);
}

/* Deliver an exception at the next entry (an event already pending wins). */
void svm_inject_exception(struct kvmpp_vcpu *vcpu, int vector, bool has_error, u32 error)
{
	struct vmcb_control_area *ctl = &to_svm(vcpu)->vmcb->control;

	if (ctl->event_inj & SVM_EVTINJ_VALID)
		return;
	ctl->event_inj = vector | SVM_EVTINJ_TYPE_EXEPT | SVM_EVTINJ_VALID |
			 (has_error ? SVM_EVTINJ_VALID_ERR : 0);
	ctl->event_inj_err = error;
}
