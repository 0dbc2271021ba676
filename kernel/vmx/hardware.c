// SPDX-License-Identifier: GPL-2.0-only
/*
 * VMX operation on and off on one CPU: CR4.VMXE, VMXON with the CPU's VMXON
 * region, VMXOFF (Intel SDM vol. 3C, 24.7 and 24.11.5). And what follows from
 * VMCSs being per-CPU objects:
 *
 * - A VMCS is "current" (VMPTRLD) on at most one CPU and its data may be
 *   cached inside that CPU until VMCLEAR writes it back (SDM 25.11.3). So a
 *   vCPU that moves to another CPU first has its VMCS cleared, by an IPI, on
 *   the CPU it was loaded on; and every VMCS loaded on a CPU is cleared
 *   before that CPU leaves VMX operation. Each CPU keeps the list of the
 *   VMCSs loaded on it for that.
 * - A cleared VMCS must be entered with VMLAUNCH again, and the CPU it lands
 *   on may still hold translations of the vCPU's VPID and EPTP from an
 *   earlier stay: those are flushed before the first entry there.
 *
 * Locking: a CPU's list and current VMCS, and the vmx_vcpu fields describing
 * where the VMCS is loaded (cpu, launched, loaded_link), change only on that
 * CPU with interrupts off. Loading, the VMCLEAR IPI and hardware_disable all run so,
 * which serializes them on each CPU without a lock; another CPU only reads
 * vmx->cpu to know whom to ask, and the IPI handler checks it again.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/percpu.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <asm/asm.h>
#include <asm/msr.h>
#include <asm/msr-index.h>
#include <asm/perf_event.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

#include "capabilities.h"
#include "vmcs.h"
#include "vmx.h"

struct vmx_cpu {
	struct page *vmxon_region;
	bool on;			/* in VMX operation */
	struct list_head loaded;	/* vmx_vcpu.loaded_link of the VMCSs loaded here */
	/*
	 * Of those, the one VMREAD/VMWRITE/VMRESUME act on (the last VMPTRLD);
	 * NULL after a VMCLEAR of it. Several VMCSs may be active on a CPU,
	 * only one is current.
	 */
	struct vmx_vcpu *current_vmcs;
	/* STAR, LSTAR, CSTAR, SFMASK: set by the kernel at boot, then constant. */
	u64 syscall_msrs[4];
};

/* Regions are allocated at load for every possible CPU (enable may not sleep). */
static DEFINE_PER_CPU(struct vmx_cpu, vmx_cpu);

/* VPIDs 1 .. VMX_NR_VPIDS - 1 (0 tags the host's own translations). */
static DEFINE_SPINLOCK(vmx_vpid_lock);
static DECLARE_BITMAP(vmx_vpid_used, VMX_NR_VPIDS);

int vmx_hardware_setup(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vmx_cpu *c = per_cpu_ptr(&vmx_cpu, cpu);
		struct page *page = alloc_pages_node(cpu_to_node(cpu),
						     GFP_KERNEL | __GFP_ZERO, 0);

		if (!page) {
			vmx_hardware_unsetup();
			return -ENOMEM;
		}
		/* The region starts with the VMCS revision identifier, bit 31 clear. */
		*(u32 *)page_address(page) = vmx_config.revision_id;
		c->vmxon_region = page;
		INIT_LIST_HEAD(&c->loaded);
	}
	__set_bit(0, vmx_vpid_used);
	return 0;
}

void vmx_hardware_unsetup(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vmx_cpu *c = per_cpu_ptr(&vmx_cpu, cpu);

		if (c->vmxon_region)
			__free_page(c->vmxon_region);
		c->vmxon_region = NULL;
	}
}

/* CR0 and CR4 (with VMXE) must satisfy the fixed-bit MSRs before VMXON. */
static bool vmx_crs_allowed(void)
{
	return vmx_cr_allowed(read_cr0(), vmx_config.cr0_fixed0, vmx_config.cr0_fixed1) &&
	       vmx_cr_allowed(cr4_read_shadow() | X86_CR4_VMXE, vmx_config.cr4_fixed0,
			      vmx_config.cr4_fixed1);
}

/*
 * Translations tagged with our VPIDs and EPTPs may survive from an earlier
 * VMX session on this CPU (or from another hypervisor): drop them all.
 */
static void vmx_flush_everything(void)
{
	u64 cap = vmx_config.ept_vpid_cap;

	if (cap & VMX_EPT_EXTENT_GLOBAL_BIT)
		vmx_invept(VMX_EPT_EXTENT_GLOBAL, 0);
	if (vmx_config.vpid && (cap >> 32 & VMX_VPID_EXTENT_GLOBAL_CONTEXT_BIT))
		vmx_invvpid(VMX_VPID_EXTENT_ALL_CONTEXT, 0);
}

