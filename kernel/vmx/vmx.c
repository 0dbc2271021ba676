// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmpp-intel.ko: the VMX backend. Probes for VMX with EPT, computes the VMCS
 * controls the CPU allows, then registers its operations with the core.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/processor.h>
#include <asm/vmx.h>

#include <kvmpp/backend.h>
#include "capabilities.h"
#include "vmx.h"

struct vmx_config vmx_config;

static int vmx_vm_init(struct kvmpp_vm *vm)
{
	return kvmpp_tdp_init(vm, &vmx_ept_format);
}

static void vmx_vm_destroy(struct kvmpp_vm *vm)
{
	kvmpp_tdp_destroy(vm);
}

static int vmx_vcpu_create(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx;
	struct page *page;
	int r;

	/*
	 * Without unrestricted guest, real mode and unpaged protected mode would
	 * need emulation or a vm86 identity-map setup, neither of which kvmpp has.
	 */
	if (!vmx_config.unrestricted_guest) {
		pr_err_once(KVMPP_VMX_LOG_PREFIX
			    "the CPU has no unrestricted guest support: no vCPUs\n");
		return -EOPNOTSUPP;
	}

	vmx = kzalloc(sizeof(*vmx), GFP_KERNEL_ACCOUNT);
	if (!vmx)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!page) {
		kfree(vmx);
		return -ENOMEM;
	}
	vmx->vcpu = vcpu;
	vmx->vmcs = page_address(page);
	vmx->vmcs_pa = page_to_phys(page);
	/* The region starts with the revision identifier, bit 31 (shadow VMCS) clear. */
	*(u32 *)vmx->vmcs = vmx_config.revision_id;
	vmx->cpu = -1;
	INIT_LIST_HEAD(&vmx->loaded_link);
	vmx->vpid = vmx_alloc_vpid();
	vcpu->backend_data = vmx;

	r = vmx_vmcs_init(vcpu);
	if (r) {
		vmx_vcpu_unload(vmx);
		vmx_free_vpid(vmx->vpid);
		free_page((unsigned long)vmx->vmcs);
		kfree(vmx);
		vcpu->backend_data = NULL;
	}
	return r;
}

static void vmx_vcpu_free(struct kvmpp_vcpu *vcpu)
{
	struct vmx_vcpu *vmx = to_vmx(vcpu);

	vmx_vcpu_unload(vmx);
	vmx_free_vpid(vmx->vpid);
	free_page((unsigned long)vmx->vmcs);
	kfree(vmx);
}

static const struct kvmpp_backend_ops vmx_ops = {
	.name = "vmx",
	.owner = THIS_MODULE,
	.hardware_enable = vmx_hardware_enable,
	.hardware_disable = vmx_hardware_disable,
	.vm_init = vmx_vm_init,
	.vm_destroy = vmx_vm_destroy,
	.vcpu_create = vmx_vcpu_create,
	.vcpu_free = vmx_vcpu_free,
	.vcpu_reset = vmx_vcpu_reset,
	.vcpu_run = vmx_vcpu_run,
	.get_sregs = vmx_get_sregs,
	.set_sregs = vmx_set_sregs,
	.get_cpl = vmx_get_cpl,
	.is_long_mode = vmx_is_long_mode,
	.is_paging = vmx_is_paging,
	.get_paging_mode = vmx_get_paging_mode,
	.get_segment_base = vmx_get_segment_base,
	.get_code_segments = vmx_get_code_segments,
	.get_exit_info = vmx_get_exit_info,
	.inject_exception = vmx_inject_exception,
	.inject_page_fault = vmx_inject_page_fault,
	.get_msr = vmx_get_msr,
	.set_msr = vmx_set_msr,
};

