// SPDX-License-Identifier: GPL-2.0-only
/*
 * MMIO: the guest touched guest-physical memory that no memslot backs (or
 * wrote to a read-only slot). Without decode assists nothing tells us what
 * the instruction was, so it is fetched through the guest's page tables and
 * run through the instruction emulator (emulate.c), whose memory callbacks
 * are here. Each access that reaches MMIO becomes a KVM_EXIT_MMIO, unless it
 * is a write into a coalesced zone; the instruction waits in
 * vcpu->arch.emul until userspace has answered and the next KVM_RUN calls
 * kvmpp_x86_complete_mmio().
 *
 * Everything here runs in KVM_RUN with the guest's FPU state loaded
 * (vcpu.c), under vcpu->mutex.
 */
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <asm/fpu/api.h>
#include <asm/traps.h>

#include "../core/kvmpp.h"
#include "walker.h"

/* What the callbacks need: the vCPU and its paging mode, read once per instruction. */
struct mmio_env {
	struct kvmpp_vcpu *vcpu;
	struct kvmpp_walk_mode mode;
};

/* Linear to guest-physical; KVMPP_EMUL_FAULT when the walk delivered a fault. */
static int env_translate(struct mmio_env *env, u64 linear, u32 access, u64 *gpa)
{
	int r = kvmpp_x86_translate_in(env->vcpu, &env->mode, linear, access, gpa);

	return r > 0 ? KVMPP_EMUL_FAULT : r;
}

/* RAM through the memslots, or KVMPP_EMUL_IO when no slot backs @gpa for the access. */
static int env_access(struct mmio_env *env, u64 linear, void *buf, unsigned int len,
		      bool write, u32 access, u64 *gpa)
{
	int r = env_translate(env, linear, access, gpa);

	if (r)
		return r;
	r = kvmpp_access_guest_ram(env->vcpu->vm, *gpa, buf, len, write);
	return r == -ENOENT ? KVMPP_EMUL_IO : r;
}

static int emul_fetch(void *ctx, u64 linear, void *buf, unsigned int len)
{
	u64 gpa;

	return env_access(ctx, linear, buf, len, false, KVMPP_WALK_FETCH, &gpa);
}

static int emul_read(void *ctx, u64 linear, void *buf, unsigned int len, u64 *gpa)
{
	return env_access(ctx, linear, buf, len, false, 0, gpa);
}

static int emul_write(void *ctx, u64 linear, const void *buf, unsigned int len, u64 *gpa)
{
	return env_access(ctx, linear, (void *)buf, len, true, KVMPP_WALK_WRITE, gpa);
}

static int emul_cmpxchg(void *ctx, u64 linear, const void *old, const void *new,
			unsigned int len, u64 *gpa)
{
	struct mmio_env *env = ctx;
	int r = env_translate(env, linear, KVMPP_WALK_WRITE, gpa);

	if (r)
		return r;
	r = kvmpp_x86_cmpxchg_gpa(env->vcpu->vm, *gpa, old, new, len);
	if (r == 1)
		return KVMPP_EMUL_CHANGED;
	if (r == -ENOENT)
		return KVMPP_EMUL_IO;
	if (r == -EINVAL)	/* not a size cmpxchg has: a plain write */
		return emul_write(ctx, linear, new, len, gpa);
	return r;
}

/*
 * XMM0-15 are the guest's while KVM_RUN runs (fpu.c); a preemption may have
 * saved them to memory, and switch_fpu_return() puts them back.
 */
#define XMM_ALL(op) \
	op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7) \
	op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)

static void xmm_get(u8 xmm[16][16])
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
#define XMM_GET(n) asm volatile("movdqu %%xmm" #n ", %0" : "=m"(*(u8 (*)[16])xmm[n]));
	XMM_ALL(XMM_GET)
#undef XMM_GET
	fpregs_unlock();
}

static void xmm_set(u8 xmm[16][16])
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
#define XMM_SET(n) asm volatile("movdqu %0, %%xmm" #n : : "m"(*(u8 (*)[16])xmm[n]));
	XMM_ALL(XMM_SET)
#undef XMM_SET
	fpregs_unlock();
}

/* The emulator's view of the vCPU (the GPRs are in ModRM order, as __VCPU_REGS_*). */
static void cpu_load(struct kvmpp_vcpu *vcpu, struct kvmpp_emul_cpu *cpu,
		     const struct kvm_sregs *sregs)
{
	const struct kvm_segment *segs[KVMPP_EMUL_NR_SEGS] = {
		&sregs->es, &sregs->cs, &sregs->ss, &sregs->ds, &sregs->fs, &sregs->gs,
	};
	int i;

	BUILD_BUG_ON(__VCPU_REGS_RAX != 0 || __VCPU_REGS_RDI != 7 || __VCPU_REGS_R15 != 15);
	memcpy(cpu->gprs, vcpu->arch.regs, sizeof(cpu->gprs));
	cpu->rip = vcpu->arch.rip;
	cpu->rflags = vcpu->arch.rflags;
	for (i = 0; i < KVMPP_EMUL_NR_SEGS; i++)
		cpu->seg_base[i] = segs[i]->base;
	cpu->cr0 = sregs->cr0;
	cpu->cr4 = sregs->cr4;
	if ((sregs->efer & EFER_LMA) && sregs->cs.l)
		cpu->code_size = 8;
	else if ((sregs->cr0 & X86_CR0_PE) && !(cpu->rflags & X86_EFLAGS_VM) && sregs->cs.db)
		cpu->code_size = 4;
	else
		cpu->code_size = 2;
	xmm_get(cpu->xmm);
}

