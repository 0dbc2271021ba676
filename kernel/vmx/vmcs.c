// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VMCS (Intel SDM vol. 3C, chapter 25): its controls, the host state the
 * CPU returns to, the state a vCPU starts in, and guest state in the form the
 * core's operations (KVM_GET/SET_SREGS, MSRs, the page walker) use.
 *
 * Every access to VMCS fields goes through vmx_vcpu_load(), which leaves the
 * VMCS current on this CPU with interrupts off until local_irq_restore().
 *
 * CR0 and CR4. With unrestricted guest the guest runs in real mode and
 * without paging on the real CR0.PE/PG, but the real CR0 and CR4 must still
 * satisfy the VMX fixed-bit MSRs (CR0.NE and CR4.VMXE set), and kvmpp keeps
 * the real CR0.CD/NW clear whatever the guest says (the guest's memory types
 * come from EPT and its PAT, as in KVM). Those bits are "host-owned" in the
 * guest/host masks: the guest reads them from the read shadows (its own
 * values), and a MOV to CR0/CR4 that would change one exits (exits.c). For
 * CR0 the write is then emulated; for CR4 the host-owned bits are exactly
 * the ones the guest may not set (VMXE, SMXE, features kvmpp does not offer),
 * so such a write gets #GP. Every other bit is the guest's own, unintercepted.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <asm/cpu_entry_area.h>
#include <asm/cpufeature.h>
#include <asm/debugreg.h>
#include <asm/desc.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/pgtable_types.h>
#include <asm/processor-flags.h>
#include <asm/segment.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>
#include <asm/traps.h>
#include <asm/vmx.h>

#include "../x86/walker.h"
#include "vmcs.h"
#include "vmx.h"

/* Power-on values the kernel's headers do not name (Intel SDM 3A 9.1.1, table 9-1). */
#define RESET_CR0	(X86_CR0_NW | X86_CR0_CD | X86_CR0_ET)
#define RESET_PAT	0x0007040600070406ull	/* WB, WT, UC-, UC, twice */
#define RESET_DR7	0x400ull		/* bit 10 reads as 1 */

/*
 * Access rights of segments at RESET (SDM 25.4.1 format): present; code
 * execute/read and data read/write (type bit 1), both accessed.
 */
#define SEG_TYPE_CODE_RX_ACCESSED	0xb
#define SEG_TYPE_DATA_RW_ACCESSED	0x3
#define AR_RESET_CODE	(VMX_AR_P_MASK | VMX_AR_S_MASK | SEG_TYPE_CODE_RX_ACCESSED)
#define AR_RESET_DATA	(VMX_AR_P_MASK | VMX_AR_S_MASK | SEG_TYPE_DATA_RW_ACCESSED)
#define AR_RESET_LDT	(VMX_AR_P_MASK | VMX_AR_TYPE_LDT)
#define AR_RESET_TR	(VMX_AR_P_MASK | VMX_AR_TYPE_BUSY_32_TSS)
#define AR_AVL_SHIFT	12

/* PDPTE bits that must be 0 in a present entry, besides those above MAXPHYADDR (SDM 4.4.1). */
#define PDPTE_RESERVED	0x1e6ull

/* The all-ones MSR bitmap every VMCS points to: each RDMSR and WRMSR exits. */
static struct page *vmx_msr_bitmap;

/* CR0 and CR4 bits the host owns (see the top of the file); set at module load. */
static unsigned long vmx_cr0_host_bits, vmx_cr4_host_bits;

int vmx_vmcs_setup(void)
{
	vmx_msr_bitmap = alloc_page(GFP_KERNEL);
	if (!vmx_msr_bitmap)
		return -ENOMEM;
	memset(page_address(vmx_msr_bitmap), 0xff, PAGE_SIZE);

	/* PE and PG may be 0 under unrestricted guest whatever CR0_FIXED0 says. */
	vmx_cr0_host_bits = X86_CR0_CD | X86_CR0_NW |
			    (vmx_config.cr0_fixed0 & ~(unsigned long)(X86_CR0_PE | X86_CR0_PG)) |
			    ~(unsigned long)vmx_config.cr0_fixed1;
	vmx_cr4_host_bits = ~(kvmpp_x86_cr4_supported_bits() & vmx_config.cr4_fixed1 &
			      ~vmx_config.cr4_fixed0);
	return 0;
}

