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

/*
 * What the callbacks need: the vCPU, its paging mode (read once per call of
 * the emulator), and the guest-physical address of the NPT/EPT fault that
 * started the instruction, when there is one (@fault_gpa_valid), and whether
 * no memslot backs it (@fault_no_slot: not a write to a read-only slot).
 */
struct mmio_env {
	struct kvmpp_vcpu *vcpu;
	struct kvmpp_walk_mode mode;
	struct fxregs_state *fx;	/* where load_fpu saved the FPU state */
	u64 fault_gpa;
	bool fault_gpa_valid;
	bool fault_no_slot;
};

/*
 * Linear to guest-physical; KVMPP_EMUL_FAULT when the walk delivered a fault.
 * As KVM does, a data access at the faulting page offset of an instruction
 * with one memory operand (not a string instruction) takes the fault's
 * address instead of walking the guest's page tables again: the CPU has
 * just translated it, permissions included.
 */
static int env_translate(struct mmio_env *env, u64 linear, u32 access, u64 *gpa)
{
	int r;

	if (env->fault_gpa_valid && !(access & KVMPP_WALK_FETCH) &&
	    offset_in_page(linear) == offset_in_page(env->fault_gpa) &&
	    !kvmpp_emul_is_string(&env->vcpu->arch.emul)) {
		*gpa = env->fault_gpa;
		return 0;
	}
	r = kvmpp_x86_translate_in(env->vcpu, &env->mode, linear, access, gpa);

	return r > 0 ? KVMPP_EMUL_FAULT : r;
}

