// SPDX-License-Identifier: GPL-2.0
//
// Guest memory: the first touch of 64 MiB (one write per 4 KiB page, so every
// nested page fault the hypervisor takes is on the timed path), backed by 4 KiB
// host pages and by 2 MiB hugetlbfs pages; and a memory slot added and deleted.
#include "bench.hpp"

#include <kvmpp/assembler.hpp>
#include <kvmpp/guest.hpp>
#include <kvmpp/kvmpp.hpp>

#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace kvmpp::bench {
namespace {

using guest::Assembler;
using guest::Machine;
using guest::Mode;
using guest::Reg;
namespace layout = guest::layout;

constexpr std::size_t kTouchSize = 64u << 20;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kHugePage = 2u << 20;
// Where the touched memory sits: inside the guest's identity map (1 GiB).
constexpr std::uint64_t kTouchGuestPhys = 0x10000000;
constexpr std::uint32_t kTouchSlot = 1;
constexpr std::uint8_t kPort = 0x10;

std::string error_text(const char *what, int err)
{
	return std::string(what) + ": " + std::strerror(err);
}

Machine long_mode_machine(const System &kvm, const Assembler &code)
{
	Result<Machine> created = Machine::create(kvm, Mode::long64);
	if (!created)
		throw NotApplicable{std::string(created.error().category().name()) + ": " +
				    created.error().message()};
	created->load(code);
	return std::move(*created);
}

System open_kvm()
{
	Result<System> opened = System::open();
	if (!opened)
		throw NotApplicable{"open(/dev/kvm): " + opened.error().message()};
	return std::move(*opened);
}

// hugetlbfs pages for the 2 MiB case (the pool is empty at boot): raised to
// `count` while it lives, then put back.
class HugePagePool {
public:
	explicit HugePagePool(unsigned count)
	{
		std::FILE *f = std::fopen(kPath, "r");
		if (!f || std::fscanf(f, "%u", &previous_) != 1) {
			if (f)
				std::fclose(f);
			throw NotApplicable{error_text(kPath, errno)};
		}
		std::fclose(f);
		if (previous_ < count)
			set(count);
	}
	~HugePagePool() { set(previous_); }
	HugePagePool(const HugePagePool &) = delete;
	HugePagePool &operator=(const HugePagePool &) = delete;

private:
	static constexpr const char *kPath = "/proc/sys/vm/nr_hugepages";
	void set(unsigned count) const
	{
		if (std::FILE *f = std::fopen(kPath, "w")) {
			std::fprintf(f, "%u\n", count);
			std::fclose(f);
		}
	}
	unsigned previous_ = 0;
};

// 64 MiB, mapped anew for every iteration so each run is a first touch.
void *map_touch_memory(bool huge)
{
	void *p;
	if (huge) {
		p = mmap(nullptr, kTouchSize, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
	} else {
		p = mmap(nullptr, kTouchSize, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		// The guest kernel's THP default is "always": keep these 4 KiB.
		if (p != MAP_FAILED && madvise(p, kTouchSize, MADV_NOHUGEPAGE) != 0)
			throw NotApplicable{error_text("madvise(MADV_NOHUGEPAGE)", errno)};
	}
	if (p == MAP_FAILED)
		throw NotApplicable{error_text(huge ? "mmap(MAP_HUGETLB)" : "mmap", errno)};
	return p;
}

void set_slot(const Vm &vm, std::uint32_t slot, std::uint64_t guest_phys, void *host,
	      std::size_t size)
{
	const kvm_userspace_memory_region region{slot, 0, guest_phys, size,
						 reinterpret_cast<std::uint64_t>(host)};
	if (ioctl(vm.fd(), KVM_SET_USER_MEMORY_REGION, &region) != 0)
		throw NotApplicable{error_text("KVM_SET_USER_MEMORY_REGION", errno)};
}

// ns per first touch of all 64 MiB by the guest (16384 writes, one per 4 KiB
// page). With `prefault`, userspace writes every host page first (untimed), so
// the timed KVM_RUN holds only the hypervisor's nested-fault path, without the
// host kernel allocating and zeroing the pages.
double first_touch(unsigned iterations, bool huge, bool prefault)
{
	std::optional<HugePagePool> pool;
	if (huge)
		pool.emplace(2 * kTouchSize / kHugePage);
	const System kvm = open_kvm();
	Assembler code(64, layout::kCode);
	auto start = code.here();
	code.mov(Reg::rdi, kTouchGuestPhys).mov(Reg::ecx, kTouchSize / kPage);
	auto next = code.here();
	code.raw({0x88, 0x07});                               // mov [rdi], al
	code.raw({0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00}); // add rdi, 4096
	code.dec(Reg::ecx).jnz(next).out(kPort, Reg::al).jmp(start);
	const Machine m = long_mode_machine(kvm, code);
	const int fd = m.vcpu.fd();
	const kvm_run &run = m.vcpu.run_data();

	std::uint64_t total = 0;
	// Iteration 0 is the warm-up (first run of the vCPU, allocator state).
	for (unsigned i = 0; i <= iterations; i++) {
		void *memory = map_touch_memory(huge);
		if (prefault)
			for (std::size_t offset = 0; offset < kTouchSize; offset += kPage)
				static_cast<volatile char *>(memory)[offset] = 1;
		set_slot(m.vm, kTouchSlot, kTouchGuestPhys, memory, kTouchSize);
		if (i > 0)
			timed_section_begin();
		const std::uint64_t t0 = now_ns();
		const int rc = ioctl(fd, KVM_RUN, 0);
		const std::uint64_t t1 = now_ns();
		const int err = errno;
		timed_section_end();
		if (rc != 0)
			throw NotApplicable{error_text("KVM_RUN", err)};
		if (run.exit_reason != KVM_EXIT_IO)
			throw NotApplicable{"exit " + describe(m.vcpu.exit()) + ", expected KVM_EXIT_IO"};
		if (i > 0)
			total += t1 - t0;
		set_slot(m.vm, kTouchSlot, kTouchGuestPhys, memory, 0);
		munmap(memory, kTouchSize);
	}
	return static_cast<double>(total) / iterations;
}

// KVM_SET_USER_MEMORY_REGION: a 2 MiB slot added, then deleted, in a VM
// whose vCPU has run (so the hypervisor has its paging structures).
double memslot_add_delete(unsigned iterations)
{
	const System kvm = open_kvm();
	Assembler code(64, layout::kCode);
	code.out(kPort, Reg::al).hlt();
	const Machine m = long_mode_machine(kvm, code);
	if (ioctl(m.vcpu.fd(), KVM_RUN, 0) != 0)
		throw NotApplicable{error_text("KVM_RUN", errno)};
	Result<GuestMemory> memory = GuestMemory::create(kHugePage);
	if (!memory)
		throw NotApplicable{"mmap: " + memory.error().message()};
	void *host = memory->data();
	return time_per_call(iterations, [&] {
		set_slot(m.vm, 5, kTouchGuestPhys, host, kHugePage);
		set_slot(m.vm, 5, kTouchGuestPhys, host, 0);
	});
}

} // namespace

std::vector<Workload> memory_workloads()
{
	return {
		{"touch_64m_4k", "first touch of 64 MiB, 4 KiB host pages (per 64 MiB)", 3,
		 [](unsigned n) { return first_touch(n, false, false); }},
		{"touch_64m_2m", "first touch of 64 MiB, 2 MiB hugetlbfs host pages (per 64 MiB)", 3,
		 [](unsigned n) { return first_touch(n, true, false); }},
		{"touch_64m_4k_prefaulted", "as touch_64m_4k, host pages already present", 3,
		 [](unsigned n) { return first_touch(n, false, true); }},
		{"touch_64m_2m_prefaulted", "as touch_64m_2m, host pages already present", 3,
		 [](unsigned n) { return first_touch(n, true, true); }},
		{"memslot_add_delete", "KVM_SET_USER_MEMORY_REGION add + delete (2 MiB slot)", 2000,
		 memslot_add_delete},
	};
}

} // namespace kvmpp::bench
