// SPDX-License-Identifier: GPL-2.0
//
// KVM_RUN and what stops it: immediate_exit, signals, the vCPU signal mask
// (kvm_vcpu_ioctl() KVM_RUN and KVM_SET_SIGNAL_MASK in virt/kvm/kvm_main.c;
// kvm_arch_vcpu_ioctl_run(), vcpu_run(), kvm_sigset_activate() in
// arch/x86/kvm/x86.c of Linux 6.1).
#include "guest_support.h"
#include "test.h"

#include <kvmpp/abi.hpp>

#include <atomic>
#include <chrono>
#include <pthread.h>
#include <signal.h>
#include <thread>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;

namespace {

std::atomic<int> g_signals{0};

void count_signal(int)
{
	g_signals.fetch_add(1);
}

// SIGUSR1 runs count_signal, without SA_RESTART.
void install_handler()
{
	struct sigaction action{};
	action.sa_handler = count_signal;
	sigemptyset(&action.sa_mask);
	ASSERT_OK(sigaction(SIGUSR1, &action, nullptr));
}

bool sigusr1_pending()
{
	sigset_t pending;
	ASSERT_OK(sigpending(&pending));
	return sigismember(&pending, SIGUSR1) == 1;
}

} // namespace

// kvm_run.immediate_exit = 1: KVM_RUN fails with EINTR without entering the
// guest, but only after completing the pending I/O (an IN's value lands in
// the register and RIP moves past it), and it leaves exit_reason as it was
// (kvm_arch_vcpu_ioctl_run: complete_userspace_io, then "if
// (!vcpu->wants_to_run) return -EINTR").
KVMPP_TEST(vcpu, immediate_exit, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	Assembler code(16, layout::kCode);
	code.in(Reg::al, 0x30);
	const std::uint64_t after_in = code.address();
	code.out(0x31, Reg::al).hlt();
	m.load(code);

	// Set before the first run: the guest does not run at all.
	m.vcpu.request_immediate_exit();
	ASSERT_RESULT_ERRNO(m.vcpu.run(), EINTR);
	ASSERT_EQ(m.vcpu.run_data().exit_reason, KVM_EXIT_UNKNOWN);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, layout::kCode);
	m.vcpu.request_immediate_exit(false);

	exits::Io in = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_TRUE(in.is_in());
	ASSERT_EQ(in.port, 0x30);
	in.set_value(0x5a);

	m.vcpu.request_immediate_exit();
	ASSERT_RESULT_ERRNO(m.vcpu.run(), EINTR);
	ASSERT_EQ(m.vcpu.run_data().exit_reason, KVM_EXIT_IO);
	kvm_regs regs = ASSERT_RESULT(m.vcpu.get_regs());
	ASSERT_EQ(regs.rax & 0xff, 0x5au);
	ASSERT_EQ(regs.rip, after_in);

	// Still set: still no progress.
	ASSERT_RESULT_ERRNO(m.vcpu.run(), EINTR);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, after_in);

	m.vcpu.request_immediate_exit(false);
	exits::Io out = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_TRUE(out.is_out());
	ASSERT_EQ(out.port, 0x31);
	ASSERT_EQ(out.value(), 0x5au);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
}

