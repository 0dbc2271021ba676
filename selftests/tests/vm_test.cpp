// SPDX-License-Identifier: GPL-2.0
//
// Creating and destroying VMs, and what a VM fd is (kvm_dev_ioctl_create_vm()
// and kvm_vm_ioctl() in virt/kvm/kvm_main.c, kvm_arch_init_vm() and
// kvm_arch_vm_ioctl() in arch/x86/kvm/x86.c of Linux 6.1).
#include "kvm.h"
#include "test.h"

#include <string>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <vector>

using namespace kvmpp::test;

namespace {

// What /proc/self/fd/N links to: "/dev/kvm", "anon_inode:kvm-vm", ...
std::string fd_target(int fd)
{
	const std::string link = "/proc/self/fd/" + std::to_string(fd);
	char target[256];
	const ssize_t length = ASSERT_OK(readlink(link.c_str(), target, sizeof(target)));
	return std::string(target, length);
}

void assert_close_on_exec(const UniqueFd &fd)
{
	ASSERT_TRUE(ASSERT_OK(fcntl(fd.get(), F_GETFD)) & FD_CLOEXEC);
}

} // namespace

KVMPP_TEST(vm, create_destroy, .timeout_s = 120)
{
	// Opened without O_CLOEXEC, so the VM fd's flag can only come from KVM
	// (kvm_dev_ioctl_create_vm allocates the fd with O_CLOEXEC).
	UniqueFd kvm(ASSERT_OK(open(kKvmDevice, O_RDWR)));
	ASSERT_EQ(ASSERT_OK(fcntl(kvm.get(), F_GETFD)) & FD_CLOEXEC, 0);

	{
		UniqueFd vm(ASSERT_OK(ioctl(kvm.get(), KVM_CREATE_VM, 0)));
		ASSERT_GE(vm.get(), 0);
		assert_close_on_exec(vm);
	}

	// Create and destroy many in turn: nothing is left behind that stops the
	// next one (VM state, virtualization enable/disable, fds).
	constexpr int kSequentialVms = 100;
	for (int i = 0; i < kSequentialVms; i++) {
		CONTEXT("sequential VM #%d", i);
		UniqueFd vm = create_vm(kvm);
		assert_close_on_exec(vm);
	}

	// Several at once, each its own VM fd.
	constexpr int kConcurrentVms = 8;
	std::vector<UniqueFd> vms;
	for (int i = 0; i < kConcurrentVms; i++) {
		CONTEXT("concurrent VM #%d", i);
		vms.push_back(create_vm(kvm));
		for (int j = 0; j < i; j++)
			ASSERT_NE(vms[i].get(), vms[j].get());
		assert_close_on_exec(vms[i]);
	}
	for (const UniqueFd &vm : vms) {
		CONTEXT("concurrent VM fd %d", vm.get());
		ASSERT_EQ(fd_target(vm.get()), "anon_inode:kvm-vm");
	}
	vms.clear();

	// And the system fd is unaffected by it all.
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	UniqueFd last_vm = create_vm(kvm);
}

KVMPP_TEST(vm, create_bad_type)
{
	UniqueFd kvm = open_kvm();

	// On x86 the machine type must be 0 (kvm_arch_init_vm). (Kernels built
	// with CONFIG_KVM_SW_PROTECTED_VM, 6.8+, accept type 1; Debian's do not.)
	const unsigned long bad_types[] = {1, 0xff, 1UL << 31, 1UL << 32, ~0UL};
	for (unsigned long type : bad_types) {
		CONTEXT("KVM_CREATE_VM(%#lx)", type);
		ASSERT_ERRNO(ioctl(kvm.get(), KVM_CREATE_VM, type), EINVAL);
	}

	// The failures left nothing behind.
	UniqueFd vm = create_vm(kvm);
}

KVMPP_TEST(vm, unknown_ioctl)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);

	int int_arg = 0;
	termios tty{};
	struct Call {
		const char *what;
		unsigned long request;
		unsigned long arg;
	};
	// Unlike the system fd (EINVAL), the VM fd answers what it does not handle
	// with ENOTTY (the default of kvm_arch_vm_ioctl). That includes the
	// system-fd ioctls and KVM_RUN, which belongs to the vCPU fd.
	const Call unsupported[] = {
		{"_IO(KVMIO, 0xff)", _IO(KVMIO, 0xff), 0},
		{"_IOW(KVMIO, 0xfe, int)", _IOW(KVMIO, 0xfe, int),
		 reinterpret_cast<unsigned long>(&int_arg)},
		{"TCGETS", TCGETS, reinterpret_cast<unsigned long>(&tty)},
		{"KVM_GET_API_VERSION", KVM_GET_API_VERSION, 0},
		{"KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE, 0},
		{"KVM_CREATE_VM", KVM_CREATE_VM, 0},
		{"KVM_RUN", KVM_RUN, 0},
	};
	for (const Call &call : unsupported) {
		CONTEXT("%s on a VM fd", call.what);
		ASSERT_ERRNO(ioctl(vm.get(), call.request, call.arg), ENOTTY);
	}
}

KVMPP_TEST(vm, fd_is_anon)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);

	// The system fd is the device node; a VM fd is an anonymous inode file
	// named "kvm-vm" (anon_inode_getfile("kvm-vm", ...)).
	ASSERT_EQ(fd_target(kvm.get()), kKvmDevice);
	ASSERT_EQ(fd_target(vm.get()), "anon_inode:kvm-vm");

	// fstat agrees: the VM file lives on the anonymous inode filesystem, like
	// an eventfd, and is not a character device like /dev/kvm.
	UniqueFd event(ASSERT_OK(eventfd(0, EFD_CLOEXEC)));
	struct stat vm_stat, event_stat, kvm_stat;
	ASSERT_OK(fstat(vm.get(), &vm_stat));
	ASSERT_OK(fstat(event.get(), &event_stat));
	ASSERT_OK(fstat(kvm.get(), &kvm_stat));
	ASSERT_EQ(vm_stat.st_dev, event_stat.st_dev);
	ASSERT_EQ(vm_stat.st_mode & S_IFMT, event_stat.st_mode & S_IFMT);
	ASSERT_TRUE(S_ISCHR(kvm_stat.st_mode));
	ASSERT_TRUE(!S_ISCHR(vm_stat.st_mode));
}
