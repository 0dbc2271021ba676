// SPDX-License-Identifier: GPL-2.0-only
/*
 * Virtual machines: KVM_CREATE_VM, the VM fd and its ioctls.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/kvm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>

#include "caps.h"
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

static void kvmpp_vm_free(struct kvmpp_vm *vm)
{
	mmdrop(vm->mm);
	kfree(vm);
	kvmpp_hardware_put();
}

int kvmpp_vm_create(unsigned long type)
{
	struct kvmpp_vm *vm;
	int r;

	/* x86 KVM knows only the default VM type. */
	if (type)
		return -EINVAL;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;

	r = kvmpp_hardware_get();
	if (r) {
		kfree(vm);
		return r;
	}

	vm->mm = current->mm;
	mmgrab(vm->mm);

	r = anon_inode_getfd("kvm-vm", &kvmpp_vm_fops, vm, O_RDWR | O_CLOEXEC);
	if (r < 0)
		kvmpp_vm_free(vm);
	return r;
}

static int kvmpp_vm_release(struct inode *inode, struct file *file)
{
	kvmpp_vm_free(file->private_data);
	return 0;
}

static long kvmpp_vm_ioctl(struct file *file, unsigned int ioctl, unsigned long arg)
{
	struct kvmpp_vm *vm = file->private_data;

	/* A VM belongs to the process that created it (KVM answers -EIO too). */
	if (vm->mm != current->mm)
		return -EIO;

	switch (ioctl) {
	case KVM_CHECK_EXTENSION:
		return kvmpp_check_extension(arg);
	default:
		return -ENOTTY;
	}
}
