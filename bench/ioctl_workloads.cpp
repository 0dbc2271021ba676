// SPDX-License-Identifier: GPL-2.0
//
// ioctls outside KVM_RUN: a VM and its vCPU created and destroyed, and the
// general-purpose registers read and written.
#include "bench.hpp"

#include <kvmpp/guest.hpp>
#include <kvmpp/kvmpp.hpp>

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace kvmpp::bench {
namespace {

std::string error_text(const char *what, int err)
{
	return std::string(what) + ": " + std::strerror(err);
}

// KVM_CREATE_VM, KVM_CREATE_VCPU, then both fds closed (the last close
// destroys the VM: its cost is inside the timed call).
double vm_lifecycle(unsigned iterations)
{
	const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		throw NotApplicable{error_text("open(/dev/kvm)", errno)};
	double ns;
	try {
		ns = time_per_call(iterations, [&] {
			const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
			if (vm < 0)
				throw NotApplicable{error_text("KVM_CREATE_VM", errno)};
			const int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
			const int err = errno;
			if (vcpu >= 0)
				close(vcpu);
			close(vm);
			if (vcpu < 0)
				throw NotApplicable{error_text("KVM_CREATE_VCPU", err)};
		});
	} catch (...) {
		close(kvm);
		throw;
	}
	close(kvm);
	return ns;
}

guest::Machine real_mode_machine(System &kvm)
{
	Result<System> opened = System::open();
	if (!opened)
		throw NotApplicable{"open(/dev/kvm): " + opened.error().message()};
	kvm = std::move(*opened);
	Result<guest::Machine> created = guest::Machine::create(kvm, guest::Mode::real);
	if (!created)
		throw NotApplicable{std::string(created.error().category().name()) + ": " +
				    created.error().message()};
	return std::move(*created);
}

double get_regs(unsigned iterations)
{
	System kvm;
	const guest::Machine m = real_mode_machine(kvm);
	kvm_regs regs{};
	return time_per_call(iterations, [&] {
		if (ioctl(m.vcpu.fd(), KVM_GET_REGS, &regs) != 0)
			throw NotApplicable{error_text("KVM_GET_REGS", errno)};
	});
}

double set_regs(unsigned iterations)
{
	System kvm;
	const guest::Machine m = real_mode_machine(kvm);
	kvm_regs regs{};
	if (ioctl(m.vcpu.fd(), KVM_GET_REGS, &regs) != 0)
		throw NotApplicable{error_text("KVM_GET_REGS", errno)};
	return time_per_call(iterations, [&] {
		if (ioctl(m.vcpu.fd(), KVM_SET_REGS, &regs) != 0)
			throw NotApplicable{error_text("KVM_SET_REGS", errno)};
	});
}

} // namespace

std::vector<Workload> ioctl_workloads()
{
	return {
		{"vm_lifecycle", "KVM_CREATE_VM + KVM_CREATE_VCPU + close both (destroy)", 200,
		 vm_lifecycle},
		{"get_regs", "KVM_GET_REGS", 20000, get_regs},
		{"set_regs", "KVM_SET_REGS", 20000, set_regs},
	};
}

} // namespace kvmpp::bench