#define vmx_refuse(fmt, ...) \
	({ pr_err(KVMPP_VMX_LOG_PREFIX fmt "\n", ##__VA_ARGS__); -EOPNOTSUPP; })

/*
 * What exits and what the guest does itself:
 * - host interrupts and NMIs exit, so the host keeps its CPU; interrupts are
 *   not acknowledged on exit but taken once the host enables interrupts;
 * - HLT, all port I/O, all MSR accesses (bitmap of ones), MOV to/from CR8
 *   (the task priority, which without an in-kernel APIC is userspace's) and
 *   the instructions kvmpp refuses (MONITOR/MWAIT, RDPMC) exit;
 * - with EPT and unrestricted guest the guest runs its own paging and real
 *   mode: no CR3 or INVLPG exits (old CPUs insist on CR3 exits: exits.c
 *   handles them);
 * - instructions not enabled in the secondary controls (RDTSCP, INVPCID,
 *   XSAVES, ...) raise #UD in the guest, as for a CPU without them.
 */
#define VMX_PIN_REQUIRED	(PIN_BASED_EXT_INTR_MASK | PIN_BASED_NMI_EXITING)
#define VMX_PROC_REQUIRED	(CPU_BASED_HLT_EXITING | CPU_BASED_UNCOND_IO_EXITING | \
				 CPU_BASED_USE_MSR_BITMAPS | CPU_BASED_CR8_LOAD_EXITING | \
				 CPU_BASED_CR8_STORE_EXITING | CPU_BASED_MWAIT_EXITING | \
				 CPU_BASED_MONITOR_EXITING | CPU_BASED_RDPMC_EXITING | \
				 CPU_BASED_USE_TSC_OFFSETTING | \
				 CPU_BASED_ACTIVATE_SECONDARY_CONTROLS)
#define VMX_PROC2_REQUIRED	SECONDARY_EXEC_ENABLE_EPT
#define VMX_PROC2_OPTIONAL	(SECONDARY_EXEC_ENABLE_VPID | SECONDARY_EXEC_UNRESTRICTED_GUEST)
/*
 * A 64-bit host; EFER and PAT switched by the CPU on every entry and exit
 * (the guest's values saved on exit); the debug controls (DR7, DEBUGCTL)
 * switched where the CPU allows it.
 */
#define VMX_EXIT_REQUIRED	(VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_IA32_EFER | \
				 VM_EXIT_LOAD_IA32_EFER | VM_EXIT_SAVE_IA32_PAT | \
				 VM_EXIT_LOAD_IA32_PAT)
#define VMX_EXIT_OPTIONAL	VM_EXIT_SAVE_DEBUG_CONTROLS
#define VMX_ENTRY_REQUIRED	(VM_ENTRY_LOAD_IA32_EFER | VM_ENTRY_LOAD_IA32_PAT)
#define VMX_ENTRY_OPTIONAL	VM_ENTRY_LOAD_DEBUG_CONTROLS

/* The controls, from the TRUE_* capability MSRs where they exist (SDM A.2). */
static int vmx_compute_controls(void)
{
	bool t = vmx_config.true_ctls;
	u64 msr;

	rdmsrl(t ? MSR_IA32_VMX_TRUE_PINBASED_CTLS : MSR_IA32_VMX_PINBASED_CTLS, msr);
	if (vmx_adjust_ctls(VMX_PIN_REQUIRED, 0, msr, &vmx_config.pin))
		return vmx_refuse("CPU cannot exit on host interrupts and NMIs");
	rdmsrl(t ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS : MSR_IA32_VMX_PROCBASED_CTLS, msr);
	if (vmx_adjust_ctls(VMX_PROC_REQUIRED, 0, msr, &vmx_config.proc))
		return vmx_refuse("CPU lacks processor-based controls kvmpp needs (%#x allowed)",
				  (u32)(msr >> 32));
	rdmsrl(MSR_IA32_VMX_PROCBASED_CTLS2, msr);
	if (vmx_adjust_ctls(VMX_PROC2_REQUIRED, VMX_PROC2_OPTIONAL, msr, &vmx_config.proc2))
		return vmx_refuse("CPU has VMX but no EPT, which kvmpp requires");
	rdmsrl(t ? MSR_IA32_VMX_TRUE_EXIT_CTLS : MSR_IA32_VMX_EXIT_CTLS, msr);
	if (vmx_adjust_ctls(VMX_EXIT_REQUIRED, VMX_EXIT_OPTIONAL, msr, &vmx_config.exit))
		return vmx_refuse("CPU cannot switch EFER and PAT on VM exit");
	rdmsrl(t ? MSR_IA32_VMX_TRUE_ENTRY_CTLS : MSR_IA32_VMX_ENTRY_CTLS, msr);
	if (vmx_adjust_ctls(VMX_ENTRY_REQUIRED, VMX_ENTRY_OPTIONAL, msr, &vmx_config.entry))
		return vmx_refuse("CPU cannot switch EFER and PAT on VM entry");
	/* Set per vCPU from the guest's EFER.LMA. */
	vmx_config.entry &= ~VM_ENTRY_IA32E_MODE;
	return 0;
}

/* Refuse, with a line that says why, a CPU kvmpp cannot run guests on. */
static int vmx_probe(void)
{
	u64 feat_ctl, basic, misc, procbased, procbased2, ept_vpid;
	u32 ctls;
	int r;

	if (!boot_cpu_has(X86_FEATURE_VMX)) {
		/* The boot code clears the flag when the firmware left VMX off. */
		if (cpuid_ecx(1) & BIT(X86_FEATURE_VMX & 31))
			return vmx_refuse("VMX is disabled by the firmware (IA32_FEATURE_CONTROL)");
		return vmx_refuse("CPU has no VMX (VT-x) support");
	}
	rdmsrl(MSR_IA32_FEAT_CTL, feat_ctl);
	if (!(feat_ctl & FEAT_CTL_LOCKED) || !(feat_ctl & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX))
		return vmx_refuse("VMX outside SMX is not enabled in IA32_FEATURE_CONTROL");

	rdmsrl(MSR_IA32_VMX_BASIC, basic);
	vmx_config.revision_id = (u32)basic & 0x7fffffff;
	vmx_config.vmcs_size = (basic >> VMX_BASIC_VMCS_SIZE_SHIFT) & 0x1fff;
	vmx_config.true_ctls = basic & VMX_BASIC_TRUE_CTLS;
	vmx_config.ins_outs_info = basic & VMX_BASIC_INOUT;
	if (vmx_config.vmcs_size > PAGE_SIZE)
		return vmx_refuse("VMCS size %u exceeds a page", vmx_config.vmcs_size);
	if (basic & VMX_BASIC_64)
		return vmx_refuse("VMX structures limited to 32-bit physical addresses");
	if (((basic & VMX_BASIC_MEM_TYPE_MASK) >> VMX_BASIC_MEM_TYPE_SHIFT) != VMX_BASIC_MEM_TYPE_WB)
		return vmx_refuse("VMCS memory type is not write-back");

	rdmsrl(vmx_config.true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS :
				      MSR_IA32_VMX_PROCBASED_CTLS, procbased);
	if (vmx_adjust_ctls(CPU_BASED_ACTIVATE_SECONDARY_CONTROLS, 0, procbased, &ctls))
		return vmx_refuse("CPU has no secondary processor-based controls, so no EPT");

	rdmsrl(MSR_IA32_VMX_PROCBASED_CTLS2, procbased2);
	if (vmx_adjust_ctls(SECONDARY_EXEC_ENABLE_EPT, VMX_PROC2_OPTIONAL, procbased2, &ctls))
		return vmx_refuse("CPU has VMX but no EPT, which kvmpp requires");

	rdmsrl(MSR_IA32_VMX_EPT_VPID_CAP, ept_vpid);
	if (!(ept_vpid & VMX_EPT_PAGE_WALK_4_BIT) || !(ept_vpid & VMX_EPTP_WB_BIT))
		return vmx_refuse("EPT lacks 4-level walks or write-back paging structures");
	if (!(ept_vpid & VMX_EPT_INVEPT_BIT) ||
	    !(ept_vpid & (VMX_EPT_EXTENT_CONTEXT_BIT | VMX_EPT_EXTENT_GLOBAL_BIT)))
		return vmx_refuse("EPT without INVEPT");
	vmx_config.ept_vpid_cap = ept_vpid;
	vmx_config.ept_ad = ept_vpid & VMX_EPT_AD_BIT;

	r = vmx_compute_controls();
	if (r)
		return r;
	/* VPIDs are of no use without INVVPID to flush them. */
	if (!(ept_vpid >> 32 & VMX_VPID_INVVPID_BIT) ||
	    !(ept_vpid >> 32 & (VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT |
				VMX_VPID_EXTENT_GLOBAL_CONTEXT_BIT)))
		vmx_config.proc2 &= ~SECONDARY_EXEC_ENABLE_VPID;
	vmx_config.vpid = vmx_config.proc2 & SECONDARY_EXEC_ENABLE_VPID;
	vmx_config.unrestricted_guest = vmx_config.proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST;

	rdmsrl(MSR_IA32_VMX_MISC, misc);
	vmx_config.saves_lma = misc & VMX_MISC_SAVE_EFER_LMA;
	rdmsrl(MSR_IA32_VMX_CR0_FIXED0, vmx_config.cr0_fixed0);
	rdmsrl(MSR_IA32_VMX_CR0_FIXED1, vmx_config.cr0_fixed1);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED0, vmx_config.cr4_fixed0);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED1, vmx_config.cr4_fixed1);

	pr_info(KVMPP_VMX_LOG_PREFIX "VMX with EPT%s%s%s, VMCS revision %u\n",
		vmx_config.ept_ad ? ", EPT A/D" : "",
		vmx_config.vpid ? ", VPID" : "",
		vmx_config.unrestricted_guest ? ", unrestricted guest" : "",
		vmx_config.revision_id);
	return 0;
}

static int __init vmx_init(void)
{
	int r;

	r = vmx_probe();
	if (r)
		return r;
	r = vmx_hardware_setup();
	if (r)
		return r;
	r = vmx_vmcs_setup();
	if (r)
		goto err_hardware;
	r = kvmpp_register_backend(&vmx_ops);
	if (r)
		goto err_bitmap;
	return 0;

err_bitmap:
	vmx_vmcs_unsetup();
err_hardware:
	vmx_hardware_unsetup();
	return r;
}

static void __exit vmx_exit(void)
{
	kvmpp_unregister_backend(&vmx_ops);
	vmx_vmcs_unsetup();
	vmx_hardware_unsetup();
}

module_init(vmx_init);
module_exit(vmx_exit);
MODULE_DESCRIPTION("kvmpp: VMX (Intel VT-x) backend with EPT");
MODULE_LICENSE("GPL");
