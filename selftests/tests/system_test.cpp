// SPDX-License-Identifier: GPL-2.0
//
// The system fd: ioctls on /dev/kvm itself (Documentation/virt/kvm/api.rst,
// "System ioctls"; kvm_dev_ioctl() in virt/kvm/kvm_main.c and
// kvm_arch_dev_ioctl() in arch/x86/kvm/x86.c of Linux 6.1).
#include "kvm.h"
#include "test.h"

#include <algorithm>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <termios.h>
#include <vector>

using namespace kvmpp::test;

namespace {

// Every numeric KVM_CAP_* of the system's <linux/kvm.h>, generated at build
// time (see the Makefile).
struct HeaderCap {
	const char *name;
	long number;
};
constexpr HeaderCap kHeaderCaps[] = {
#define KVMPP_CAP(name) {#name, name},
#include "kvm_cap_list.inc"
#undef KVMPP_CAP
};

const char *header_cap_name(long number)
{
	for (const HeaderCap &cap : kHeaderCaps)
		if (cap.number == number)
			return cap.name;
	return "not defined in <linux/kvm.h>";
}

// The ioctl numbers of KVM's old tracing interface. Linux 6.8 dropped them
// from <linux/kvm.h> ("KVM: remove deprecated UAPIs"); define them for newer
// headers. The argument of KVM_TRACE_ENABLE was an 8-byte struct.
#ifndef KVM_TRACE_ENABLE
#define KVM_TRACE_ENABLE _IOC(_IOC_WRITE, KVMIO, 0x06, 8)
#define KVM_TRACE_PAUSE _IO(KVMIO, 0x07)
#define KVM_TRACE_DISABLE _IO(KVMIO, 0x08)
#endif

// True if the running kernel's release is at least major.minor.
bool kernel_at_least(int major, int minor)
{
	utsname name;
	ASSERT_OK(uname(&name));
	int running_major = 0, running_minor = 0;
	ASSERT_EQ(std::sscanf(name.release, "%d.%d", &running_major, &running_minor), 2);
	return running_major > major || (running_major == major && running_minor >= minor);
}

struct Call {
	const char *what;
	unsigned long request;
	unsigned long arg;
};

} // namespace

KVMPP_TEST(system, api_version)
{
	static_assert(KVM_API_VERSION == 12, "the stable KVM API is version 12");
	UniqueFd kvm = open_kvm();

	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);

	// The argument is reserved: anything but 0 is rejected...
	ASSERT_ERRNO(ioctl(kvm.get(), KVM_GET_API_VERSION, 1), EINVAL);
	ASSERT_ERRNO(ioctl(kvm.get(), KVM_GET_API_VERSION, ~0UL), EINVAL);
	// ...without side effects.
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
}

KVMPP_TEST(system, check_extension_unknown)
{
	UniqueFd kvm = open_kvm();

	// An extension KVM does not know is "not available" (0), not an error:
	// that is how userspace probes for features of newer kernels.
	const unsigned long unknown_caps[] = {
		100000,
		0x7fffffff,
		0x80000000,
		static_cast<unsigned long>(-1L),
		// The argument is a long: these must not be truncated to the 32-bit
		// KVM_CAP_USER_MEMORY or KVM_CAP_IRQCHIP, which exist.
		(1UL << 32) | KVM_CAP_USER_MEMORY,
		(1UL << 32) | KVM_CAP_IRQCHIP,
	};
	for (unsigned long cap : unknown_caps) {
		CONTEXT("KVM_CHECK_EXTENSION(%#lx)", cap);
		ASSERT_EQ(ioctl(kvm.get(), KVM_CHECK_EXTENSION, cap), 0);
	}
}

