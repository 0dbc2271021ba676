// SPDX-License-Identifier: GPL-2.0-only
/*
 * kvmpp.ko: the generic core. It owns /dev/kvm, which appears when a backend
 * (kvmpp-amd.ko or kvmpp-intel.ko) registers and disappears when it goes, as
 * Linux's kvm.ko does with its vendor modules.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>

#include "kvmpp.h"

static ushort dev_mode = 0600;
module_param(dev_mode, ushort, 0444);
MODULE_PARM_DESC(dev_mode, "Permission bits of /dev/kvm when devtmpfs creates it (default 0600)");

/* Written under kvmpp_backend_lock; see kvmpp.h for why readers need no lock. */
const struct kvmpp_backend_ops *kvmpp_backend;
static DEFINE_MUTEX(kvmpp_backend_lock);

/* .owner is the backend module, set at registration. */
static struct file_operations kvmpp_dev_fops = {
	.unlocked_ioctl = kvmpp_dev_ioctl,
	.compat_ioctl = kvmpp_dev_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kvmpp_dev = {
	.minor = KVM_MINOR,
	.name = "kvm",
	.fops = &kvmpp_dev_fops,
};

int kvmpp_register_backend(const struct kvmpp_backend_ops *ops)
{
	int r;

	mutex_lock(&kvmpp_backend_lock);
	if (kvmpp_backend) {
		pr_err(KVMPP_LOG_PREFIX "backend '%s' already loaded, refusing '%s'\n",
		       kvmpp_backend->name, ops->name);
		r = -EEXIST;
		goto out;
	}

	kvmpp_backend = ops;
	r = kvmpp_hardware_init();
	if (r)
		goto err_backend;

	kvmpp_dev_fops.owner = ops->owner;
	kvmpp_vm_set_owner(ops->owner);
	kvmpp_vcpu_set_owner(ops->owner);
	kvmpp_dev.mode = dev_mode;
	r = misc_register(&kvmpp_dev);
	if (r) {
		pr_err(KVMPP_LOG_PREFIX "cannot register /dev/kvm: %d\n", r);
		goto err_hardware;
	}
	pr_info(KVMPP_LOG_PREFIX "%s backend registered, /dev/kvm ready\n", ops->name);
	goto out;

err_hardware:
	kvmpp_hardware_exit();
err_backend:
	kvmpp_backend = NULL;
out:
	mutex_unlock(&kvmpp_backend_lock);
	return r;
}
EXPORT_SYMBOL_GPL(kvmpp_register_backend);

/*
 * Called from the backend's module exit. No fd owned by the backend can be open
 * (each pins the module), so no VM exists and no ioctl is in flight.
 */
void kvmpp_unregister_backend(const struct kvmpp_backend_ops *ops)
{
	mutex_lock(&kvmpp_backend_lock);
	if (!WARN_ON(kvmpp_backend != ops)) {
		misc_deregister(&kvmpp_dev);
		kvmpp_hardware_exit();
		kvmpp_backend = NULL;
		pr_info(KVMPP_LOG_PREFIX "%s backend unregistered\n", ops->name);
	}
	mutex_unlock(&kvmpp_backend_lock);
}
EXPORT_SYMBOL_GPL(kvmpp_unregister_backend);

static int __init kvmpp_init(void)
{
	return 0;
}

static void __exit kvmpp_exit(void)
{
}

module_init(kvmpp_init);
module_exit(kvmpp_exit);
MODULE_DESCRIPTION("kvmpp: a reimplementation of the KVM hypervisor core");
MODULE_LICENSE("GPL");
