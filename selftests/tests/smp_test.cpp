// SPDX-License-Identifier: GPL-2.0
//
// Several vCPUs of one VM running at the same time, each in its own thread
// (KVM_RUN on different vCPU fds proceeds in parallel: kvm_vcpu_ioctl takes
// only the vCPU's own mutex, virt/kvm/kvm_main.c of Linux 6.1), on guest
// memory they share (one memslot, one set of host pages behind it).
//
// The extra vCPUs are put into the mode of vCPU 0 with guest::enter_mode; all
// of them share the Machine's tables. The guests use no stack and run with
// interrupts off, so sharing RSP is harmless.
#include "guest_support.h"
#include "test.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <thread>
#include <vector>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
using kvmpp::Vcpu;
namespace exits = kvmpp::exits;

namespace {

constexpr unsigned kVcpus = 4;

// The Machine's vCPU 0 and kVcpus - 1 more, all in `mode` at `entry`.
std::vector<Vcpu *> make_vcpus(Machine &m, std::vector<Vcpu> &extra, Mode mode, std::uint64_t entry)
{
	ASSERT_RESULT(enter_mode(m.vcpu, mode, entry));
	for (unsigned id = 1; id < kVcpus; id++) {
		CONTEXT("vCPU %u", id);
		extra.push_back(ASSERT_RESULT(m.vm.create_vcpu(id)));
		ASSERT_RESULT(enter_mode(extra.back(), mode, entry));
	}
	std::vector<Vcpu *> vcpus{&m.vcpu};
	for (Vcpu &vcpu : extra)
		vcpus.push_back(&vcpu);
	return vcpus;
}

// Sets some GPRs of a vCPU (after enter_mode zeroed them).
void set_gprs(const Vcpu &vcpu, std::uint64_t rcx, std::uint64_t rdx, std::uint64_t rdi)
{
	kvm_regs regs = ASSERT_RESULT(vcpu.get_regs());
	regs.rcx = rcx;
	regs.rdx = rdx;
	regs.rdi = rdi;
	ASSERT_RESULT(vcpu.set_regs(regs));
}

// Pins the calling thread to the n-th CPU it may run on (round robin), so
// that the vCPU threads run on different host CPUs where there are several.
// Best effort: without it the scheduler still spreads them.
void pin_to_cpu(unsigned n)
{
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	const int count = CPU_COUNT(&allowed);
	if (count <= 1)
		return;
	int wanted = static_cast<int>(n % count);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || wanted-- != 0)
			continue;
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
		return;
	}
}

// What one vCPU thread saw: its first failure (empty if none) and the global
// order numbers of its first and last exits.
struct ThreadResult {
	std::string failure;
	std::uint64_t first_exit = 0, last_exit = 0;
};

// Runs one thread per vCPU, all released together; `body(index, vcpu,
// result, next_exit)` runs the vCPU and fills result.
template <typename Body>
std::vector<ThreadResult> run_in_threads(const std::vector<Vcpu *> &vcpus, Body body)
{
	std::vector<ThreadResult> results(vcpus.size());
	std::atomic<unsigned> ready{0};
	std::atomic<std::uint64_t> exit_order{0};
	std::vector<std::thread> threads;
	for (unsigned i = 0; i < vcpus.size(); i++) {
		threads.emplace_back([&, i] {
			pin_to_cpu(i);
			ready.fetch_add(1);
			while (ready.load() < vcpus.size())
				std::this_thread::yield();
			body(i, *vcpus[i], results[i], exit_order);
		});
	}
	for (std::thread &thread : threads)
		thread.join();
	return results;
}

// How many of the other vCPUs' exits fell between a vCPU's first and last
// exit, summed over vCPUs: 0 means the vCPUs ran strictly one after another.
std::uint64_t overlap(const std::vector<ThreadResult> &results)
{
	std::uint64_t total = 0;
	for (std::size_t i = 0; i < results.size(); i++)
		for (std::size_t j = 0; j < results.size(); j++)
			if (i != j && results[j].first_exit < results[i].last_exit &&
			    results[j].last_exit > results[i].first_exit)
				total++;
	return total;
}

} // namespace