KVMPP_TEST(system, check_extension_no_error)
{
	UniqueFd kvm = open_kvm();

	long highest = 0;
	for (const HeaderCap &cap : kHeaderCaps)
		highest = std::max(highest, cap.number);
	ASSERT_GE(highest, KVM_CAP_USER_MEMORY);

	// Every number up to the highest capability the header knows, including
	// numbers never assigned and capabilities of other architectures: the
	// answer is a value (0 = not available), never an error.
	int available = 0;
	for (long cap = 0; cap <= highest; cap++) {
		CONTEXT("KVM_CHECK_EXTENSION(%ld), %s", cap, header_cap_name(cap));
		if (ASSERT_OK(ioctl(kvm.get(), KVM_CHECK_EXTENSION, cap)) > 0)
			available++;
	}
	note("capabilities 0..%ld checked, %d reported available", highest, available);
}

KVMPP_TEST(system, vcpu_mmap_size)
{
	UniqueFd kvm = open_kvm();
	const long page = page_size();

	const int size = ASSERT_OK(ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0));
	ASSERT_EQ(size % page, 0);
	// On x86 a vCPU fd maps three pages: struct kvm_run, the PIO data page
	// (KVM_PIO_PAGE_OFFSET) and the coalesced MMIO ring
	// (KVM_COALESCED_MMIO_PAGE_OFFSET).
	static_assert(KVM_PIO_PAGE_OFFSET == 1 && KVM_COALESCED_MMIO_PAGE_OFFSET == 2);
	ASSERT_EQ(size, 3 * page);

	// The argument is reserved.
	ASSERT_ERRNO(ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 1), EINVAL);
	ASSERT_ERRNO(ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, ~0UL), EINVAL);
}

KVMPP_TEST(system, unknown_ioctl)
{
	UniqueFd kvm = open_kvm();
	const long page = page_size();

	// Real argument buffers, so a wrong answer cannot come from a bad pointer.
	int int_arg = 0;
	termios tty{};
	void *memory = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	ASSERT_NE(memory, MAP_FAILED);
	kvm_userspace_memory_region region{};
	region.slot = 0;
	region.guest_phys_addr = 0;
	region.memory_size = page;
	region.userspace_addr = reinterpret_cast<unsigned long>(memory);

	// The system fd answers anything it does not handle with EINVAL (the
	// default of kvm_arch_dev_ioctl), including VM and vCPU ioctls.
	const Call rejected[] = {
		{"_IO(KVMIO, 0xff)", _IO(KVMIO, 0xff), 0},
		{"_IOW(KVMIO, 0xfe, int)", _IOW(KVMIO, 0xfe, int),
		 reinterpret_cast<unsigned long>(&int_arg)},
		{"TCGETS", TCGETS, reinterpret_cast<unsigned long>(&tty)},
		{"KVM_CREATE_VCPU", KVM_CREATE_VCPU, 0},
		{"KVM_RUN", KVM_RUN, 0},
		{"KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION,
		 reinterpret_cast<unsigned long>(&region)},
	};
	for (const Call &call : rejected) {
		CONTEXT("%s on the system fd", call.what);
		ASSERT_ERRNO(ioctl(kvm.get(), call.request, call.arg), EINVAL);
	}

	// KVM_TRACE_* (a tracing interface removed long ago) were answered with
	// EOPNOTSUPP by kvm_dev_ioctl until Linux 6.8 deleted them from the
	// UAPI; since then they are unknown ioctls like any other: EINVAL.
	const int trace_errno = kernel_at_least(6, 8) ? EINVAL : EOPNOTSUPP;
	char trace_setup[8] = {};
	const Call trace_calls[] = {
		{"KVM_TRACE_ENABLE", KVM_TRACE_ENABLE,
		 reinterpret_cast<unsigned long>(trace_setup)},
		{"KVM_TRACE_PAUSE", KVM_TRACE_PAUSE, 0},
		{"KVM_TRACE_DISABLE", KVM_TRACE_DISABLE, 0},
	};
	for (const Call &call : trace_calls) {
		CONTEXT("%s on the system fd, expecting %s", call.what,
			errno_name(trace_errno).c_str());
		ASSERT_ERRNO(ioctl(kvm.get(), call.request, call.arg), trace_errno);
	}

	// None of this disturbed the fd.
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	munmap(memory, page);
}