// A signal delivered to the thread in KVM_RUN while the guest spins makes
// KVM_RUN fail with EINTR and exit_reason KVM_EXIT_INTR
// (kvm_handle_signal_exit), with the guest stopped in its loop. The loop
// executes CPUID, which the hypervisor answers without leaving KVM_RUN: a guest
// that never exits at all can freeze Bochs (platform.md).
KVMPP_TEST(vcpu, signal_interrupts_run, .timeout_s = 60, .needs_vcpus = true)
{
	install_handler();
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	Assembler code(16, layout::kCode);
	code.out(0x30, Reg::al);
	const std::uint64_t loop = code.address();
	Label top = code.here();
	code.cpuid();
	const std::uint64_t jump = code.address();
	code.jmp(top);
	m.load(code);

	// The guest is known to run once its first exit is seen.
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x30);

	std::atomic<bool> started{false}, done{false};
	std::error_code run_error;
	bool run_ok = false;
	std::thread runner([&] {
		started = true;
		kvmpp::Result<kvmpp::Exit> exit = m.vcpu.run(); // spins until a signal
		run_ok = exit.ok();
		run_error = exit.error();
		done = true;
	});
	Cleanup join([&] {
		if (runner.joinable()) {
			// Keep signalling until the runner is out (it may have been
			// signalled before it entered KVM_RUN).
			while (!done) {
				pthread_kill(runner.native_handle(), SIGUSR1);
				std::this_thread::sleep_for(std::chrono::milliseconds(10));
			}
			runner.join();
		}
	});
	while (!started)
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	std::this_thread::sleep_for(std::chrono::milliseconds(50)); // let it spin a little
	for (int i = 0; i < 1000 && !done; i++) {
		pthread_kill(runner.native_handle(), SIGUSR1);
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	ASSERT_TRUE(done.load());
	runner.join();

	ASSERT_TRUE(!run_ok);
	ASSERT_EQ(run_error.value(), EINTR);
	ASSERT_TRUE(std::holds_alternative<exits::Intr>(m.vcpu.exit()));
	ASSERT_EQ(m.vcpu.run_data().exit_reason, KVM_EXIT_INTR);
	ASSERT_GE(g_signals.load(), 1);
	const std::uint64_t rip = ASSERT_RESULT(m.vcpu.get_regs()).rip;
	ASSERT_TRUE(rip == loop || rip == jump);
}

// KVM_SET_SIGNAL_MASK: the mask the thread has while inside KVM_RUN. A
// signal pending but blocked in the thread interrupts KVM_RUN if the vCPU
// mask lets it through, and stays pending afterwards (the thread's own mask is
// back by the time KVM_RUN returns). A NULL mask means "the thread's own".
KVMPP_TEST(vcpu, signal_mask, .needs_vcpus = true)
{
	install_handler();
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	Assembler code(16, layout::kCode);
	code.out(0x30, Reg::al).out(0x31, Reg::al).out(0x32, Reg::al).hlt();
	m.load(code);

	sigset_t blocked, empty;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigemptyset(&empty);
	ASSERT_EQ(pthread_sigmask(SIG_BLOCK, &blocked, nullptr), 0);
	ASSERT_OK(raise(SIGUSR1));
	ASSERT_TRUE(sigusr1_pending());
	ASSERT_EQ(g_signals.load(), 0);

	// Blocked in the vCPU mask too: the guest runs.
	ASSERT_RESULT(m.vcpu.set_signal_mask(&blocked));
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x30);

	// Unblocked while in KVM_RUN: EINTR before the guest runs on.
	ASSERT_RESULT(m.vcpu.set_signal_mask(&empty));
	ASSERT_RESULT_ERRNO(m.vcpu.run(), EINTR);
	ASSERT_TRUE(std::holds_alternative<exits::Intr>(m.vcpu.exit()));
	ASSERT_TRUE(sigusr1_pending());
	ASSERT_EQ(g_signals.load(), 0);

	// No vCPU mask: the thread's (blocking) mask applies; the guest goes on
	// with the next OUT (the first one was completed before the EINTR).
	ASSERT_RESULT(m.vcpu.set_signal_mask(nullptr));
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x31);
	ASSERT_TRUE(sigusr1_pending());

	// The size must be the kernel's sigset_t: 8 bytes. (The request number
	// from kvmpp/abi.hpp: <linux/kvm.h>'s is wrong in C++.)
	struct {
		kvmpp::abi::SignalMaskHeader header;
		unsigned char sigset[16];
	} arg{};
	for (__u32 len : {0u, 4u, 16u, 128u}) {
		CONTEXT("kvm_signal_mask.len = %u", len);
		arg.header.len = len;
		ASSERT_ERRNO(ioctl(m.vcpu.fd(), kvmpp::abi::kSetSignalMask, &arg), EINVAL);
	}
	arg.header.len = 8;
	ASSERT_OK(ioctl(m.vcpu.fd(), kvmpp::abi::kSetSignalMask, &arg)); // the empty set

	// Delivered once the thread unblocks it.
	ASSERT_EQ(pthread_sigmask(SIG_UNBLOCK, &blocked, nullptr), 0);
	ASSERT_EQ(g_signals.load(), 1);
}
