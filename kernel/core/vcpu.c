// SPDX-License-Identifier: GPL-2.0-only
/*
 * Virtual CPUs: KVM_CREATE_VCPU, the vCPU fd (ioctls and the mmap'd kvm_run
 * area), the KVM_RUN loop, and kicking vCPUs out of guest mode.
 *
 * As in KVM, a vCPU lives as long as its VM: closing the vCPU fd only drops the
 * fd's reference on the VM, and the vCPU is freed with the VM.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/smp.h>
#include <asm/msr.h>

#include "kvmpp.h"

static int kvmpp_vcpu_release(struct inode *inode, struct file *file);
static long kvmpp_vcpu_ioctl(struct file *file, unsigned int ioctl, unsigned long arg);
static int kvmpp_vcpu_mmap(struct file *file, struct vm_area_struct *vma);

/* .owner is the backend module, set at registration. */
static struct file_operations kvmpp_vcpu_fops = {
	.release = kvmpp_vcpu_release,
	.unlocked_ioctl = kvmpp_vcpu_ioctl,
	.compat_ioctl = kvmpp_vcpu_ioctl,
	.mmap = kvmpp_vcpu_mmap,
	.llseek = noop_llseek,
};

void kvmpp_vcpu_set_owner(struct module *owner)
{
	kvmpp_vcpu_fops.owner = owner;
}

static bool vcpu_id_taken(struct kvmpp_vm *vm, u32 id)
{
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i]->id == id)
			return true;
	return false;
}

static void vcpu_free(struct kvmpp_vcpu *vcpu)
{
	kvmpp_x86_free_cpuid(vcpu);
	kvmpp_x86_fpu_free(vcpu);
	free_page((unsigned long)vcpu->run);
	free_page((unsigned long)vcpu->pio_data);
	kfree(vcpu);
}

static struct kvmpp_vcpu *vcpu_alloc(struct kvmpp_vm *vm, u32 id)
{
	struct kvmpp_vcpu *vcpu;

	vcpu = kzalloc(sizeof(*vcpu), GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		return NULL;
	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	vcpu->pio_data = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run || !vcpu->pio_data) {
		vcpu_free(vcpu);
		return NULL;
	}
	if (kvmpp_x86_fpu_create(vcpu)) {
		vcpu_free(vcpu);
		return NULL;
	}
	vcpu->vm = vm;
	vcpu->id = id;
	vcpu->cpu = -1;
	/* The guest's TSC starts at 0 when the vCPU is created, as in KVM. */
	vcpu->arch.tsc_offset = -rdtsc();
	mutex_init(&vcpu->mutex);
	return vcpu;
}

int kvmpp_vcpu_create(struct kvmpp_vm *vm, unsigned long id)
{
	struct kvmpp_vcpu *vcpu;
	char name[sizeof("kvm-vcpu:") + 10];
	int r;

	if (id >= KVMPP_MAX_VCPU_IDS)
		return -EINVAL;

	vcpu = vcpu_alloc(vm, id);
	if (!vcpu)
		return -ENOMEM;
	r = kvmpp_backend->vcpu_create(vcpu);
	if (r) {
		vcpu_free(vcpu);
		return r;
	}
	kvmpp_x86_reset_regs(vcpu);

	mutex_lock(&vm->lock);
	if (vm->nr_vcpus >= KVMPP_MAX_VCPUS) {
		r = -EINVAL;
		goto err_unlock;
	}
	if (vcpu_id_taken(vm, id)) {
		r = -EEXIST;
		goto err_unlock;
	}
	/* The fd's reference; taken before the fd exists, dropped by its release. */
	kvmpp_vm_get(vm);
	snprintf(name, sizeof(name), "kvm-vcpu:%u", vcpu->id);
	r = anon_inode_getfd(name, &kvmpp_vcpu_fops, vcpu, O_RDWR | O_CLOEXEC);
	if (r < 0) {
		/* Not the last reference: the VM fd still holds one. */
		kvmpp_vm_put(vm);
		goto err_unlock;
	}
	vm->vcpus[vm->nr_vcpus] = vcpu;
	smp_store_release(&vm->nr_vcpus, vm->nr_vcpus + 1);
	mutex_unlock(&vm->lock);
	return r;

err_unlock:
	mutex_unlock(&vm->lock);
	kvmpp_backend->vcpu_free(vcpu);
	vcpu_free(vcpu);
	return r;
}

/* Called when the VM is freed: no fd refers to the vCPU any more. */
void kvmpp_vcpu_destroy(struct kvmpp_vcpu *vcpu)
{
	kvmpp_backend->vcpu_free(vcpu);
	vcpu_free(vcpu);
}