static void cpu_store(struct kvmpp_vcpu *vcpu, struct kvmpp_emul_cpu *cpu, const u8 xmm[16][16])
{
	memcpy(vcpu->arch.regs, cpu->gprs, sizeof(cpu->gprs));
	vcpu->arch.rip = cpu->rip;
	vcpu->arch.rflags = cpu->rflags;
	if (memcmp(xmm, cpu->xmm, sizeof(cpu->xmm)))
		xmm_set(cpu->xmm);
}

/*
 * What KVM does with an instruction it cannot emulate: #UD for the guest,
 * and at CPL 0 also KVM_EXIT_INTERNAL_ERROR with the bytes KVM's emulator
 * fetches (up to 15, not beyond the page). 1: re-enter, 0: exit.
 */
static int emulation_failed(struct kvmpp_vcpu *vcpu, struct mmio_env *env,
			    const struct kvmpp_emul_cpu *cpu)
{
	u64 linear = cpu->seg_base[KVMPP_EMUL_CS] + cpu->rip, gpa;
	unsigned int len;
	u8 bytes[KVMPP_EMUL_MAX_INSN];
	int r;

	if (cpu->code_size != 8)
		linear = (u32)linear;
	len = min_t(unsigned int, sizeof(bytes), PAGE_SIZE - offset_in_page(linear));
	kvmpp_backend->inject_exception(vcpu, X86_TRAP_UD, false, 0);
	if (env->mode.cpl != 0)
		return 1;
	r = env_access(env, linear, bytes, len, false, KVMPP_WALK_FETCH, &gpa);
	return kvmpp_x86_emulation_failure_insn(vcpu, bytes, r ? 0 : len);
}

/* Run the emulator until the instruction is done or needs userspace. */
static int emulate(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_emul_ctxt *ctxt = &vcpu->arch.emul;
	struct mmio_env env = { .vcpu = vcpu };
	const struct kvmpp_emul_ops ops = {
		.ctx = &env, .fetch = emul_fetch, .read = emul_read, .write = emul_write,
		.cmpxchg = emul_cmpxchg,
	};
	struct kvm_run *run = vcpu->run;
	struct kvmpp_emul_cpu cpu;
	struct kvm_sregs sregs;
	u8 xmm[16][16];
	int r;

	kvmpp_backend->get_sregs(vcpu, &sregs);
	kvmpp_x86_walk_mode(vcpu, &env.mode);
	cpu_load(vcpu, &cpu, &sregs);
	memcpy(xmm, cpu.xmm, sizeof(xmm));
	for (;;) {
		r = kvmpp_emulate(&ops, &cpu, ctxt);
		if (r != KVMPP_EMUL_IO || !ctxt->io.write ||
		    !kvmpp_coalesced_write(vcpu->vm, ctxt->io.gpa, ctxt->io.len, ctxt->io.data,
					   false))
			break;
		/* Coalesced: the write is userspace's to see later; go on. */
	}
	cpu_store(vcpu, &cpu, xmm);

	switch (r) {
	case KVMPP_EMUL_DONE:
	case KVMPP_EMUL_FAULT:
		return 1;
	case KVMPP_EMUL_IO:
		run->exit_reason = KVM_EXIT_MMIO;
		run->mmio.phys_addr = ctxt->io.gpa;
		run->mmio.len = ctxt->io.len;
		run->mmio.is_write = ctxt->io.write;
		/* As KVM: the data of a read is left as it was, for userspace to fill. */
		if (ctxt->io.write)
			memcpy(run->mmio.data, ctxt->io.data, ctxt->io.len);
		return 0;
	case KVMPP_EMUL_EXCEPTION:
		kvmpp_backend->inject_exception(vcpu, ctxt->exception.vector,
						ctxt->exception.has_error_code,
						ctxt->exception.error_code);
		return 1;
	case KVMPP_EMUL_UNHANDLEABLE:
		return emulation_failed(vcpu, &env, &cpu);
	default:
		return r < 0 ? r : -EIO;
	}
}

int kvmpp_x86_emulate_mmio(struct kvmpp_vcpu *vcpu)
{
	/* A new instruction: nothing of an earlier one may be pending. */
	kvmpp_emul_reset(&vcpu->arch.emul);
	return emulate(vcpu);
}

/* The KVM_RUN after a KVM_EXIT_MMIO: hand over what userspace read, go on. */
int kvmpp_x86_complete_mmio(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_emul_ctxt *ctxt = &vcpu->arch.emul;

	if (!ctxt->io.write)
		memcpy(ctxt->io.data, vcpu->run->mmio.data, ctxt->io.len);
	return emulate(vcpu);
}