void vmx_vmcs_unsetup(void)
{
	if (vmx_msr_bitmap)
		__free_page(vmx_msr_bitmap);
	vmx_msr_bitmap = NULL;
}

void vmx_vmwrite_failed(unsigned long field, unsigned long value)
{
	pr_err_ratelimited(KVMPP_VMX_LOG_PREFIX "VMWRITE %#lx = %#lx failed: error %lu\n",
			   field, value, vmcs_read(VM_INSTRUCTION_ERROR));
}

/* The real CR0/CR4 for what the guest wants to see. */
static unsigned long vmx_real_cr0(unsigned long cr0)
{
	unsigned long forced = vmx_config.cr0_fixed0 & ~(unsigned long)(X86_CR0_PE | X86_CR0_PG);

	return (cr0 & ~vmx_cr0_host_bits) | forced;
}

static unsigned long vmx_real_cr4(unsigned long cr4)
{
	return (cr4 & ~vmx_cr4_host_bits) | vmx_config.cr4_fixed0;
}

/* What the guest sees: host-owned bits from the shadow, the rest real. */
static unsigned long vmx_read_cr0(void)
{
	return (vmcs_read(CR0_READ_SHADOW) & vmx_cr0_host_bits) |
	       (vmcs_read(GUEST_CR0) & ~vmx_cr0_host_bits);
}

static unsigned long vmx_read_cr4(void)
{
	return (vmcs_read(CR4_READ_SHADOW) & vmx_cr4_host_bits) |
	       (vmcs_read(GUEST_CR4) & ~vmx_cr4_host_bits);
}

static void vmx_write_cr0(unsigned long cr0)
{
	vmcs_write(CR0_READ_SHADOW, cr0);
	vmcs_write(GUEST_CR0, vmx_real_cr0(cr0));
}

static void vmx_write_cr4(unsigned long cr4)
{
	vmcs_write(CR4_READ_SHADOW, cr4);
	vmcs_write(GUEST_CR4, vmx_real_cr4(cr4));
}

/* EFER, and the "IA-32e mode guest" entry control that must match its LMA. */
static void vmx_write_efer(u64 efer)
{
	vmcs_write(GUEST_IA32_EFER, efer);
	if (efer & EFER_LMA)
		vmcs_set_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
	else
		vmcs_clear_bits(VM_ENTRY_CONTROLS, VM_ENTRY_IA32E_MODE);
}

static void vmx_write_pdptrs(const u64 pdptrs[4])
{
	vmcs_write(GUEST_PDPTR0, pdptrs[0]);
	vmcs_write(GUEST_PDPTR1, pdptrs[1]);
	vmcs_write(GUEST_PDPTR2, pdptrs[2]);
	vmcs_write(GUEST_PDPTR3, pdptrs[3]);
}

/*
 * The four PDPTEs PAE paging loads from the table at @cr3 (SDM 4.4.1); with
 * EPT, VM entry takes them from the VMCS instead of guest memory, so whoever
 * changes paging state behind the CPU's back reloads them. 0, or 1 when the
 * table is not in guest memory or an entry has reserved bits set (the CPU
 * raises #GP then). May sleep.
 */
static int vmx_read_pdptrs(struct kvmpp_vcpu *vcpu, u64 cr3, u64 pdptrs[4])
{
	u64 reserved = PDPTE_RESERVED | ~((1ull << boot_cpu_data.x86_phys_bits) - 1);
	int i;

	if (kvmpp_read_guest(vcpu->vm, cr3 & 0xffffffe0, pdptrs, 4 * sizeof(u64))) {
		memset(pdptrs, 0, 4 * sizeof(u64));
		return 1;
	}
	for (i = 0; i < 4; i++)
		if ((pdptrs[i] & _PAGE_PRESENT) && (pdptrs[i] & reserved))
			return 1;
	return 0;
}

static bool is_pae_paging(u64 cr0, u64 cr4, u64 efer)
{
	return (cr0 & X86_CR0_PG) && (cr4 & X86_CR4_PAE) && !(efer & EFER_LMA);
}

/* The segment registers in their x86 encoding (enum kvmpp_seg), then LDTR and TR. */
enum { SEG_LDTR = KVMPP_SEG_GS + 1, SEG_TR, NR_SEGS };