/* RAM through the memslots, or KVMPP_EMUL_IO when no slot backs @gpa for the access. */
static int env_access(struct mmio_env *env, u64 linear, void *buf, unsigned int len,
		      bool write, u32 access, u64 *gpa)
{
	int r = env_translate(env, linear, access, gpa);

	if (r)
		return r;
	/* The page the fault found no slot for: MMIO without another lookup. */
	if (env->fault_no_slot && env->fault_gpa_valid &&
	    (*gpa >> PAGE_SHIFT) == (env->fault_gpa >> PAGE_SHIFT) && !(access & KVMPP_WALK_FETCH))
		return KVMPP_EMUL_IO;
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
 * The guest's XMM and MMX registers are live in the CPU while KVM_RUN runs
 * (fpu.c); a preemption may have saved them to memory, and
 * switch_fpu_return() puts them back. FXSAVE reads them all without
 * changing any state; only the registers the instruction wrote are loaded
 * back, an MMX one with MOVQ, which also does the MMX instruction's x87
 * side effects (tags valid, TOP 0, bits 79:64 set).
 */
static void fpregs_make_live(void)
{
	fpregs_lock();
	if (test_thread_flag(TIF_NEED_FPU_LOAD))
		switch_fpu_return();
}

static void fpu_regs_get(struct kvmpp_emul_cpu *cpu, struct fxregs_state *fx)
{
	int i;

	fpregs_make_live();
	asm volatile("fxsaveq %0" : "=m"(*fx));
	fpregs_unlock();
	memcpy(cpu->xmm, fx->xmm_space, sizeof(cpu->xmm));
	for (i = 0; i < ARRAY_SIZE(cpu->mm); i++)
		memcpy(&cpu->mm[i], &fx->st_space[4 * i], sizeof(cpu->mm[i]));
	cpu->mm_written = 0;
}

#define FPU_REGS_8(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7)
#define FPU_REGS_16(op) FPU_REGS_8(op) op(8) op(9) op(10) op(11) op(12) op(13) op(14) op(15)

/* emul_ops.load_fpu: only SSE and MMX moves need the registers. */
static void emul_load_fpu(void *ctx, struct kvmpp_emul_cpu *cpu)
{
	fpu_regs_get(cpu, ((struct mmio_env *)ctx)->fx);
}

static void fpu_regs_put(const struct kvmpp_emul_cpu *cpu, const struct fxregs_state *fx)
{
	const u8 (*old)[16] = (const u8 (*)[16])fx->xmm_space;

	if (!cpu->fpu_valid ||
	    (!memcmp(cpu->xmm, old, sizeof(cpu->xmm)) && !cpu->mm_written))
		return;
	fpregs_make_live();
#define XMM_PUT(n) \
	if (memcmp(cpu->xmm[n], old[n], 16)) \
		asm volatile("movdqu %0, %%xmm" #n : : "m"(*(const u8 (*)[16])cpu->xmm[n]));
	FPU_REGS_16(XMM_PUT)
#undef XMM_PUT
#define MM_PUT(n) \
	if (cpu->mm_written & (1u << n)) \
		asm volatile("movq %0, %%mm" #n : : "m"(cpu->mm[n]));
	FPU_REGS_8(MM_PUT)
#undef MM_PUT
	fpregs_unlock();
}

/* The emulator's view of the vCPU (the GPRs are in ModRM order, as __VCPU_REGS_*). */
static void cpu_load(struct kvmpp_vcpu *vcpu, struct kvmpp_emul_cpu *cpu,
		     const struct kvmpp_walk_mode *mode)
{
	bool cs_l = false, cs_db = false;

	BUILD_BUG_ON(__VCPU_REGS_RAX != 0 || __VCPU_REGS_RDI != 7 || __VCPU_REGS_R15 != 15);
	BUILD_BUG_ON((int)KVMPP_EMUL_ES != (int)KVMPP_SEG_ES || (int)KVMPP_EMUL_GS != (int)KVMPP_SEG_GS);
	memcpy(cpu->gprs, vcpu->arch.regs, sizeof(cpu->gprs));
	cpu->rip = vcpu->arch.rip;
	cpu->rflags = vcpu->arch.rflags;
	kvmpp_backend->get_code_segments(vcpu, cpu->seg_base, &cs_l, &cs_db);
	cpu->cr0 = mode->cr0;
	cpu->cr4 = mode->cr4;
	if ((mode->efer & EFER_LMA) && cs_l)
		cpu->code_size = 8;
	else if ((mode->cr0 & X86_CR0_PE) && !(cpu->rflags & X86_EFLAGS_VM) && cs_db)
		cpu->code_size = 4;
	else
		cpu->code_size = 2;
	cpu->fpu_valid = false;
}

static void cpu_store(struct kvmpp_vcpu *vcpu, const struct kvmpp_emul_cpu *cpu,
		      const struct fxregs_state *fx)
{
	memcpy(vcpu->arch.regs, cpu->gprs, sizeof(cpu->gprs));
	vcpu->arch.rip = cpu->rip;
	vcpu->arch.rflags = cpu->rflags;
	fpu_regs_put(cpu, fx);
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

/* Report what the emulator returned, as an exit handler does (1: re-enter, 0: exit). */
static int mmio_result(struct kvmpp_vcpu *vcpu, int r)
{
	struct kvmpp_emul_ctxt *ctxt = &vcpu->arch.emul;
	struct kvm_run *run = vcpu->run;

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
	default:
		return r < 0 ? r : -EIO;
	}
}

/* A write into a coalesced zone goes into the ring instead of to userspace. */
static bool coalesced(struct kvmpp_vcpu *vcpu, int r)
{
	const struct kvmpp_emul_io *io = &vcpu->arch.emul.io;

	return r == KVMPP_EMUL_IO && io->write &&
	       kvmpp_coalesced_write(vcpu->vm, io->gpa, io->len, io->data, false);
}

/* Run the emulator until the instruction is done or needs userspace. */
static int emulate(struct kvmpp_vcpu *vcpu, u64 fault_gpa, bool fault_gpa_valid,
		   bool fault_no_slot)
{
	struct kvmpp_emul_ctxt *ctxt = &vcpu->arch.emul;
	struct fxregs_state fx;
	struct mmio_env env = {
		.vcpu = vcpu, .fx = &fx,
		.fault_gpa = fault_gpa, .fault_gpa_valid = fault_gpa_valid,
		.fault_no_slot = fault_no_slot,
	};
	const struct kvmpp_emul_ops ops = {
		.ctx = &env, .fetch = emul_fetch, .read = emul_read, .write = emul_write,
		.cmpxchg = emul_cmpxchg, .load_fpu = emul_load_fpu,
	};
	struct kvmpp_emul_cpu cpu;
	int r;

	kvmpp_x86_walk_mode(vcpu, &env.mode);
	cpu_load(vcpu, &cpu, &env.mode);
	do {
		r = kvmpp_emulate(&ops, &cpu, ctxt);
	} while (coalesced(vcpu, r));
	cpu_store(vcpu, &cpu, &fx);

	if (r == KVMPP_EMUL_UNHANDLEABLE)
		return emulation_failed(vcpu, &env, &cpu);
	return mmio_result(vcpu, r);
}

int kvmpp_x86_emulate_mmio(struct kvmpp_vcpu *vcpu, u64 gpa, bool fetch, bool no_slot)
{
	/* A new instruction: nothing of an earlier one may be pending. */
	kvmpp_emul_reset(&vcpu->arch.emul);
	return emulate(vcpu, gpa, !fetch, no_slot);
}

/*
 * The KVM_RUN after a KVM_EXIT_MMIO: hand over what userspace read and go
 * on. After a write the instruction has already completed (or its next
 * write is ready): that needs none of the vCPU state, unless REP
 * iterations are left.
 */
int kvmpp_x86_complete_mmio(struct kvmpp_vcpu *vcpu)
{
	struct kvmpp_emul_ctxt *ctxt = &vcpu->arch.emul;
	int r;

	if (ctxt->io.write) {
		do {
			r = kvmpp_emul_complete_write(ctxt, vcpu->arch.rip);
		} while (coalesced(vcpu, r));
		if (r != KVMPP_EMUL_AGAIN)
			return mmio_result(vcpu, r);
	} else {
		memcpy(ctxt->io.data, vcpu->run->mmio.data, ctxt->io.len);
	}
	return emulate(vcpu, 0, false, false);
}