static int kvmpp_vcpu_release(struct inode *inode, struct file *file)
{
	struct kvmpp_vcpu *vcpu = file->private_data;

	kvmpp_vm_put(vcpu->vm);
	return 0;
}

/* The mmap area: kvm_run, the PIO data page, the VM's coalesced MMIO ring. */
static vm_fault_t kvmpp_vcpu_fault(struct vm_fault *vmf)
{
	struct kvmpp_vcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	switch (vmf->pgoff) {
	case 0:
		page = virt_to_page(vcpu->run);
		break;
	case KVM_PIO_PAGE_OFFSET:
		page = virt_to_page(vcpu->pio_data);
		break;
	case KVM_COALESCED_MMIO_PAGE_OFFSET:
		page = vcpu->vm->coalesced_mmio_ring;
		break;
	default:
		return VM_FAULT_SIGBUS;
	}
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct kvmpp_vcpu_vm_ops = {
	.fault = kvmpp_vcpu_fault,
};

static int kvmpp_vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_ops = &kvmpp_vcpu_vm_ops;
	return 0;
}

/*
 * Entry protocol, with interrupts off: publish IN_GUEST_MODE, then (in the
 * backend) look at the requests. A requester sets its bit, then reads @mode:
 * either the vCPU sees the bit before it enters, or the requester sees
 * IN_GUEST_MODE and interrupts the guest (kvmpp_vm_flush_tlbs), and the vCPU
 * looks at the requests again before its next entry.
 */
void kvmpp_vcpu_enter_prepare(struct kvmpp_vcpu *vcpu)
{
	WRITE_ONCE(vcpu->mode, KVMPP_IN_GUEST_MODE);
	smp_mb();
	vcpu->cpu = smp_processor_id();
}
EXPORT_SYMBOL_GPL(kvmpp_vcpu_enter_prepare);

void kvmpp_vcpu_exit_done(struct kvmpp_vcpu *vcpu)
{
	/* Pairs with the smp_mb() in kvmpp_vm_flush_tlbs(). */
	smp_store_release(&vcpu->mode, KVMPP_OUTSIDE_GUEST_MODE);
}
EXPORT_SYMBOL_GPL(kvmpp_vcpu_exit_done);

static void kvmpp_kick_ack(void *unused)
{
}

/*
 * Every vCPU flushes its TLB before it next runs guest code (the backend tests
 * and clears KVMPP_REQ_TLB_FLUSH with interrupts off, after
 * kvmpp_vcpu_enter_prepare), and no vCPU is still in the guest when this
 * returns: a vCPU in guest mode is interrupted by an IPI, which makes it exit,
 * and we wait for that IPI to be handled.
 */
void kvmpp_vm_flush_tlbs(struct kvmpp_vm *vm)
{
	unsigned int i, nr = smp_load_acquire(&vm->nr_vcpus);
	cpumask_var_t cpus;
	bool have_mask;

	have_mask = zalloc_cpumask_var(&cpus, GFP_ATOMIC);
	for (i = 0; i < nr; i++)
		set_bit(KVMPP_REQ_TLB_FLUSH, &vm->vcpus[i]->requests);
	smp_mb();

	preempt_disable();
	for (i = 0; i < nr; i++) {
		struct kvmpp_vcpu *vcpu = vm->vcpus[i];
		int cpu = READ_ONCE(vcpu->cpu);

		if (READ_ONCE(vcpu->mode) != KVMPP_IN_GUEST_MODE || cpu < 0)
			continue;
		if (have_mask)
			cpumask_set_cpu(cpu, cpus);
		else
			smp_call_function_single(cpu, kvmpp_kick_ack, NULL, 1);
	}
	if (have_mask)
		smp_call_function_many(cpus, kvmpp_kick_ack, NULL, 1);
	preempt_enable();
	if (have_mask)
		free_cpumask_var(cpus);
}

/*
 * What KVM reports in kvm_run on every return to userspace (post_kvm_run_save):
 * without an in-kernel APIC, interrupts can be injected when IF is set.
 */
static void vcpu_exit_to_user(struct kvmpp_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->if_flag = !!(vcpu->arch.rflags & X86_EFLAGS_IF);
	/* KVM_INTERRUPT is not implemented yet: nothing can be injected that way. */
	run->ready_for_interrupt_injection = 0;
	run->cr8 = vcpu->arch.cr8;
	run->apic_base = vcpu->arch.apic_base;
}

