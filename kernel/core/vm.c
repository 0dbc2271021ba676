// SPDX-License-Identifier: GPL-2.0-only
/*
 * Virtual machines: KVM_CREATE_VM, the VM fd and its ioctls, and the VM's
 * lifetime (the VM fd and every vCPU fd hold a reference).
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/kvm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "kvmpp.h"

static int kvmpp_vm_release(struct inode *inode, struct file *file);
static long kvmpp_vm_ioctl(struct file *file, unsigned int ioctl, unsigned long arg);

/* .owner is the backend module, set by kvmpp_vm_set_owner() at registration. */
static struct file_operations kvmpp_vm_fops = {
	.release = kvmpp_vm_release,
	.unlocked_ioctl = kvmpp_vm_ioctl,
	.compat_ioctl = kvmpp_vm_ioctl,
	.llseek = noop_llseek,
};

void kvmpp_vm_set_owner(struct module *owner)
{
	kvmpp_vm_fops.owner = owner;
}

void kvmpp_vm_get(struct kvmpp_vm *vm)
{
	refcount_inc(&vm->users);
}

/* Frees what kvmpp_vm_create() set up, in reverse; @stage says how far it got. */
enum vm_stage { VM_ALLOCATED, VM_HARDWARE, VM_MEMORY, VM_BACKEND };

static void vm_teardown(struct kvmpp_vm *vm, enum vm_stage stage)
{
	unsigned int i;

	/*
	 * The backend's VM state (the TDP tables and their MMU notifier) goes
	 * first: a notifier callback flushes through vm->vcpus[].
	 */
	if (stage >= VM_BACKEND)
		kvmpp_backend->vm_destroy(vm);
	for (i = 0; i < vm->nr_vcpus; i++)
		kvmpp_vcpu_destroy(vm->vcpus[i]);
	if (stage >= VM_MEMORY)
		kvmpp_memory_destroy(vm);
	kvmpp_coalesced_destroy(vm);
	if (vm->coalesced_mmio_ring)
		__free_page(vm->coalesced_mmio_ring);
	mmdrop(vm->mm);
	kvfree(vm);
	if (stage >= VM_HARDWARE)
		kvmpp_hardware_put();
}

void kvmpp_vm_put(struct kvmpp_vm *vm)
{
	if (refcount_dec_and_test(&vm->users))
		vm_teardown(vm, VM_BACKEND);
}

int kvmpp_vm_create(unsigned long type)
{
	struct kvmpp_vm *vm;
	int r;

	/* x86 KVM knows only the default VM type. */
	if (type)
		return -EINVAL;

	vm = kvzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	vm->mm = current->mm;
	mmgrab(vm->mm);
	refcount_set(&vm->users, 1);
	mutex_init(&vm->lock);
	kvmpp_coalesced_init(vm);
	vm->coalesced_mmio_ring = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!vm->coalesced_mmio_ring) {
		r = -ENOMEM;
		goto err;
	}

	r = kvmpp_hardware_get();
	if (r)
		goto err;
	r = kvmpp_memory_init(vm);
	if (r) {
		vm_teardown(vm, VM_HARDWARE);
		return r;
	}
	r = kvmpp_backend->vm_init(vm);
	if (r) {
		vm_teardown(vm, VM_MEMORY);
		return r;
	}

	r = anon_inode_getfd("kvm-vm", &kvmpp_vm_fops, vm, O_RDWR | O_CLOEXEC);
	if (r < 0)
		vm_teardown(vm, VM_BACKEND);
	return r;

err:
	vm_teardown(vm, VM_ALLOCATED);
	return r;
}

static int kvmpp_vm_release(struct inode *inode, struct file *file)
{
	kvmpp_vm_put(file->private_data);
	return 0;
}

static long kvmpp_vm_ioctl(struct file *file, unsigned int ioctl, unsigned long arg)
{
	struct kvmpp_vm *vm = file->private_data;
	void __user *argp = (void __user *)arg;

	/* A VM belongs to the process that created it (KVM answers -EIO too). */
	if (vm->mm != current->mm)
		return -EIO;

	switch (ioctl) {
	case KVM_CHECK_EXTENSION:
		return kvmpp_dev_check_extension(arg);
	case KVM_CREATE_VCPU:
		/* A backend still without vCPUs (see Documentation/abi-status.md). */
		if (!kvmpp_backend->vcpu_create)
			return -ENOTTY;
		return kvmpp_vcpu_create(vm, arg);
	case KVM_SET_USER_MEMORY_REGION:
		return kvmpp_vm_set_user_memory_region(vm, argp);
	case KVM_REGISTER_COALESCED_MMIO:
		return kvmpp_vm_register_coalesced(vm, argp);
	case KVM_UNREGISTER_COALESCED_MMIO:
		return kvmpp_vm_unregister_coalesced(vm, argp);
	default:
		return -ENOTTY;
	}
}
