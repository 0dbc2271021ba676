// SPDX-License-Identifier: GPL-2.0
//
// Module lifecycle: loading, refusing, pinning and unloading the core and
// backend modules, and virtualization being enabled on the CPUs only while a
// VM exists. The same tests pass with Linux's kvm.ko + kvm-{amd,intel}.ko and
// with kvmpp.ko + kvmpp-{amd,intel}.ko.
//
// ORDER: these tests are one sequence, run in file order, as root, starting
// with neither module loaded. Each test leaves the modules in the state the
// next one starts from; each also establishes its own starting state first
// (require_modules(), reported as "setup" if it fails), so a filtered run or
// an earlier failure cannot make a later test pass or fail for the wrong
// reason. After the last test, main() loads core + backend if they are not.
//
// Errnos of the module syscalls (kernel/module/main.c, not in the extracted
// 6.1 tree; from our reading of the module loader, to be confirmed by running
// these tests against the reference modules):
//  - finit_module of a module with an undefined symbol: simplify_symbols()
//    fails with -ENOENT when resolve_symbol() finds no exporter.
//  - finit_module of a module whose init function fails: the init function's
//    error (do_init_module returns it).
//  - delete_module of a module other modules depend on (non-empty
//    source_list): -EWOULDBLOCK, before looking at the refcount.
//  - delete_module with O_NONBLOCK of a module whose refcount is held
//    (try_stop_module): -EWOULDBLOCK (without O_NONBLOCK the kernel has not
//    waited since 3.13 either: same answer).
//
// Facts from Linux 6.1 KVM this relies on:
//  - kvm.ko registers /dev/kvm (misc minor 232) in kvm_init(), which only the
//    vendor module's init calls: the core alone has no /dev/kvm.
//  - kvm_x86_vendor_init() refuses the other vendor's module with -EOPNOTSUPP
//    ("no hardware support") before anything else, if no backend is loaded
//    yet (with one loaded it would answer -EEXIST: the test ensures none is).
//  - kvm_init() sets kvm_chardev_ops.owner = the vendor module: an open
//    /dev/kvm pins the backend; kvm_create_vm() takes another reference on
//    that owner, dropped in kvm_destroy_vm(): a VM fd pins it too.
//  - hardware_enable_all()/hardware_disable_all() run when the first VM is
//    created and the last destroyed; kvm_starting_cpu()/kvm_dying_cpu()
//    follow CPU hotplug. svm_hardware_enable() sets EFER.SVME, and refuses
//    (-EBUSY) if it is already set; svm_hardware_disable() clears it.
//
// Assumes /dev is a devtmpfs (device nodes appear and disappear with the
// misc device) and msr.ko is loaded (for /dev/cpu/N/msr).
#include "cpu.h"
#include "kernel_module.h"
#include "kvm.h"
#include "kvm_modules.h"
#include "test.h"

#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

using namespace kvmpp::test;