int vmx_hardware_enable(void)
{
	struct vmx_cpu *c = this_cpu_ptr(&vmx_cpu);
	u64 region = page_to_phys(c->vmxon_region);
	u64 feat_ctl;

	/* Someone else (another hypervisor) is in VMX operation here. */
	if (cr4_read_shadow() & X86_CR4_VMXE)
		return -EBUSY;

	/* The boot code locks this per CPU; VMXON would #GP without it. */
	rdmsrl(MSR_IA32_FEAT_CTL, feat_ctl);
	if (!(feat_ctl & FEAT_CTL_LOCKED) || !(feat_ctl & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX))
		return -EOPNOTSUPP;
	if (!vmx_crs_allowed())
		return -EIO;

	intel_pt_handle_vmx(1);
	cr4_set_bits(X86_CR4_VMXE);
	/* VMfailInvalid sets CF; a fault (#GP, #UD) lands at the exception fixup. */
	asm goto("1: vmxon %[region]\n\t"
			  "jc %l[failed]\n\t"
			  _ASM_EXTABLE(1b, %l[failed])
			  : : [region] "m"(region) : "cc", "memory" : failed);

	rdmsrl(MSR_STAR, c->syscall_msrs[0]);
	rdmsrl(MSR_LSTAR, c->syscall_msrs[1]);
	rdmsrl(MSR_CSTAR, c->syscall_msrs[2]);
	rdmsrl(MSR_SYSCALL_MASK, c->syscall_msrs[3]);
	vmx_flush_everything();
	c->on = true;
	return 0;

failed:
	cr4_clear_bits(X86_CR4_VMXE);
	intel_pt_handle_vmx(0);
	return -EFAULT;
}

/*
 * Make the VMCS of @arg not current on this CPU (VMCLEAR writes its data back
 * to memory), so that another CPU may load it. Interrupts are off: in an IPI,
 * in hardware_disable, or on the CPU itself through smp_call_function_single.
 */
static void vmx_vmcs_clear_here(void *arg)
{
	struct vmx_vcpu *vmx = arg;

	/* Already cleared: hardware_disable got here first. */
	if (vmx->cpu != smp_processor_id())
		return;
	vmx_vmclear(vmx->vmcs_pa);
	list_del(&vmx->loaded_link);
	vmx->launched = false;
	if (this_cpu_read(vmx_cpu.current_vmcs) == vmx)
		this_cpu_write(vmx_cpu.current_vmcs, NULL);
	/*
	 * Everything above is done before another CPU can see the VMCS as free
	 * (pairs with the READ_ONCE in vmx_vcpu_load).
	 */
	smp_store_release(&vmx->cpu, -1);
}

void vmx_hardware_disable(void)
{
	struct vmx_cpu *c = this_cpu_ptr(&vmx_cpu);
	struct vmx_vcpu *vmx, *next;
	unsigned long flags;

	/* Callers keep preemption off; CPU hotplug leaves interrupts on. */
	local_irq_save(flags);
	list_for_each_entry_safe(vmx, next, &c->loaded, loaded_link)
		vmx_vmcs_clear_here(vmx);
	c->current_vmcs = NULL;
	c->on = false;
	asm goto("1: vmxoff\n\t"
			  _ASM_EXTABLE(1b, %l[faulted])
			  : : : "cc", "memory" : faulted);
	goto out;
faulted:
	pr_err_ratelimited(KVMPP_VMX_LOG_PREFIX "VMXOFF faulted on CPU %d\n",
			   smp_processor_id());
out:
	cr4_clear_bits(X86_CR4_VMXE);
	intel_pt_handle_vmx(0);
	local_irq_restore(flags);
}

/*
 * Make the vCPU's VMCS current on this CPU (VMPTRLD, after a VMCLEAR on the
 * CPU it was loaded on before, if another). Returns 0 with interrupts off
 * (the caller does its VMREADs and VMWRITEs, then local_irq_restore(*flags)),
 * or -EIO with interrupts as they were when this CPU is not in VMX operation
 * (a reboot turned it off under the VM). Call with interrupts on: moving the
 * VMCS from another CPU takes an IPI.
 */