// Without an in-kernel local APIC, KVM still gives every new vCPU the APIC
// base MSR's reset value: the default base 0xfee00000, enabled, and the BSP
// flag on vCPU 0 only (kvm_lapic_reset with kvm_vcpu_is_reset_bsp: the BSP
// is vCPU 0 unless KVM_SET_BOOT_CPU_ID said otherwise). KVM_GET_SREGS and
// KVM_GET_MSRS (MSR 0x1b) report it alike.
KVMPP_TEST(smp, apic_base_bsp, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	kvmpp::Vm vm = ASSERT_RESULT(kvm.create_vm());
	for (unsigned id : {0u, 1u, 2u, 7u}) {
		CONTEXT("vCPU %u", id);
		const Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(id));
		const std::uint64_t want = id == 0 ? 0xfee00900 : 0xfee00800;
		ASSERT_EQ(ASSERT_RESULT(vcpu.get_sregs()).apic_base, want);
		ASSERT_EQ(ASSERT_RESULT(vcpu.get_msr(0x1b)), want);
	}
}

// Four vCPUs, each in its own thread, run the same 64-bit code at the same
// time: a loop that writes its loop counter (RCX, from 200 down to 1) to port
// DX (0x100 + vCPU id) and then halts. Every thread sees exactly its own
// vCPU's 200 exits, in order, then KVM_EXIT_HLT: registers, exits and the
// vCPU mappings are per vCPU, and KVM_RUN of one vCPU does not wait for or
// disturb another's.
KVMPP_TEST(smp, threads_run_concurrently, .timeout_s = 120, .needs_vcpus = true)
{
	constexpr std::uint32_t kOuts = 200;
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	Assembler code(64, layout::kCode);
	const Label loop = code.here();
	code.mov(Reg::eax, Reg::ecx).out_dx(Reg::al).dec(Reg::ecx).jnz(loop).hlt();
	m.load(code);

	std::vector<Vcpu> extra;
	const std::vector<Vcpu *> vcpus = make_vcpus(m, extra, Mode::long64, layout::kCode);
	for (unsigned i = 0; i < vcpus.size(); i++)
		set_gprs(*vcpus[i], kOuts, 0x100 + i, 0);

	const std::vector<ThreadResult> results = run_in_threads(
		vcpus, [&](unsigned i, Vcpu &vcpu, ThreadResult &result,
			   std::atomic<std::uint64_t> &exit_order) {
			auto failed = [&](const std::string &what) { result.failure = what; };
			for (std::uint32_t n = kOuts; n >= 1; n--) {
				kvmpp::Result<kvmpp::Exit> exit = vcpu.run();
				const std::uint64_t order = exit_order.fetch_add(1);
				if (n == kOuts)
					result.first_exit = order;
				result.last_exit = order;
				if (!exit)
					return failed("KVM_RUN: " + describe_error(exit.error()));
				const exits::Io *io = std::get_if<exits::Io>(&*exit);
				if (!io)
					return failed("exit " + std::to_string(kOuts - n) + ": " +
						      kvmpp::describe(*exit));
				if (!io->is_out() || io->port != 0x100 + i || io->size != 1 ||
				    io->count != 1 || io->value() != n)
					return failed("exit " + std::to_string(kOuts - n) + ": port " +
						      std::to_string(io->port) + " value " +
						      std::to_string(io->value()) + ", expected port " +
						      std::to_string(0x100 + i) + " value " +
						      std::to_string(n));
			}
			kvmpp::Result<kvmpp::Exit> exit = vcpu.run();
			if (!exit)
				return failed("KVM_RUN: " + describe_error(exit.error()));
			if (!std::holds_alternative<exits::Hlt>(*exit))
				return failed("last exit: " + kvmpp::describe(*exit));
		});

	for (unsigned i = 0; i < vcpus.size(); i++) {
		CONTEXT("vCPU %u", i);
		if (!results[i].failure.empty())
			note("vCPU %u: %s", i, results[i].failure.c_str());
		ASSERT_TRUE(results[i].failure.empty());
		const kvm_regs regs = ASSERT_RESULT(vcpus[i]->get_regs());
		ASSERT_EQ(regs.rcx, 0u);
		ASSERT_EQ(regs.rdx, 0x100u + i);
		ASSERT_EQ(regs.rip, code.address());
	}
	note("exits of other vCPUs inside each vCPU's run: %llu",
	     static_cast<unsigned long long>(overlap(results)));
}