namespace {

// The misc device number of /dev/kvm (Documentation/admin-guide/devices.txt).
constexpr unsigned kMiscMajor = 10;
constexpr unsigned kKvmMinor = 232;
constexpr const char *kKvmSysfsDevice = "/sys/class/misc/kvm";

const KernelModule &core()
{
	return kvm_modules().core;
}
const KernelModule &backend()
{
	return kvm_modules().backend;
}
const KernelModule &other_backend()
{
	return kvm_modules().other_backend;
}

// Brings the modules to the given state (the backend needs the core), by
// loading or unloading what differs. Every step must succeed.
void require_modules(bool core_loaded, bool backend_loaded)
{
	if (module_is_loaded(other_backend())) {
		CONTEXT("setup: unloading %s", other_backend().name.c_str());
		ASSERT_OK(unload_module(other_backend()));
	}
	if (!backend_loaded && module_is_loaded(backend())) {
		CONTEXT("setup: unloading %s", backend().name.c_str());
		ASSERT_OK(unload_module(backend()));
	}
	if (!core_loaded && !backend_loaded && module_is_loaded(core())) {
		CONTEXT("setup: unloading %s", core().name.c_str());
		ASSERT_OK(unload_module(core()));
	}
	if ((core_loaded || backend_loaded) && !module_is_loaded(core())) {
		CONTEXT("setup: loading %s", core().path.c_str());
		ASSERT_OK(load_module(core()));
	}
	if (backend_loaded && !module_is_loaded(backend())) {
		CONTEXT("setup: loading %s", backend().path.c_str());
		ASSERT_OK(load_module(backend()));
	}
}

void assert_no_kvm_device()
{
	struct stat st;
	ASSERT_ERRNO(stat(kKvmDevice, &st), ENOENT);
	ASSERT_ERRNO(access(kKvmSysfsDevice, F_OK), ENOENT);
}

// /dev/kvm is the misc character device 10:232 and answers the system ABI.
void assert_kvm_device_works()
{
	struct stat st;
	ASSERT_OK(stat(kKvmDevice, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(major(st.st_rdev), kMiscMajor);
	ASSERT_EQ(minor(st.st_rdev), kKvmMinor);
	UniqueFd kvm = open_kvm();
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
}

// EFER.SVME on each of `cpus` must be `expected`.
void assert_svme(const std::vector<int> &cpus, bool expected, const char *situation)
{
	for (int cpu : cpus) {
		CONTEXT("CPU %d, %s: EFER.SVME should be %s", cpu, situation,
			expected ? "set" : "clear");
		const uint64_t efer = read_msr(cpu, kMsrEfer);
		ASSERT_EQ((efer & kEferSvme) != 0, expected);
	}
}

bool is_online(int cpu)
{
	for (int online : online_cpus())
		if (online == cpu)
			return true;
	return false;
}

} // namespace

// The backend imports the core's symbols: without the core it cannot link.
KVMPP_TEST(module, backend_needs_core, .timeout_s = 60)
{
	require_modules(false, false);

	ASSERT_ERRNO(load_module(backend()), ENOENT);
	ASSERT_TRUE(!module_is_loaded(backend()));
	assert_no_kvm_device();
}

// The core loads on its own but offers no /dev/kvm until a backend registers;
// alone, it unloads and reloads freely. Leaves the core loaded.
KVMPP_TEST(module, core_alone, .timeout_s = 60)
{
	require_modules(false, false);

	ASSERT_OK(load_module(core()));
	ASSERT_TRUE(module_is_loaded(core()));
	assert_no_kvm_device();

	ASSERT_OK(unload_module(core()));
	ASSERT_TRUE(!module_is_loaded(core()));

	ASSERT_OK(load_module(core()));
	ASSERT_TRUE(module_is_loaded(core()));
	assert_no_kvm_device();
}

// The other vendor's backend refuses this CPU, and its failed load leaves no
// trace: no /dev/kvm, no reference held on the core (which still unloads).
KVMPP_TEST(module, other_backend_refused, .timeout_s = 60)
{
	require_modules(true, false);

	ASSERT_ERRNO(load_module(other_backend()), EOPNOTSUPP);
	ASSERT_TRUE(!module_is_loaded(other_backend()));
	assert_no_kvm_device();

	ASSERT_OK(unload_module(core()));
	ASSERT_OK(load_module(core()));
}

// With the core loaded, this CPU's backend loads and /dev/kvm appears.
KVMPP_TEST(module, backend_loads, .timeout_s = 60)
{
	require_modules(true, false);

	ASSERT_OK(load_module(backend()));
	ASSERT_TRUE(module_is_loaded(backend()));
	assert_kvm_device_works();
}

// The backend depends on the core: the core cannot go first.
KVMPP_TEST(module, core_pinned_by_backend, .timeout_s = 60)
{
	require_modules(true, true);

	ASSERT_ERRNO(unload_module(core()), EWOULDBLOCK);
	ASSERT_TRUE(module_is_loaded(core()));
	assert_kvm_device_works();
}

// An open /dev/kvm holds the backend (the owner of the device's file
// operations); closing it lets the backend go. Leaves both loaded.
KVMPP_TEST(module, backend_pinned_by_open_dev, .timeout_s = 60)
{
	require_modules(true, true);

	UniqueFd kvm = open_kvm();
	ASSERT_ERRNO(unload_module(backend()), EWOULDBLOCK);
	ASSERT_TRUE(module_is_loaded(backend()));
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);

	kvm.reset();
	ASSERT_OK(unload_module(backend()));
	assert_no_kvm_device();
	ASSERT_OK(load_module(backend()));
	assert_kvm_device_works();
}

// A VM fd alone (its /dev/kvm fd closed) holds the backend, and through it
// the core; once it is closed both unload, backend first. Leaves neither
// loaded.
KVMPP_TEST(module, backend_pinned_by_vm, .timeout_s = 60)
{
	require_modules(true, true);

	UniqueFd vm;
	{
		UniqueFd kvm = open_kvm();
		vm = create_vm(kvm);
	}
	ASSERT_ERRNO(unload_module(backend()), EWOULDBLOCK);
	ASSERT_ERRNO(unload_module(core()), EWOULDBLOCK);
	ASSERT_TRUE(module_is_loaded(backend()));
	ASSERT_TRUE(module_is_loaded(core()));

	vm.reset();
	ASSERT_OK(unload_module(backend()));
	ASSERT_TRUE(!module_is_loaded(backend()));
	assert_no_kvm_device();
	ASSERT_OK(unload_module(core()));
	ASSERT_TRUE(!module_is_loaded(core()));
}

// Load, use, unload, three times over. A backend that left virtualization
// enabled on unload (VMXON still on, EFER.SVME still set) could not enable it
// again on the next round. Leaves neither loaded.
KVMPP_TEST(module, reload_cycle, .timeout_s = 180)
{
	require_modules(false, false);

	constexpr int kRounds = 3;
	for (int round = 1; round <= kRounds; round++) {
		CONTEXT("round %d of %d", round, kRounds);
		ASSERT_OK(load_module(core()));
		ASSERT_OK(load_module(backend()));
		{
			UniqueFd kvm = open_kvm();
			UniqueFd vm = create_vm(kvm);
		}
		ASSERT_OK(unload_module(backend()));
		ASSERT_OK(unload_module(core()));
		assert_no_kvm_device();
	}
}

// SVM is turned on (EFER.SVME) on every online CPU exactly while at least one
// VM exists: not at module load, not for an open /dev/kvm. Leaves both loaded.
KVMPP_TEST(module, svm_enabled_only_with_vm, .timeout_s = 60)
{
	if (!cpu_has_svm())
		SKIP("needs SVM");
	require_modules(true, true);
	const std::vector<int> cpus = online_cpus();

	assert_svme(cpus, false, "backend loaded, no VM");
	UniqueFd kvm = open_kvm();
	assert_svme(cpus, false, "/dev/kvm open, no VM");

	UniqueFd first_vm = create_vm(kvm);
	assert_svme(cpus, true, "one VM");
	UniqueFd second_vm = create_vm(kvm);
	assert_svme(cpus, true, "two VMs");
	first_vm.reset();
	assert_svme(cpus, true, "first of two VMs closed");
	second_vm.reset();
	assert_svme(cpus, false, "last VM closed");
}

// CPU hotplug: a CPU that comes back online while a VM exists gets SVM turned
// on again; without a VM it stays off. Leaves both loaded and the CPU online.
KVMPP_TEST(module, svm_cpu_hotplug, .timeout_s = 120)
{
	if (!cpu_has_svm())
		SKIP("needs SVM");
	const std::vector<int> cpus = online_cpus();
	if (cpus.size() < 2)
		SKIP("needs 2 online CPUs");
	require_modules(true, true);

	// CPU 0 often cannot go offline; take the next online one.
	const int cpu = cpus[0] != 0 ? cpus[0] : cpus[1];
	const std::string online_file =
		"/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/online";
	ASSERT_OK(access(online_file.c_str(), W_OK));
	// Whatever happens below, the CPU goes back online for the next tests.
	Cleanup back_online([cpu] { set_cpu_online(cpu, true); });

	UniqueFd kvm = open_kvm();
	{
		UniqueFd vm = create_vm(kvm);
		assert_svme({cpu}, true, "one VM");
		ASSERT_OK(set_cpu_online(cpu, false));
		ASSERT_TRUE(!is_online(cpu));
		ASSERT_OK(set_cpu_online(cpu, true));
		ASSERT_TRUE(is_online(cpu));
		assert_svme(cpus, true, "one VM, after the CPU went offline and back online");
	}
	assert_svme(cpus, false, "last VM closed");

	ASSERT_OK(set_cpu_online(cpu, false));
	ASSERT_TRUE(!is_online(cpu));
	ASSERT_OK(set_cpu_online(cpu, true));
	ASSERT_TRUE(is_online(cpu));
	assert_svme(cpus, false, "no VM, after the CPU went offline and back online");
}