int vmx_vcpu_load(struct vmx_vcpu *vmx, unsigned long *flags)
{
	struct vmx_cpu *c;
	int cpu, r;

	for (;;) {
		local_irq_save(*flags);
		cpu = READ_ONCE(vmx->cpu);
		if (cpu == smp_processor_id())
			goto make_current;
		if (cpu < 0)
			break;
		local_irq_restore(*flags);
		/* Runs the function here, interrupts off, if we moved to @cpu meanwhile. */
		r = smp_call_function_single(cpu, vmx_vmcs_clear_here, vmx, 1);
		if (r) {
			pr_err_ratelimited(KVMPP_VMX_LOG_PREFIX "cannot clear a VMCS on CPU %d: %d\n",
					   cpu, r);
			return -EIO;
		}
	}

	c = this_cpu_ptr(&vmx_cpu);
	if (!c->on || vmx_vmptrld(vmx->vmcs_pa)) {
		local_irq_restore(*flags);
		return -EIO;
	}
	c->current_vmcs = vmx;
	list_add(&vmx->loaded_link, &c->loaded);
	WRITE_ONCE(vmx->cpu, smp_processor_id());
	vmx->launched = false;
	/* What the host fields hold is per CPU (TSS, GDT, per-CPU data). */
	vmx_set_host_cpu_state(vmx);
	/* This CPU may hold translations of this vCPU from an earlier stay. */
	vmx->flush_tdp = true;
	return 0;

make_current:
	/* Active here, but another vCPU's VMCS may have been loaded since. */
	c = this_cpu_ptr(&vmx_cpu);
	if (c->current_vmcs != vmx) {
		if (vmx_vmptrld(vmx->vmcs_pa)) {
			local_irq_restore(*flags);
			return -EIO;
		}
		c->current_vmcs = vmx;
	}
	return 0;
}

/* Before the VMCS is freed: VMCLEAR it wherever it is current. Sleeps (IPI). */
void vmx_vcpu_unload(struct vmx_vcpu *vmx)
{
	int cpu = READ_ONCE(vmx->cpu);

	if (cpu >= 0)
		smp_call_function_single(cpu, vmx_vmcs_clear_here, vmx, 1);
}

const u64 *vmx_host_syscall_msrs(void)
{
	return this_cpu_ptr(&vmx_cpu)->syscall_msrs;
}

/* A free VPID, or 0 when VPIDs are off or all taken (the vCPU then runs untagged). */
u16 vmx_alloc_vpid(void)
{
	unsigned long vpid;

	if (!vmx_config.vpid)
		return 0;
	spin_lock(&vmx_vpid_lock);
	vpid = find_first_zero_bit(vmx_vpid_used, VMX_NR_VPIDS);
	if (vpid < VMX_NR_VPIDS)
		__set_bit(vpid, vmx_vpid_used);
	else
		vpid = 0;
	spin_unlock(&vmx_vpid_lock);
	return vpid;
}

void vmx_free_vpid(u16 vpid)
{
	if (!vpid)
		return;
	spin_lock(&vmx_vpid_lock);
	__clear_bit(vpid, vmx_vpid_used);
	spin_unlock(&vmx_vpid_lock);
}

/*
 * The flushes owed before the next entry; interrupts off, VMCS loaded.
 *
 * With EPT the guest's translations are "combined mappings" tagged with the
 * VPID and the EPTP (SDM 29.4.1). INVEPT of the EPTP drops every one of them
 * whatever its VPID, so it serves both when the EPT tables changed (a TDP
 * zap: KVMPP_REQ_TLB_FLUSH) and when this CPU may hold stale ones. When only
 * the guest's own paging state changed behind the CPU's back (KVM_SET_SREGS,
 * an emulated CR write), INVVPID of the vCPU's VPID is enough.
 */
void vmx_flush_before_entry(struct vmx_vcpu *vmx)
{
	u64 cap = vmx_config.ept_vpid_cap;

	if (vmx->flush_tdp) {
		if (cap & VMX_EPT_EXTENT_CONTEXT_BIT)
			vmx_invept(VMX_EPT_EXTENT_CONTEXT, vmx->eptp);
		else
			vmx_invept(VMX_EPT_EXTENT_GLOBAL, 0);
	} else if (vmx->flush_guest && vmx->vpid) {
		/* Without VPIDs, every entry and exit flushes VPID 0 already. */
		if (cap >> 32 & VMX_VPID_EXTENT_SINGLE_CONTEXT_BIT)
			vmx_invvpid(VMX_VPID_EXTENT_SINGLE_CONTEXT, vmx->vpid);
		else
			vmx_invvpid(VMX_VPID_EXTENT_ALL_CONTEXT, 0);
	}
	vmx->flush_tdp = false;
	vmx->flush_guest = false;
}
