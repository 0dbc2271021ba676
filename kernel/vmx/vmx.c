// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmpp-intel.ko: the VMX backend. Probes for VMX with EPT, computes what the
 * CPU allows, then registers its operations with the core.
 */
#include <linux/module.h>
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

/* No vCPU operations yet: KVM_CREATE_VCPU answers -ENOTTY (abi-status.md). */
static const struct kvmpp_backend_ops vmx_ops = {
	.name = "vmx",
	.owner = THIS_MODULE,
	.hardware_enable = vmx_hardware_enable,
	.hardware_disable = vmx_hardware_disable,
	.vm_init = vmx_vm_init,
	.vm_destroy = vmx_vm_destroy,
};

#define vmx_refuse(fmt, ...) \
	({ pr_err(KVMPP_VMX_LOG_PREFIX fmt "\n", ##__VA_ARGS__); -EOPNOTSUPP; })

/* Refuse, with a line that says why, a CPU kvmpp cannot run guests on. */
static int vmx_probe(void)
{
	u64 feat_ctl, basic, procbased, procbased2, ept_vpid;
	u32 ctls;

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
	if (vmx_adjust_ctls(SECONDARY_EXEC_ENABLE_EPT,
			    SECONDARY_EXEC_ENABLE_VPID | SECONDARY_EXEC_UNRESTRICTED_GUEST,
			    procbased2, &ctls))
		return vmx_refuse("CPU has VMX but no EPT, which kvmpp requires");
	vmx_config.vpid = ctls & SECONDARY_EXEC_ENABLE_VPID;
	vmx_config.unrestricted_guest = ctls & SECONDARY_EXEC_UNRESTRICTED_GUEST;

	rdmsrl(MSR_IA32_VMX_EPT_VPID_CAP, ept_vpid);
	if (!(ept_vpid & VMX_EPT_PAGE_WALK_4_BIT) || !(ept_vpid & VMX_EPTP_WB_BIT))
		return vmx_refuse("EPT lacks 4-level walks or write-back paging structures");
	vmx_config.ept_ad = ept_vpid & VMX_EPT_AD_BIT;

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
	r = kvmpp_register_backend(&vmx_ops);
	if (r)
		vmx_hardware_unsetup();
	return r;
}

static void __exit vmx_exit(void)
{
	kvmpp_unregister_backend(&vmx_ops);
	vmx_hardware_unsetup();
}

module_init(vmx_init);
module_exit(vmx_exit);
MODULE_DESCRIPTION("kvmpp: VMX (Intel VT-x) backend with EPT");
MODULE_LICENSE("GPL");
