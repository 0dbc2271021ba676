// SPDX-License-Identifier: GPL-2.0-only
/*
 * VMX operation on and off on one CPU: CR4.VMXE, VMXON with the CPU's VMXON
 * region, VMXOFF (Intel SDM vol. 3, 24.7 and 24.11.5).
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <asm/asm.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/perf_event.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

#include "capabilities.h"
#include "vmx.h"

/* One VMXON region per possible CPU, allocated at load (enable may not sleep). */
static DEFINE_PER_CPU(struct page *, vmxon_region);

int vmx_hardware_setup(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct page *page = alloc_pages_node(cpu_to_node(cpu),
						     GFP_KERNEL | __GFP_ZERO, 0);
		if (!page) {
			vmx_hardware_unsetup();
			return -ENOMEM;
		}
		/* The region starts with the VMCS revision identifier, bit 31 clear. */
		*(u32 *)page_address(page) = vmx_config.revision_id;
		per_cpu(vmxon_region, cpu) = page;
	}
	return 0;
}

void vmx_hardware_unsetup(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		if (per_cpu(vmxon_region, cpu))
			__free_page(per_cpu(vmxon_region, cpu));
		per_cpu(vmxon_region, cpu) = NULL;
	}
}

/* CR0 and CR4 (with VMXE) must satisfy the fixed-bit MSRs before VMXON. */
static bool vmx_crs_allowed(void)
{
	u64 fixed0, fixed1;

	rdmsrl(MSR_IA32_VMX_CR0_FIXED0, fixed0);
	rdmsrl(MSR_IA32_VMX_CR0_FIXED1, fixed1);
	if (!vmx_cr_allowed(read_cr0(), fixed0, fixed1))
		return false;
	rdmsrl(MSR_IA32_VMX_CR4_FIXED0, fixed0);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED1, fixed1);
	return vmx_cr_allowed(cr4_read_shadow() | X86_CR4_VMXE, fixed0, fixed1);
}

int vmx_hardware_enable(void)
{
	u64 region = page_to_phys(__this_cpu_read(vmxon_region));
	u64 feat_ctl;

	/* Someone else (another hypervisor) is in VMX operation here. */
	if (cr4_read_shadow() & X86_CR4_VMXE)
		return -EBUSY;

	/* The boot code locks this per CPU; VMXON would #GP without it. */
	rdmsrl(MSR_IA32_FEAT_CTL, feat_ctl);
	if (!(feat_ctl & FEAT_CTL_LOCKED) || !(feat_ctl & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX))
		return -EOPNOTSUPP;
	if (!vmx_crs_allowed())
		return -EIO;

	intel_pt_handle_vmx(1);
	cr4_set_bits(X86_CR4_VMXE);
	/* VMfailInvalid sets CF; a fault (#GP, #UD) lands at the exception fixup. */
	asm goto("1: vmxon %[region]\n\t"
			  "jc %l[failed]\n\t"
			  _ASM_EXTABLE(1b, %l[failed])
			  : : [region] "m"(region) : "cc", "memory" : failed);
	return 0;

failed:
	cr4_clear_bits(X86_CR4_VMXE);
	intel_pt_handle_vmx(0);
	return -EFAULT;
}

void vmx_hardware_disable(void)
{
	asm goto("1: vmxoff\n\t"
			  _ASM_EXTABLE(1b, %l[faulted])
			  : : : "cc", "memory" : faulted);
	goto out;
faulted:
	pr_err_ratelimited(KVMPP_VMX_LOG_PREFIX "VMXOFF faulted on CPU %d\n",
			   smp_processor_id());
out:
	cr4_clear_bits(X86_CR4_VMXE);
	intel_pt_handle_vmx(0);
}