static const struct {
	u16 selector, base, limit, ar;
} vmx_seg_fields[NR_SEGS] = {
	[KVMPP_SEG_ES] = { GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES },
	[KVMPP_SEG_CS] = { GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES },
	[KVMPP_SEG_SS] = { GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES },
	[KVMPP_SEG_DS] = { GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES },
	[KVMPP_SEG_FS] = { GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES },
	[KVMPP_SEG_GS] = { GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES },
	[SEG_LDTR] = { GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES },
	[SEG_TR] = { GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES },
};

static void vmx_write_seg(int seg, u16 selector, u64 base, u32 limit, u32 ar)
{
	vmcs_write(vmx_seg_fields[seg].selector, selector);
	vmcs_write(vmx_seg_fields[seg].base, base);
	vmcs_write(vmx_seg_fields[seg].limit, limit);
	vmcs_write(vmx_seg_fields[seg].ar, ar);
}

static void vmx_get_seg(int seg, struct kvm_segment *k)
{
	u32 ar = vmcs_read(vmx_seg_fields[seg].ar);

	k->selector = vmcs_read(vmx_seg_fields[seg].selector);
	k->base = vmcs_read(vmx_seg_fields[seg].base);
	k->limit = vmcs_read(vmx_seg_fields[seg].limit);
	k->type = ar & VMX_AR_TYPE_MASK;
	k->s = !!(ar & VMX_AR_S_MASK);
	k->dpl = VMX_AR_DPL(ar);
	k->avl = (ar >> AR_AVL_SHIFT) & 1;
	k->l = !!(ar & VMX_AR_L_MASK);
	k->db = !!(ar & VMX_AR_DB_MASK);
	k->g = !!(ar & VMX_AR_G_MASK);
	k->unusable = !!(ar & VMX_AR_UNUSABLE_MASK);
	/* A usable segment is present to VMX; KVM reports "present" that way. */
	k->present = !k->unusable;
	k->padding = 0;
}

static void vmx_set_seg(int seg, const struct kvm_segment *k)
{
	u32 ar;

	if (k->unusable || !k->present) {
		ar = VMX_AR_UNUSABLE_MASK;
	} else {
		ar = (k->type & VMX_AR_TYPE_MASK) | (k->s ? VMX_AR_S_MASK : 0) |
		     (k->dpl & 3) << VMX_AR_DPL_SHIFT | VMX_AR_P_MASK |
		     (k->avl & 1) << AR_AVL_SHIFT | (k->l ? VMX_AR_L_MASK : 0) |
		     (k->db ? VMX_AR_DB_MASK : 0) | (k->g ? VMX_AR_G_MASK : 0);
		/*
		 * A usable segment register has been loaded, which set the
		 * descriptor's accessed bit; VM entry insists on it (SDM
		 * 26.3.1.2), as a CPU at RESET has it. The LDT has no such bit.
		 */
		if (seg != SEG_LDTR)
			ar |= VMX_AR_TYPE_ACCESSES_MASK;
	}
	vmx_write_seg(seg, k->selector, k->base, k->limit, ar);
}

/*
 * Host state that depends on the CPU: called by vmx_vcpu_load() each time the
 * VMCS becomes current on a CPU, interrupts off. The fields that change per
 * task or per entry (CR3, CR4, FS, GS selectors, RSP) are brought up to date
 * before each entry (run.c).
 */