KVMPP_TEST(system, bad_fd)
{
	// Not a descriptor at all.
	ASSERT_ERRNO(ioctl(-1, KVM_GET_API_VERSION, 0), EBADF);

	// A descriptor of /dev/kvm that has been closed.
	const int closed_fd = ASSERT_OK(open(kKvmDevice, O_RDWR | O_CLOEXEC));
	ASSERT_OK(close(closed_fd));
	ASSERT_ERRNO(ioctl(closed_fd, KVM_GET_API_VERSION, 0), EBADF);

	// Files of other kinds do not know KVM's ioctls.
	UniqueFd null(ASSERT_OK(open("/dev/null", O_RDWR | O_CLOEXEC)));
	ASSERT_ERRNO(ioctl(null.get(), KVM_GET_API_VERSION, 0), ENOTTY);
	UniqueFd memfd(ASSERT_OK(memfd_create("kvmpp-selftest", MFD_CLOEXEC)));
	ASSERT_ERRNO(ioctl(memfd.get(), KVM_GET_API_VERSION, 0), ENOTTY);
}

KVMPP_TEST(system, readonly_open)
{
	UniqueFd reference = open_kvm(O_RDWR);
	const int mmap_size = ASSERT_OK(ioctl(reference.get(), KVM_GET_VCPU_MMAP_SIZE, 0));

	// kvm_dev_ioctl() never looks at the open mode: a read-only or write-only
	// /dev/kvm fd answers every system ioctl exactly like a read-write one,
	// KVM_CREATE_VM included. The VM file itself is always read-write
	// (anon_inode_getfile(..., O_RDWR)).
	for (int mode : {O_RDONLY, O_WRONLY}) {
		CONTEXT("/dev/kvm opened %s", mode == O_RDONLY ? "O_RDONLY" : "O_WRONLY");
		UniqueFd kvm = open_kvm(mode);

		ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
		ASSERT_EQ(ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0), mmap_size);
		for (const HeaderCap &cap : kHeaderCaps) {
			CONTEXT("KVM_CHECK_EXTENSION(%s)", cap.name);
			ASSERT_EQ(ioctl(kvm.get(), KVM_CHECK_EXTENSION, cap.number),
				  ioctl(reference.get(), KVM_CHECK_EXTENSION, cap.number));
		}

		UniqueFd vm = create_vm(kvm);
		ASSERT_EQ(ASSERT_OK(fcntl(vm.get(), F_GETFL)) & O_ACCMODE, O_RDWR);
	}

	// An O_PATH descriptor is not open for I/O: the ioctl never reaches KVM.
	UniqueFd path_only(ASSERT_OK(open(kKvmDevice, O_PATH | O_CLOEXEC)));
	ASSERT_ERRNO(ioctl(path_only.get(), KVM_GET_API_VERSION, 0), EBADF);
	ASSERT_ERRNO(ioctl(path_only.get(), KVM_CREATE_VM, 0), EBADF);
}

KVMPP_TEST(system, open_many)
{
	constexpr int kOpenCount = 256;
	std::vector<UniqueFd> fds;
	for (int i = 0; i < kOpenCount; i++) {
		CONTEXT("opening /dev/kvm #%d", i);
		fds.push_back(open_kvm());
	}

	// Every open is an independent, working system fd.
	for (int i = 0; i < kOpenCount; i++) {
		CONTEXT("/dev/kvm fd #%d", i);
		ASSERT_EQ(ioctl(fds[i].get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	}
	UniqueFd vm = create_vm(fds[kOpenCount / 2]);

	// Closing half of them does not disturb the others, nor the VM.
	for (int i = 0; i < kOpenCount; i += 2)
		fds[i].reset();
	for (int i = 1; i < kOpenCount; i += 2) {
		CONTEXT("/dev/kvm fd #%d after closing the even ones", i);
		ASSERT_EQ(ioctl(fds[i].get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	}

	// With all of them closed, /dev/kvm still opens and works.
	fds.clear();
	vm.reset();
	UniqueFd kvm = open_kvm();
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	UniqueFd another_vm = create_vm(kvm);
}
