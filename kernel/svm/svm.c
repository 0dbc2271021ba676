// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmpp-amd.ko: the SVM backend. Probes for SVM with nested paging, then
 * registers its operations with the core.
 */
#include <linux/module.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/svm.h>

#include <kvmpp/backend.h>
#include "svm.h"

static const struct kvmpp_backend_ops svm_ops = {
	.name = "svm",
	.owner = THIS_MODULE,
	.hardware_enable = svm_hardware_enable,
	.hardware_disable = svm_hardware_disable,
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
	r = kvmpp_register_backend(&svm_ops);
	if (r)
		svm_hardware_unsetup();
	return r;
}

static void __exit svm_exit(void)
{
	kvmpp_unregister_backend(&svm_ops);
	svm_hardware_unsetup();
}

module_init(svm_init);
module_exit(svm_exit);
MODULE_DESCRIPTION("kvmpp: SVM (AMD-V) backend with nested paging");
MODULE_LICENSE("GPL");