void vmx_set_host_cpu_state(struct vmx_vcpu *vmx)
{
	int cpu = smp_processor_id();
	struct desc_ptr dt;
	u64 msr;

	vmcs_write(HOST_CR0, read_cr0());
	vmx->host_cr3 = __read_cr3();
	vmcs_write(HOST_CR3, vmx->host_cr3);
	vmx->host_cr4 = cr4_read_shadow();
	vmcs_write(HOST_CR4, vmx->host_cr4);

	/*
	 * The kernel's own selectors. DS and ES come back null (the kernel does
	 * not use them in 64-bit mode); run.c reloads the user's if not null,
	 * and FS, GS and the LDT likewise.
	 */
	vmcs_write(HOST_CS_SELECTOR, __KERNEL_CS);
	vmcs_write(HOST_SS_SELECTOR, __KERNEL_DS);
	vmcs_write(HOST_DS_SELECTOR, 0);
	vmcs_write(HOST_ES_SELECTOR, 0);
	vmcs_write(HOST_FS_SELECTOR, 0);
	vmcs_write(HOST_GS_SELECTOR, 0);
	vmx->host_fs_sel = vmx->host_gs_sel = 0;
	vmcs_write(HOST_TR_SELECTOR, GDT_ENTRY_TSS * 8);

	vmcs_write(HOST_FS_BASE, 0);
	vmx->host_fs_base = 0;
	rdmsrl(MSR_GS_BASE, msr);		/* this CPU's per-CPU area */
	vmcs_write(HOST_GS_BASE, msr);
	vmcs_write(HOST_TR_BASE, (unsigned long)&get_cpu_entry_area(cpu)->tss.x86_tss);
	native_store_gdt(&dt);
	vmcs_write(HOST_GDTR_BASE, dt.address);
	store_idt(&dt);
	vmcs_write(HOST_IDTR_BASE, dt.address);

	rdmsrl(MSR_IA32_SYSENTER_CS, msr);
	vmcs_write(HOST_IA32_SYSENTER_CS, msr);
	rdmsrl(MSR_IA32_SYSENTER_ESP, msr);	/* the per-CPU entry stack */
	vmcs_write(HOST_IA32_SYSENTER_ESP, msr);
	rdmsrl(MSR_IA32_SYSENTER_EIP, msr);
	vmcs_write(HOST_IA32_SYSENTER_EIP, msr);
	rdmsrl(MSR_EFER, msr);
	vmcs_write(HOST_IA32_EFER, msr);
	rdmsrl(MSR_IA32_CR_PAT, msr);
	vmcs_write(HOST_IA32_PAT, msr);
	vmcs_write(HOST_RIP, (unsigned long)kvmpp_vmx_vmexit);
}

