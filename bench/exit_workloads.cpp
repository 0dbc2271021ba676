// SPDX-License-Identifier: GPL-2.0
//
// Exit round trips: KVM_RUN enters a long-mode guest whose loop causes one exit
// per iteration, and returns to userspace (PIO, HLT, MMIO), or stays in the
// kernel (CPUID, answered inside KVM_RUN). Also libkvmpp's Vcpu::run() against
// the raw ioctl on the same vCPU and the same PIO exit.
//
// The timed loops issue KVM_RUN directly (no library in the way) and check
// the exit reason each time: a hypervisor that answers with another exit gets
// "n/a" and the exit it gave.
#include "bench.hpp"

#include <kvmpp/assembler.hpp>
#include <kvmpp/guest.hpp>
#include <kvmpp/kvmpp.hpp>

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <variant>

namespace kvmpp::bench {
namespace {

using guest::Assembler;
using guest::Machine;
using guest::Mode;
using guest::Reg;
namespace layout = guest::layout;

constexpr std::uint8_t kPort = 0x10;
// Guest-physical address with no memory slot, inside the guest's identity map.
constexpr std::uint64_t kMmioAddress = 0x30000000;
// CPUIDs per KVM_RUN in the cpuid workload (one PIO exit ends each batch).
constexpr unsigned kCpuidBatch = 100;

// A long-mode guest running `code`, and vCPU 0's raw fd and kvm_run.
struct ExitGuest {
	System kvm;
	Machine machine;
	int fd = -1;
	kvm_run *run = nullptr;

	explicit ExitGuest(const Assembler &code)
	{
		Result<System> opened = System::open();
		if (!opened)
			throw NotApplicable{"open(/dev/kvm): " + opened.error().message()};
		kvm = std::move(*opened);
		Result<Machine> created = Machine::create(kvm, Mode::long64);
		if (!created)
			throw NotApplicable{std::string(created.error().category().name()) + ": " +
					    created.error().message()};
		machine = std::move(*created);
		machine.load(code);
		fd = machine.vcpu.fd();
		run = &machine.vcpu.run_data();
	}

	// One KVM_RUN that must end in `reason`.
	void run_expecting(std::uint32_t reason) const
	{
		if (ioctl(fd, KVM_RUN, 0) != 0)
			throw NotApplicable{std::string("KVM_RUN: ") + std::strerror(errno)};
		if (run->exit_reason != reason) [[unlikely]]
			throw NotApplicable{"exit " + describe(machine.vcpu.exit()) + ", expected " +
					    exit_reason_name(reason)};
	}
};

Assembler pio_loop()
{
	Assembler code(64, layout::kCode);
	auto start = code.here();
	code.out(kPort, Reg::al).jmp(start);
	return code;
}

double pio_exit(unsigned iterations)
{
	const ExitGuest g(pio_loop());
	return time_per_call(iterations, [&] { g.run_expecting(KVM_EXIT_IO); });
}

double hlt_exit(unsigned iterations)
{
	Assembler code(64, layout::kCode);
	auto start = code.here();
	code.hlt().jmp(start);
	const ExitGuest g(code);
	return time_per_call(iterations, [&] { g.run_expecting(KVM_EXIT_HLT); });
}

double mmio_exit(unsigned iterations)
{
	Assembler code(64, layout::kCode);
	code.mov(Reg::rdi, kMmioAddress).mov(Reg::eax, 0x2a);
	auto start = code.here();
	code.raw({0x89, 0x07}); // mov [rdi], eax
	code.jmp(start);
	const ExitGuest g(code);
	return time_per_call(iterations, [&] {
		g.run_expecting(KVM_EXIT_MMIO);
		const auto &mmio = g.run->mmio;
		if (mmio.phys_addr != kMmioAddress || mmio.len != 4 || !mmio.is_write) [[unlikely]]
			throw NotApplicable{"wrong MMIO exit: " + describe(g.machine.vcpu.exit())};
	});
}

// kCpuidBatch CPUIDs, then one PIO exit whose cost (the pio_exit workload) is
// subtracted: what is left is the CPUID exits handled inside the kernel.
double cpuid_exit(unsigned iterations)
{
	const std::optional<double> pio = result_of("pio_exit");
	if (!pio)
		throw NotApplicable{"needs the pio_exit result to subtract"};
	Assembler code(64, layout::kCode);
	auto start = code.here();
	code.mov(Reg::esi, kCpuidBatch);
	auto again = code.here();
	code.xor_(Reg::eax, Reg::eax).xor_(Reg::ecx, Reg::ecx).cpuid().dec(Reg::esi).jnz(again);
	code.out(kPort, Reg::al).jmp(start);
	const ExitGuest g(code);
	const double batch = time_per_call(iterations, [&] { g.run_expecting(KVM_EXIT_IO); });
	return (batch - *pio) / kCpuidBatch;
}

// libkvmpp against the raw ioctl: the same vCPU (fd and kvm_run mapping) and
// the same PIO exit, first through ioctl(KVM_RUN) and a check of kvm_run,
// then through Vcpu::run() and the typed exit. Returns the raw figure and
// leaves the library's for pio_exit_libkvmpp.
double pio_exit_raw(unsigned iterations)
{
	ExitGuest g(pio_loop());
	const double raw = time_per_call(iterations, [&] {
		g.run_expecting(KVM_EXIT_IO);
		if (g.run->io.port != kPort) [[unlikely]]
			throw NotApplicable{"wrong port"};
	});
	Vcpu &vcpu = g.machine.vcpu;
	const double library = time_per_call(iterations, [&] {
		Result<Exit> exit = vcpu.run();
		if (!exit) [[unlikely]]
			throw NotApplicable{"KVM_RUN: " + exit.error().message()};
		const auto *io = std::get_if<exits::Io>(&*exit);
		if (!io || io->port != kPort) [[unlikely]]
			throw NotApplicable{"exit " + describe(*exit) + ", expected KVM_EXIT_IO"};
	});
	record_result("pio_exit_libkvmpp", library);
	return raw;
}

double pio_exit_libkvmpp(unsigned)
{
	const std::optional<double> measured = result_of("pio_exit_libkvmpp");
	if (!measured)
		throw NotApplicable{"measured by pio_exit_raw, which has no number"};
	return *measured;
}

} // namespace

std::vector<Workload> exit_workloads()
{
	return {
		{"pio_exit", "PIO exit round trip to userspace (OUT imm8)", 20000, pio_exit},
		{"hlt_exit", "HLT exit round trip to userspace", 20000, hlt_exit},
		{"mmio_exit", "MMIO exit round trip with emulation (MOV [rdi], eax to no slot)",
		 10000, mmio_exit},
		{"cpuid_exit", "CPUID exit handled in the kernel (per CPUID)", 200, cpuid_exit},
		{"pio_exit_raw", "PIO exit, raw ioctl(KVM_RUN), on the vCPU of the next line", 20000,
		 pio_exit_raw},
		{"pio_exit_libkvmpp", "PIO exit, libkvmpp Vcpu::run() + typed exit (same vCPU)", 20000,
		 pio_exit_libkvmpp},
	};
}

} // namespace kvmpp::bench