static int vcpu_run(struct kvmpp_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int r;

	run->flags = 0;
	/* kvmpp supports no synced register sets (KVM_CAP_SYNC_REGS is 0). */
	if (run->kvm_valid_regs || run->kvm_dirty_regs)
		return -EINVAL;
	/* Without an in-kernel APIC, userspace owns the task priority. */
	if (run->cr8 & ~X86_CR8_TPR)
		return -EINVAL;
	vcpu->arch.cr8 = run->cr8;

	kvmpp_x86_fpu_load(vcpu);
	/* An I/O instruction userspace has answered completes first, as in KVM. */
	r = 1;
	if (vcpu->arch.pio.pending)
		r = kvmpp_x86_complete_userspace_io(vcpu);
	else if (kvmpp_emul_pending(&vcpu->arch.emul))
		r = kvmpp_x86_complete_mmio(vcpu);
	if (r > 0 && READ_ONCE(run->immediate_exit))
		r = -EINTR;

	while (r > 0) {
		if (signal_pending(current)) {
			run->exit_reason = KVM_EXIT_INTR;
			r = -EINTR;
			break;
		}
		cond_resched();
		r = kvmpp_backend->vcpu_run(vcpu);
	}
	kvmpp_x86_fpu_put(vcpu);
	return r;
}

static long vcpu_ioctl_run(struct kvmpp_vcpu *vcpu)
{
	sigset_t saved;
	long r;

	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &vcpu->sigset, &saved);
	r = vcpu_run(vcpu);
	vcpu_exit_to_user(vcpu);
	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &saved, NULL);
	return r;
}

/* KVM_SET_SIGNAL_MASK: the signals blocked while the vCPU runs. */
static long vcpu_set_signal_mask(struct kvmpp_vcpu *vcpu, void __user *argp)
{
	struct kvm_signal_mask __user *user_mask = argp;
	struct kvm_signal_mask mask;
	sigset_t set;

	if (!argp) {
		vcpu->sigset_active = false;
		return 0;
	}
	if (copy_from_user(&mask, user_mask, sizeof(mask)))
		return -EFAULT;
	if (mask.len != sizeof(set))
		return -EINVAL;
	if (copy_from_user(&set, user_mask->sigset, sizeof(set)))
		return -EFAULT;
	sigdelsetmask(&set, sigmask(SIGKILL) | sigmask(SIGSTOP));
	vcpu->sigset = set;
	vcpu->sigset_active = true;
	return 0;
}

static long kvmpp_vcpu_ioctl(struct file *file, unsigned int ioctl, unsigned long arg)
{
	struct kvmpp_vcpu *vcpu = file->private_data;
	void __user *argp = (void __user *)arg;
	long r;

	/* As KVM: only the VM's own process, and only KVM ioctls. */
	if (vcpu->vm->mm != current->mm)
		return -EIO;
	if (_IOC_TYPE(ioctl) != KVMIO)
		return -EINVAL;

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	switch (ioctl) {
	case KVM_RUN:
		r = arg ? -EINVAL : vcpu_ioctl_run(vcpu);
		break;
	case KVM_GET_REGS:
		r = kvmpp_x86_get_regs(vcpu, argp);
		break;
	case KVM_SET_REGS:
		r = kvmpp_x86_set_regs(vcpu, argp);
		break;
	case KVM_GET_SREGS:
		r = kvmpp_x86_get_sregs(vcpu, argp);
		break;
	case KVM_SET_SREGS:
		r = kvmpp_x86_set_sregs(vcpu, argp);
		break;
	case KVM_GET_FPU:
		r = kvmpp_x86_get_fpu(vcpu, argp);
		break;
	case KVM_SET_FPU:
		r = kvmpp_x86_set_fpu(vcpu, argp);
		break;
	case KVM_GET_MSRS:
		r = kvmpp_x86_msr_io(vcpu, argp, false);
		break;
	case KVM_SET_MSRS:
		r = kvmpp_x86_msr_io(vcpu, argp, true);
		break;
	case KVM_SET_CPUID2:
		r = kvmpp_x86_set_cpuid2(vcpu, argp);
		break;
	case KVM_GET_CPUID2:
		r = kvmpp_x86_get_cpuid2(vcpu, argp);
		break;
	case KVM_TRANSLATE:
		r = kvmpp_x86_ioctl_translate(vcpu, argp);
		break;
	case KVM_SET_SIGNAL_MASK:
		r = vcpu_set_signal_mask(vcpu, argp);
		break;
	default:
		/* What x86 KVM answers for a vCPU ioctl it does not know. */
		r = -EINVAL;
		break;
	}
	mutex_unlock(&vcpu->mutex);
	return r;
}