/* The architectural state after RESET (and INIT), as KVM gives it on VMX. */
static void vmx_reset_guest_state(struct vmx_vcpu *vmx)
{
	static const u64 no_pdptrs[4];
	int seg;

	for (seg = KVMPP_SEG_ES; seg <= KVMPP_SEG_GS; seg++)
		vmx_write_seg(seg, 0, 0, 0xffff, AR_RESET_DATA);
	vmx_write_seg(KVMPP_SEG_CS, 0xf000, 0xffff0000, 0xffff, AR_RESET_CODE);
	vmx_write_seg(SEG_LDTR, 0, 0, 0xffff, AR_RESET_LDT);
	vmx_write_seg(SEG_TR, 0, 0, 0xffff, AR_RESET_TR);
	vmcs_write(GUEST_GDTR_BASE, 0);
	vmcs_write(GUEST_GDTR_LIMIT, 0xffff);
	vmcs_write(GUEST_IDTR_BASE, 0);
	vmcs_write(GUEST_IDTR_LIMIT, 0xffff);

	vmx_write_cr0(RESET_CR0);
	vmcs_write(GUEST_CR3, 0);
	vmx_write_cr4(0);
	vmx_write_efer(0);
	vmx_write_pdptrs(no_pdptrs);
	vmcs_write(GUEST_DR7, RESET_DR7);
	vmcs_write(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write(GUEST_IA32_PAT, RESET_PAT);
	vmcs_write(GUEST_SYSENTER_CS, 0);
	vmcs_write(GUEST_SYSENTER_ESP, 0);
	vmcs_write(GUEST_SYSENTER_EIP, 0);

	vmcs_write(GUEST_ACTIVITY_STATE, GUEST_ACTIVITY_ACTIVE);
	vmcs_write(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write(VM_ENTRY_INTR_INFO_FIELD, 0);

	vmx->cr2 = 0;
	vmx->dr6 = DR6_RESERVED;
	vmx->star = vmx->lstar = vmx->cstar = vmx->sfmask = vmx->kernel_gs_base = 0;
	vmx->inject_info = 0;
	vmx->flush_guest = true;
}

void vmx_vcpu_reset(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long flags;

	if (vmx_vcpu_load(vmx, &flags))
		return;
	vmx_reset_guest_state(vmx);
	local_irq_restore(flags);
}

/* A new vCPU's VMCS: initialized, controls set, guest state at RESET. */
int vmx_vmcs_init(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long flags;
	int r;

	vmx->eptp = kvmpp_tdp_root_pa(vcpu->vm) | VMX_EPTP_MT_WB | VMX_EPTP_PWL_4;
	/*
	 * Accessed/dirty flags where the CPU has them: the CPU then records
	 * which tables and pages the guest used (leaves start with both set).
	 */
	if (vmx_config.ept_ad)
		vmx->eptp |= VMX_EPTP_AD_ENABLE_BIT;

	/* VMCLEAR initializes a fresh region (launch state "clear", SDM 25.11.3). */
	local_irq_save(flags);
	r = vmx_vmclear(vmx->vmcs_pa);
	local_irq_restore(flags);
	if (r)
		return r;
	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;

	vmcs_write(PIN_BASED_VM_EXEC_CONTROL, vmx_config.pin);
	vmcs_write(CPU_BASED_VM_EXEC_CONTROL, vmx_config.proc);
	/* VPID 0 is the host's: with none left, the vCPU runs untagged. */
	vmcs_write(SECONDARY_VM_EXEC_CONTROL, vmx->vpid ? vmx_config.proc2 :
		   vmx_config.proc2 & ~SECONDARY_EXEC_ENABLE_VPID);
	vmcs_write(VM_EXIT_CONTROLS, vmx_config.exit);
	vmcs_write(VM_ENTRY_CONTROLS, vmx_config.entry);
	/* Machine checks belong to the host: the only exception that exits. */
	vmcs_write(EXCEPTION_BITMAP, 1u << X86_TRAP_MC);
	vmcs_write(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmcs_write(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write(CR3_TARGET_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write(VM_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write(VM_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write(MSR_BITMAP, page_to_phys(vmx_msr_bitmap));
	/* No shadow VMCS: the link pointer must be all ones (SDM 26.3.1.5). */
	vmcs_write(VMCS_LINK_POINTER, -1ull);
	if (vmx->vpid)
		vmcs_write(VIRTUAL_PROCESSOR_ID, vmx->vpid);
	vmcs_write(EPT_POINTER, vmx->eptp);
	vmcs_write(CR0_GUEST_HOST_MASK, vmx_cr0_host_bits);
	vmcs_write(CR4_GUEST_HOST_MASK, vmx_cr4_host_bits);

	vmx_reset_guest_state(vmx);
	local_irq_restore(flags);
	return 0;
}

void vmx_get_sregs(struct kvmpp_vcpu *vcpu, struct kvm_sregs *sregs)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	unsigned long flags;

	if (vmx_vcpu_load(vmx, &flags))
		return;
	vmx_get_seg(KVMPP_SEG_CS, &sregs->cs);
	vmx_get_seg(KVMPP_SEG_DS, &sregs->ds);
	vmx_get_seg(KVMPP_SEG_ES, &sregs->es);
	vmx_get_seg(KVMPP_SEG_FS, &sregs->fs);
	vmx_get_seg(KVMPP_SEG_GS, &sregs->gs);
	vmx_get_seg(KVMPP_SEG_SS, &sregs->ss);
	vmx_get_seg(SEG_TR, &sregs->tr);
	vmx_get_seg(SEG_LDTR, &sregs->ldt);
	sregs->gdt.base = vmcs_read(GUEST_GDTR_BASE);
	sregs->gdt.limit = vmcs_read(GUEST_GDTR_LIMIT);
	sregs->idt.base = vmcs_read(GUEST_IDTR_BASE);
	sregs->idt.limit = vmcs_read(GUEST_IDTR_LIMIT);
	sregs->cr0 = vmx_read_cr0();
	sregs->cr3 = vmcs_read(GUEST_CR3);
	sregs->cr4 = vmx_read_cr4();
	sregs->efer = vmcs_read(GUEST_IA32_EFER);
	local_irq_restore(flags);
	sregs->cr2 = vmx->cr2;
}

void vmx_set_sregs(struct kvmpp_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	bool pae = is_pae_paging(sregs->cr0, sregs->cr4, sregs->efer);
	unsigned long flags;
	u64 pdptrs[4];

	/*
	 * As in KVM, a PDPT that cannot be loaded is not an error here: the
	 * PDPTE registers keep their old values.
	 */
	if (pae && vmx_read_pdptrs(vcpu, sregs->cr3, pdptrs))
		pae = false;

	if (vmx_vcpu_load(vmx, &flags))
		return;
	vmx_set_seg(KVMPP_SEG_CS, &sregs->cs);
	vmx_set_seg(KVMPP_SEG_DS, &sregs->ds);
	vmx_set_seg(KVMPP_SEG_ES, &sregs->es);
	vmx_set_seg(KVMPP_SEG_FS, &sregs->fs);
	vmx_set_seg(KVMPP_SEG_GS, &sregs->gs);
	vmx_set_seg(KVMPP_SEG_SS, &sregs->ss);
	vmx_set_seg(SEG_TR, &sregs->tr);
	vmx_set_seg(SEG_LDTR, &sregs->ldt);
	vmcs_write(GUEST_GDTR_BASE, sregs->gdt.base);
	vmcs_write(GUEST_GDTR_LIMIT, sregs->gdt.limit);
	vmcs_write(GUEST_IDTR_BASE, sregs->idt.base);
	vmcs_write(GUEST_IDTR_LIMIT, sregs->idt.limit);
	vmx_write_cr0(sregs->cr0);
	vmcs_write(GUEST_CR3, sregs->cr3);
	vmx_write_cr4(sregs->cr4);
	/* The core checked LMA against LME and CR0.PG. */
	vmx_write_efer(sregs->efer);
	if (pae)
		vmx_write_pdptrs(pdptrs);
	local_irq_restore(flags);

	vmx->cr2 = sregs->cr2;
	/* The guest's translations were made under other control registers. */
	vmx->flush_guest = true;
}

/* SS.DPL is the CPL under VMX (SDM 25.4.1); 0 in real mode, as VM entry requires. */
int vmx_get_cpl(struct kvmpp_vcpu *vcpu)
{
	unsigned long flags;
	u32 ar;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return 0;
	ar = vmcs_read(GUEST_SS_AR_BYTES);
	local_irq_restore(flags);
	return VMX_AR_DPL(ar);
}

u64 vmx_read_field(struct kvmpp_vcpu *vcpu, unsigned long field)
{
	unsigned long flags;
	u64 value;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return 0;
	value = vmcs_read(field);
	local_irq_restore(flags);
	return value;
}

bool vmx_is_long_mode(struct kvmpp_vcpu *vcpu)
{
	return vmx_read_field(vcpu, GUEST_IA32_EFER) & EFER_LMA;
}

/* CR0.PG is the guest's own bit: the real CR0 has it. */
bool vmx_is_paging(struct kvmpp_vcpu *vcpu)
{
	return vmx_read_field(vcpu, GUEST_CR0) & X86_CR0_PG;
}

u64 vmx_guest_cr3(struct kvmpp_vcpu *vcpu)
{
	return vmx_read_field(vcpu, GUEST_CR3);
}

/* CR0 as the guest sees it. */
u64 vmx_guest_cr0(struct kvmpp_vcpu *vcpu)
{
	unsigned long flags;
	u64 cr0;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return 0;
	cr0 = vmx_read_cr0();
	local_irq_restore(flags);
	return cr0;
}

/* The default address size of the code segment: 8 in 64-bit mode, else by CS.D. */
int vmx_default_addr_size(struct kvmpp_vcpu *vcpu)
{
	unsigned long flags;
	u64 efer;
	u32 ar;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return 2;
	efer = vmcs_read(GUEST_IA32_EFER);
	ar = vmcs_read(GUEST_CS_AR_BYTES);
	local_irq_restore(flags);
	if ((efer & EFER_LMA) && (ar & VMX_AR_L_MASK))
		return 8;
	return ar & VMX_AR_DB_MASK ? 4 : 2;
}

void vmx_get_paging_mode(struct kvmpp_vcpu *vcpu, struct kvmpp_walk_mode *mode)
{
	unsigned long flags;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return;
	mode->cr0 = vmx_read_cr0();
	mode->cr3 = vmcs_read(GUEST_CR3);
	mode->cr4 = vmx_read_cr4();
	mode->efer = vmcs_read(GUEST_IA32_EFER);
	mode->cpl = VMX_AR_DPL(vmcs_read(GUEST_SS_AR_BYTES));
	/* Under EPT the PDPTE registers are in the VMCS, as the CPU last loaded them. */
	if (is_pae_paging(mode->cr0, mode->cr4, mode->efer)) {
		mode->pdptrs[0] = vmcs_read(GUEST_PDPTR0);
		mode->pdptrs[1] = vmcs_read(GUEST_PDPTR1);
		mode->pdptrs[2] = vmcs_read(GUEST_PDPTR2);
		mode->pdptrs[3] = vmcs_read(GUEST_PDPTR3);
		mode->pdptrs_valid = true;
	}
	local_irq_restore(flags);
}

u64 vmx_get_segment_base(struct kvmpp_vcpu *vcpu, int seg)
{
	if (seg < KVMPP_SEG_ES || seg > KVMPP_SEG_GS)
		return 0;
	return vmx_read_field(vcpu, vmx_seg_fields[seg].base);
}

void vmx_get_code_segments(struct kvmpp_vcpu *vcpu, u64 bases[6], bool *cs_l, bool *cs_db)
{
	unsigned long flags;
	u32 ar;
	int seg;

	if (vmx_vcpu_load(to_vmx(vcpu), &flags))
		return;
	for (seg = KVMPP_SEG_ES; seg <= KVMPP_SEG_GS; seg++)
		bases[seg] = vmcs_read(vmx_seg_fields[seg].base);
	ar = vmcs_read(vmx_seg_fields[KVMPP_SEG_CS].ar);
	local_irq_restore(flags);
	*cs_l = ar & VMX_AR_L_MASK;
	*cs_db = ar & VMX_AR_DB_MASK;
}

/* The VMCS field of an MSR the CPU switches itself, or 0. */
static unsigned long vmx_msr_field(u32 index)
{
	switch (index) {
	case MSR_IA32_SYSENTER_CS: return GUEST_SYSENTER_CS;
	case MSR_IA32_SYSENTER_ESP: return GUEST_SYSENTER_ESP;
	case MSR_IA32_SYSENTER_EIP: return GUEST_SYSENTER_EIP;
	case MSR_IA32_CR_PAT: return GUEST_IA32_PAT;
	default: return 0;
	}
}

/* The MSRs run.c loads around each entry, kept here in between. */
static u64 *vmx_msr_software(struct vmx_vcpu *vmx, u32 index)
{
	switch (index) {
	case MSR_STAR: return &vmx->star;
	case MSR_LSTAR: return &vmx->lstar;
	case MSR_CSTAR: return &vmx->cstar;
	case MSR_SYSCALL_MASK: return &vmx->sfmask;
	case MSR_KERNEL_GS_BASE: return &vmx->kernel_gs_base;
	default: return NULL;
	}
}

int vmx_get_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 *data)
{
	u64 *soft = vmx_msr_software(to_vmx(vcpu), index);
	unsigned long field = vmx_msr_field(index);

	if (soft) {
		*data = *soft;
		return 0;
	}
	if (index == MSR_EFER)
		field = GUEST_IA32_EFER;
	if (!field)
		return 1;
	*data = vmx_read_field(vcpu, field);
	return 0;
}

int vmx_set_msr(struct kvmpp_vcpu *vcpu, u32 index, u64 data)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u64 *soft = vmx_msr_software(vmx, index);
	unsigned long field = vmx_msr_field(index);
	unsigned long flags;

	if (soft) {
		*soft = data;
		return 0;
	}
	if (!field && index != MSR_EFER)
		return 1;
	if (vmx_vcpu_load(vmx, &flags))
		return 1;
	if (index == MSR_EFER)
		vmx_write_efer(data);
	else
		vmcs_write(field, data);
	local_irq_restore(flags);
	return 0;
}

/*
 * A guest MOV to CR0 (or LMSW) that changes a host-owned bit: done here as
 * the CPU would have done it (SDM vol. 2, MOV to CR0; vol. 3A 9.8.5 for
 * entering and leaving IA-32e mode). Returns 0, 1 when the write raises #GP
 * (the caller injects it), or -errno.
 */
int vmx_guest_set_cr0(struct kvmpp_vcpu *vcpu, u64 cr0)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u64 old, cr4, efer, pdptrs[4];
	unsigned long flags;
	bool pae = false;
	u32 cs_ar;
	int r;

	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;
	old = vmx_read_cr0();
	cr4 = vmx_read_cr4();
	efer = vmcs_read(GUEST_IA32_EFER);
	cs_ar = vmcs_read(GUEST_CS_AR_BYTES);
	local_irq_restore(flags);

	/* Outside 64-bit mode only the low half of the register is written. */
	if (!(efer & EFER_LMA) || !(cs_ar & VMX_AR_L_MASK))
		cr0 = (u32)cr0;
	/* ET is fixed to 1. */
	cr0 |= X86_CR0_ET;
	if (cr0 >> 32)
		return 1;
	if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD))
		return 1;
	if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE))
		return 1;

	if (!(old & X86_CR0_PG) && (cr0 & X86_CR0_PG)) {
		if (efer & EFER_LME) {
			/* Paging on with LME: IA-32e mode, which needs PAE. */
			if (!(cr4 & X86_CR4_PAE))
				return 1;
			efer |= EFER_LMA;
		} else if (cr4 & X86_CR4_PAE) {
			if (vmx_read_pdptrs(vcpu, vmx_guest_cr3(vcpu), pdptrs))
				return 1;
			pae = true;
		}
	} else if ((old & X86_CR0_PG) && !(cr0 & X86_CR0_PG)) {
		/* Not from 64-bit code, nor with PCIDs on; leaving IA-32e mode otherwise. */
		if ((efer & EFER_LMA) && (cs_ar & VMX_AR_L_MASK))
			return 1;
		if (cr4 & X86_CR4_PCIDE)
			return 1;
		efer &= ~(u64)EFER_LMA;
	}

	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;
	vmx_write_cr0(cr0);
	vmx_write_efer(efer);
	if (pae)
		vmx_write_pdptrs(pdptrs);
	local_irq_restore(flags);
	/* Changing PG, PE or WP flushes the TLB on a CPU too. */
	if ((old ^ cr0) & (X86_CR0_PG | X86_CR0_PE | X86_CR0_WP))
		vmx->flush_guest = true;
	return 0;
}

