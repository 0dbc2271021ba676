// SPDX-License-Identifier: GPL-2.0-only
/*
 * Hardware virtualization on and off.
 *
 * As in Linux, virtualization (EFER.SVME, VMXON) is on only while at least one VM
 * exists: the first VM turns it on on every online CPU, the last one to go turns it
 * off. CPUs that come online meanwhile are turned on before they run tasks (the
 * dynamic online state runs before the scheduler activates the CPU), CPUs that go
 * offline are turned off, and so are all CPUs on reboot and on suspend.
 */
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/reboot.h>
#include <linux/smp.h>
#include <linux/syscore_ops.h>

#include "kvmpp.h"

/*
 * kvmpp_hw_lock protects kvmpp_hw_users, kvmpp_hw_rebooting and the per-CPU
 * kvmpp_hw_on flags (each flag is written only on its own CPU, with preemption
 * disabled, under the lock; syscore suspend/resume run single-threaded with
 * interrupts off and use the flags without it).
 *
 * Lock order: the CPU hotplug lock, then kvmpp_hw_lock. Outside the hotplug
 * callbacks the lock is only taken under cpus_read_lock(), so a hotplug callback
 * (which runs while the hotplug lock is held for writing) never waits on a holder.
 */
static DEFINE_MUTEX(kvmpp_hw_lock);
static unsigned int kvmpp_hw_users;
static bool kvmpp_hw_rebooting;
static DEFINE_PER_CPU(bool, kvmpp_hw_on);
static int kvmpp_hw_cpuhp_state;

static int hw_enable_this_cpu(void)
{
	int r;

	if (__this_cpu_read(kvmpp_hw_on))
		return 0;
	r = kvmpp_backend->hardware_enable();
	if (r) {
		pr_warn(KVMPP_LOG_PREFIX "cannot enable %s on CPU %d: %d\n",
			kvmpp_backend->name, smp_processor_id(), r);
		return r;
	}
	__this_cpu_write(kvmpp_hw_on, true);
	return 0;
}

static void hw_disable_this_cpu(void)
{
	if (!__this_cpu_read(kvmpp_hw_on))
		return;
	kvmpp_backend->hardware_disable();
	__this_cpu_write(kvmpp_hw_on, false);
}

static void hw_enable_ipi(void *failed)
{
	if (hw_enable_this_cpu())
		atomic_inc(failed);
}

static void hw_disable_ipi(void *unused)
{
	hw_disable_this_cpu();
}

/* Take a reference for a new VM; turns virtualization on for the first. */
int kvmpp_hardware_get(void)
{
	atomic_t failed = ATOMIC_INIT(0);
	int r = 0;

	cpus_read_lock();
	mutex_lock(&kvmpp_hw_lock);
	if (kvmpp_hw_rebooting) {
		r = -EBUSY;
		goto out;
	}
	if (kvmpp_hw_users == 0) {
		on_each_cpu(hw_enable_ipi, &failed, 1);
		if (atomic_read(&failed)) {
			on_each_cpu(hw_disable_ipi, NULL, 1);
			r = -EBUSY;
			goto out;
		}
	}
	kvmpp_hw_users++;
out:
	mutex_unlock(&kvmpp_hw_lock);
	cpus_read_unlock();
	return r;
}

/* Drop a VM's reference; the last one turns virtualization off everywhere. */
void kvmpp_hardware_put(void)
{
	cpus_read_lock();
	mutex_lock(&kvmpp_hw_lock);
	if (!WARN_ON_ONCE(kvmpp_hw_users == 0) && --kvmpp_hw_users == 0)
		on_each_cpu(hw_disable_ipi, NULL, 1);
	mutex_unlock(&kvmpp_hw_lock);
	cpus_read_unlock();
}

/* CPU hotplug, run on @cpu itself in its hotplug thread. */
static int kvmpp_cpu_online(unsigned int cpu)
{
	int r = 0;

	mutex_lock(&kvmpp_hw_lock);
	if (kvmpp_hw_users && !kvmpp_hw_rebooting) {
		preempt_disable();
		r = hw_enable_this_cpu();
		preempt_enable();
	}
	mutex_unlock(&kvmpp_hw_lock);
	return r;
}

static int kvmpp_cpu_offline(unsigned int cpu)
{
	mutex_lock(&kvmpp_hw_lock);
	preempt_disable();
	hw_disable_this_cpu();
	preempt_enable();
	mutex_unlock(&kvmpp_hw_lock);
	return 0;
}

/*
 * Reboot (and kexec): leave every CPU with virtualization off, as firmware and
 * the next kernel expect, and refuse new VMs from here on.
 */
static int kvmpp_reboot(struct notifier_block *nb, unsigned long action, void *data)
{
	cpus_read_lock();
	mutex_lock(&kvmpp_hw_lock);
	kvmpp_hw_rebooting = true;
	on_each_cpu(hw_disable_ipi, NULL, 1);
	mutex_unlock(&kvmpp_hw_lock);
	cpus_read_unlock();
	return NOTIFY_OK;
}

static struct notifier_block kvmpp_reboot_nb = {
	.notifier_call = kvmpp_reboot,
};

/* Suspend/resume: only the boot CPU is left, interrupts are off. */
static int kvmpp_suspend(void)
{
	hw_disable_this_cpu();
	return 0;
}

static void kvmpp_resume(void)
{
	if (kvmpp_hw_users && !kvmpp_hw_rebooting)
		WARN_ON_ONCE(hw_enable_this_cpu());
}

static struct syscore_ops kvmpp_syscore_ops = {
	.suspend = kvmpp_suspend,
	.resume = kvmpp_resume,
};

/* Called when a backend registers: from now on the callbacks may use it. */
int kvmpp_hardware_init(void)
{
	int r;

	r = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "kvmpp:online",
			      kvmpp_cpu_online, kvmpp_cpu_offline);
	if (r < 0)
		return r;
	kvmpp_hw_cpuhp_state = r;
	kvmpp_hw_rebooting = false;
	register_reboot_notifier(&kvmpp_reboot_nb);
	register_syscore_ops(&kvmpp_syscore_ops);
	return 0;
}

/* Called when the backend unregisters; no VM exists (the backend is pinned by them). */
void kvmpp_hardware_exit(void)
{
	unregister_syscore_ops(&kvmpp_syscore_ops);
	unregister_reboot_notifier(&kvmpp_reboot_nb);
	cpuhp_remove_state(kvmpp_hw_cpuhp_state);
	WARN_ON_ONCE(kvmpp_hw_users);
}
