// SPDX-License-Identifier: GPL-2.0-only
/*
 * SVM on and off on one CPU, and what each CPU owns while it is on:
 * - the host save area, whose address VMRUN finds in MSR_VM_HSAVE_PA (AMD APM
 *   vol. 2, 15.30.4), written by the CPU only;
 * - a second page where the entry code VMSAVEs the host's FS/GS/TR/LDTR and
 *   syscall MSRs before it VMLOADs the guest's;
 * - the ASIDs (APM 15.16): each vCPU entering on a CPU takes the next free one;
 *   when they run out, the generation moves on, every vCPU takes a new one, and
 *   the first entry of the new generation flushes the whole TLB.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/msr-index.h>

#include "svm.h"

struct svm_cpu {
	struct page *hsave;
	struct page *host_vmsave;
	u64 asid_generation;
	u32 next_asid;
	bool flush_all;		/* the next entry flushes every ASID */
};

/* Pages are allocated at module load for every possible CPU (enable may not sleep). */
static DEFINE_PER_CPU(struct svm_cpu, svm_cpu);
/* ASIDs 1 .. svm_max_asid (CPUID 0x8000000A EBX - 1); 0 is the host's. */
static u32 svm_max_asid;

int svm_hardware_setup(void)
{
	int cpu;

	svm_max_asid = cpuid_ebx(SVM_CPUID_FUNC) - 1;
	if (svm_max_asid < 1)
		return -EOPNOTSUPP;
	for_each_possible_cpu(cpu) {
		struct svm_cpu *c = per_cpu_ptr(&svm_cpu, cpu);

		c->hsave = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);
		c->host_vmsave = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);
		if (!c->hsave || !c->host_vmsave) {
			svm_hardware_unsetup();
			return -ENOMEM;
		}
		/* Generation 0 is never current: every vCPU takes an ASID first. */
		c->asid_generation = 1;
		c->next_asid = 1;
	}
	return 0;
}

void svm_hardware_unsetup(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct svm_cpu *c = per_cpu_ptr(&svm_cpu, cpu);

		if (c->hsave)
			__free_page(c->hsave);
		if (c->host_vmsave)
			__free_page(c->host_vmsave);
		c->hsave = c->host_vmsave = NULL;
	}
}

int svm_hardware_enable(void)
{
	struct svm_cpu *c = this_cpu_ptr(&svm_cpu);
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	/* Someone else (another hypervisor) has SVM on here: leave it alone. */
	if (efer & EFER_SVME)
		return -EBUSY;

	wrmsrl(MSR_EFER, efer | EFER_SVME);
	wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(c->hsave));
	/* Whatever ran here before may have left translations tagged with our ASIDs. */
	c->asid_generation++;
	c->next_asid = 1;
	c->flush_all = true;
	return 0;
}

void svm_hardware_disable(void)
{
	u64 efer;

	wrmsrl(MSR_VM_HSAVE_PA, 0);
	rdmsrl(MSR_EFER, efer);
	wrmsrl(MSR_EFER, efer & ~(u64)EFER_SVME);
}

u64 svm_host_vmsave_pa(void)
{
	return page_to_phys(this_cpu_ptr(&svm_cpu)->host_vmsave);
}

/*
 * Called with interrupts off before each entry: give the vCPU a valid ASID on
 * this CPU, and with @flush make sure it starts with no stale translations.
 * Sets the VMCB's ASID and TLB control.
 */
void svm_assign_asid(struct svm_vcpu *svm, bool flush)
{
	struct svm_cpu *c = this_cpu_ptr(&svm_cpu);
	struct vmcb_control_area *ctl = &svm->vmcb->control;

	ctl->tlb_ctl = TLB_CONTROL_DO_NOTHING;
	if (flush || svm->asid_cpu != smp_processor_id() ||
	    svm->asid_generation != c->asid_generation) {
		/* A fresh ASID has no translations: no flush needed, except on wrap. */
		if (c->next_asid > svm_max_asid) {
			c->asid_generation++;
			c->next_asid = 1;
			c->flush_all = true;
		}
		svm->asid = c->next_asid++;
		svm->asid_generation = c->asid_generation;
		svm->asid_cpu = smp_processor_id();
	}
	if (c->flush_all) {
		ctl->tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
		c->flush_all = false;
	}
	ctl->asid = svm->asid;
}