/* A guest MOV to CR3, on CPUs that insist on CR3-load exiting. Same returns. */
int vmx_guest_set_cr3(struct kvmpp_vcpu *vcpu, u64 cr3)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);
	u64 cr0, cr4, efer, pdptrs[4];
	bool keep_tlb = false;
	unsigned long flags;
	int r;

	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;
	cr0 = vmx_read_cr0();
	cr4 = vmx_read_cr4();
	efer = vmcs_read(GUEST_IA32_EFER);
	local_irq_restore(flags);

	/* Bit 63 with PCIDs: keep the PCID's translations; it is not stored. */
	if (cr4 & X86_CR4_PCIDE) {
		keep_tlb = cr3 & BIT_ULL(63);
		cr3 &= ~BIT_ULL(63);
	}
	if (!(efer & EFER_LMA))
		cr3 = (u32)cr3;
	else if (cr3 >> boot_cpu_data.x86_phys_bits)
		return 1;
	if (is_pae_paging(cr0, cr4, efer) && vmx_read_pdptrs(vcpu, cr3, pdptrs))
		return 1;

	r = vmx_vcpu_load(vmx, &flags);
	if (r)
		return r;
	vmcs_write(GUEST_CR3, cr3);
	if (is_pae_paging(cr0, cr4, efer))
		vmx_write_pdptrs(pdptrs);
	local_irq_restore(flags);
	if (!keep_tlb)
		vmx->flush_guest = true;
	return 0;
}

/* Deliver an exception at the next entry (an event already pending wins). */
void vmx_inject_exception(struct kvmpp_vcpu *vcpu, int vector, bool has_error, u32 error)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	if (vmx->inject_info & INTR_INFO_VALID_MASK)
		return;
	vmx->inject_info = vector | INTR_TYPE_HARD_EXCEPTION | INTR_INFO_VALID_MASK |
			   (has_error ? INTR_INFO_DELIVER_CODE_MASK : 0);
	vmx->inject_error = error;
}

void vmx_inject_page_fault(struct kvmpp_vcpu *vcpu, u64 address, u32 error)
{
	to_vmx(vcpu)->cr2 = address;
	vmx_inject_exception(vcpu, X86_TRAP_PF, true, error);
}
