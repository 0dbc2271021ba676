// SPDX-License-Identifier: GPL-2.0-only
/*
 * The /dev/kvm ("system") ioctls: what a VMM asks before it creates a VM.
 */
#include <linux/kvm.h>
#include <linux/cpumask.h>
#include <linux/mm.h>

#include "caps.h"
#include "kvmpp.h"

/*
 * The vCPU mmap area, in pages: struct kvm_run, the PIO data page and the
 * coalesced MMIO ring, at the offsets <asm/kvm.h> gives x86 VMMs
 * (KVM_PIO_PAGE_OFFSET, KVM_COALESCED_MMIO_PAGE_OFFSET).
 */
#define KVMPP_VCPU_MMAP_PAGES (KVM_COALESCED_MMIO_PAGE_OFFSET + 1)

long kvmpp_dev_check_extension(long cap)
{
	const struct kvmpp_caps_env env = {
		.online_cpus = num_online_cpus(),
		.backend_has_vcpus = kvmpp_backend->vcpu_create,
	};

	return kvmpp_check_extension(&env, cap);
}

long kvmpp_dev_ioctl(struct file *file, unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KVM_GET_API_VERSION:
		return arg ? -EINVAL : KVM_API_VERSION;
	case KVM_CREATE_VM:
		return kvmpp_vm_create(arg);
	case KVM_CHECK_EXTENSION:
		return kvmpp_dev_check_extension(arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		return arg ? -EINVAL : KVMPP_VCPU_MMAP_PAGES * PAGE_SIZE;
	case KVM_GET_SUPPORTED_CPUID:
		return kvmpp_x86_get_supported_cpuid((void __user *)arg);
	case KVM_GET_MSR_INDEX_LIST:
		return kvmpp_x86_get_msr_index_list((void __user *)arg);
	case KVM_TRACE_ENABLE:
	case KVM_TRACE_PAUSE:
	case KVM_TRACE_DISABLE:
		/* Long removed from KVM, which still answers them this way. */
		return -EOPNOTSUPP;
	default:
		return -EINVAL;
	}
}
