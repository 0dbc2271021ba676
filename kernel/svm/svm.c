// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmpp-amd.ko: the SVM backend. Probes for SVM with nested paging, then
 * registers its operations with the core.
 */
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/svm.h>

#include <kvmpp/backend.h>
#include "svm.h"

static int svm_vm_init(struct kvmpp_vm *vm)
{
	return kvmpp_tdp_init(vm, &svm_npt_format);
}

static void svm_vm_destroy(struct kvmpp_vm *vm)
{
	kvmpp_tdp_destroy(vm);
}

static int svm_vcpu_create(struct kvmpp_vcpu *vcpu)
{
	struct svm_vcpu *svm;
	struct page *page;

	svm = kzalloc(sizeof(*svm), GFP_KERNEL_ACCOUNT);
	if (!svm)
		return -ENOMEM;
	page = alloc_page(GFP_KERNEL_ACCOUNT);
	if (!page) {
		kfree(svm);
		return -ENOMEM;
	}
	svm->vmcb = page_address(page);
	svm->vmcb_pa = page_to_phys(page);
	vcpu->backend_data = svm;
	svm_vmcb_reset(vcpu);
	return 0;
}

static void svm_vcpu_free(struct kvmpp_vcpu *vcpu)
{
	struct svm_vcpu *svm = to_svm(vcpu);

	free_page((unsigned long)svm->vmcb);
	kfree(svm);
}

static const struct kvmpp_backend_ops svm_ops = {
	.name = "svm",
	.owner = THIS_MODULE,
	.hardware_enable = svm_hardware_enable,
	.hardware_disable = svm_hardware_disable,
	.vm_init = svm_vm_init,
	.vm_destroy = svm_vm_destroy,
	.vcpu_create = svm_vcpu_create,
	.vcpu_free = svm_vcpu_free,
	.vcpu_reset = svm_vmcb_reset,
	.vcpu_run = svm_vcpu_run,
	.get_sregs = svm_get_sregs,
	.set_sregs = svm_set_sregs,
	.get_cpl = svm_get_cpl,
	.is_long_mode = svm_is_long_mode,
	.is_paging = svm_is_paging,
	.get_msr = svm_get_msr,
	.set_msr = svm_set_msr,
	.get_paging_mode = svm_get_paging_mode,
	.get_segment_base = svm_get_segment_base,
	.get_code_segments = svm_get_code_segments,
	.get_exit_info = svm_get_exit_info,
	.inject_exception = svm_inject_exception,
	.inject_page_fault = svm_inject_page_fault,
};

/* Refuse, with a line that says why, a CPU kvmpp cannot run guests on. */
static int svm_probe(void)
{
	u64 vm_cr;

	if (!boot_cpu_has(X86_FEATURE_SVM)) {
		pr_err(KVMPP_SVM_LOG_PREFIX "CPU has no SVM (AMD-V) support\n");
		return -EOPNOTSUPP;
	}
	rdmsrl(MSR_VM_CR, vm_cr);
	if (vm_cr & SVM_VM_CR_SVM_DIS_MASK) {
		pr_err(KVMPP_SVM_LOG_PREFIX "SVM is disabled by the firmware (VM_CR.SVMDIS)\n");
		return -EOPNOTSUPP;
	}
	if (!boot_cpu_has(X86_FEATURE_NPT)) {
		pr_err(KVMPP_SVM_LOG_PREFIX "CPU has SVM but no nested paging (NPT), which kvmpp requires\n");
		return -EOPNOTSUPP;
	}
	return 0;
}

static int __init svm_init(void)
{
	int r;

	r = svm_probe();
	if (r)
		return r;
	r = svm_hardware_setup();
	if (r)
		return r;
	r = svm_permission_maps_setup();
	if (r)
		goto err_hardware;
	r = kvmpp_register_backend(&svm_ops);
	if (r)
		goto err_maps;
	return 0;

err_maps:
	svm_permission_maps_unsetup();
err_hardware:
	svm_hardware_unsetup();
	return r;
}

static void __exit svm_exit(void)
{
	kvmpp_unregister_backend(&svm_ops);
	svm_permission_maps_unsetup();
	svm_hardware_unsetup();
}

module_init(svm_init);
module_exit(svm_exit);
MODULE_DESCRIPTION("kvmpp: SVM (AMD-V) backend with nested paging");
MODULE_LICENSE("GPL");