// Four vCPUs in their own threads increment one counter in guest memory with
// LOCK XADD, 10 rounds of 2000 each (an OUT ends each round, so the vCPUs
// re-enter the guest often and interleave), storing every old value XADD
// returns into an array of their own (STOSD). Afterwards the counter is the
// sum of all increments and the old values are 0 .. total-1, each exactly
// once: every vCPU, on whichever host CPU, saw and updated the same guest
// page atomically.
KVMPP_TEST(smp, shared_memory_atomic, .timeout_s = 120, .needs_vcpus = true)
{
	constexpr std::uint32_t kRounds = 10, kPerRound = 2000;
	constexpr std::uint32_t kPerVcpu = kRounds * kPerRound;
	constexpr std::uint64_t kCounter = layout::kData;
	constexpr std::uint64_t kArrays = layout::kData + 0x1000;
	constexpr std::uint64_t kArraySize = 0x14000; // >= kPerVcpu * 4
	static_assert(kArraySize >= kPerVcpu * 4);
	static_assert(kArrays + kVcpus * kArraySize <= layout::kMinMemory);

	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	Assembler code(64, layout::kCode);
	code.mov(Reg::ebx, kRounds);
	const Label round = code.here();
	code.mov(Reg::ecx, kPerRound);
	const Label inner = code.here();
	code.mov(Reg::eax, 1)
		// lock xadd dword [kCounter], eax (absolute disp32, SIB without base)
		.raw({0xf0, 0x0f, 0xc1, 0x04, 0x25, static_cast<std::uint8_t>(kCounter),
		      static_cast<std::uint8_t>(kCounter >> 8),
		      static_cast<std::uint8_t>(kCounter >> 16),
		      static_cast<std::uint8_t>(kCounter >> 24)})
		.raw({0xab}) // stosd: [rdi] = eax, rdi += 4
		.dec(Reg::ecx)
		.jnz(inner)
		.out(0x20, Reg::al)
		.dec(Reg::ebx)
		.jnz(round)
		.hlt();
	m.load(code);

	std::vector<Vcpu> extra;
	const std::vector<Vcpu *> vcpus = make_vcpus(m, extra, Mode::long64, layout::kCode);
	for (unsigned i = 0; i < vcpus.size(); i++)
		set_gprs(*vcpus[i], 0, 0, kArrays + i * kArraySize);

	const std::vector<ThreadResult> results = run_in_threads(
		vcpus, [&](unsigned, Vcpu &vcpu, ThreadResult &result,
			   std::atomic<std::uint64_t> &exit_order) {
			auto failed = [&](const std::string &what) { result.failure = what; };
			for (std::uint32_t r = 0; r <= kRounds; r++) {
				kvmpp::Result<kvmpp::Exit> exit = vcpu.run();
				const std::uint64_t order = exit_order.fetch_add(1);
				if (r == 0)
					result.first_exit = order;
				result.last_exit = order;
				if (!exit)
					return failed("KVM_RUN: " + describe_error(exit.error()));
				const bool last = r == kRounds;
				const exits::Io *io = std::get_if<exits::Io>(&*exit);
				if (last ? !std::holds_alternative<exits::Hlt>(*exit)
					 : !io || io->port != 0x20)
					return failed("round " + std::to_string(r) + ": " +
						      kvmpp::describe(*exit));
			}
		});

	std::vector<std::uint32_t> all;
	std::vector<std::uint8_t> owner(kVcpus * kPerVcpu, 0xff); // which vCPU got each old value
	for (unsigned i = 0; i < vcpus.size(); i++) {
		CONTEXT("vCPU %u", i);
		if (!results[i].failure.empty())
			note("vCPU %u: %s", i, results[i].failure.c_str());
		ASSERT_TRUE(results[i].failure.empty());
		const kvm_regs regs = ASSERT_RESULT(vcpus[i]->get_regs());
		ASSERT_EQ(regs.rdi, kArrays + i * kArraySize + kPerVcpu * 4);
		const auto values = m.memory.span<std::uint32_t>(kArrays + i * kArraySize, kPerVcpu);
		// A vCPU's own increments happen in its program order.
		for (std::uint32_t k = 1; k < kPerVcpu; k++) {
			CONTEXT("increment %u", k);
			ASSERT_TRUE(values[k - 1] < values[k]);
		}
		all.insert(all.end(), values.begin(), values.end());
		for (std::uint32_t value : values)
			if (value < owner.size())
				owner[value] = static_cast<std::uint8_t>(i);
	}
	const std::uint32_t total = kVcpus * kPerVcpu;
	ASSERT_EQ(m.memory.read<std::uint32_t>(kCounter), total);
	std::sort(all.begin(), all.end());
	for (std::uint32_t k = 0; k < total; k++) {
		CONTEXT("old value #%u", k);
		ASSERT_EQ(all[k], k);
	}
	// How often consecutive increments came from different vCPUs (a
	// diagnostic: the test does not depend on the vCPUs overlapping).
	unsigned switches = 0;
	for (std::uint32_t k = 1; k < total; k++)
		switches += owner[k] != owner[k - 1];
	note("exits of other vCPUs inside each vCPU's run: %llu; increments from "
	     "another vCPU than the one before: %u of %u",
	     static_cast<unsigned long long>(overlap(results)), switches, total - 1);
}
