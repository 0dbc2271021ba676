// SPDX-License-Identifier: GPL-2.0
//
// Bad input to each kind of fd, where the existing tests do not already cover
// it (system.unknown_ioctl, vm.unknown_ioctl, vcpu.unknown_ioctl: foreign and
// unknown ioctls; vcpu.bad_pointers, memslot.bad_pointer: NULL and unmapped
// arguments; vcpu.create_ids, memslot.*: bad ids and sizes;
// guest.cpuid_ioctls: KVM_SET_CPUID2 after KVM_RUN):
//
// - pointers into memory of the wrong kind: arguments KVM must write to in
//   read-only memory, arrays behind a readable header that cannot be read or
//   written, and the system fd's pointer-taking ioctls;
// - the other pointer-taking ioctls on the wrong kind of fd;
// - kvm_run fields KVM_RUN checks before it enters the guest.
//
// Errnos from Linux 6.1: kvm_dev_ioctl(), kvm_vm_ioctl(), kvm_vcpu_ioctl() in
// virt/kvm/kvm_main.c; kvm_arch_dev_ioctl(), kvm_arch_vm_ioctl(),
// kvm_arch_vcpu_ioctl(), msr_io(), kvm_arch_vcpu_ioctl_run() in
// arch/x86/kvm/x86.c; kvm_dev_ioctl_get_cpuid(), kvm_vcpu_ioctl_set_cpuid2(),
// kvm_vcpu_ioctl_get_cpuid2() in arch/x86/kvm/cpuid.c.
#include "guest_support.h"
#include "kvm.h"
#include "test.h"

#include <kvmpp/abi.hpp>
#include <kvmpp/x86.hpp>

#include <cstring>
#include <sys/mman.h>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace abi = kvmpp::abi;
namespace exits = kvmpp::exits;
namespace x86 = kvmpp::x86;

namespace {

// Two pages: the first read-write, the second with `second_prot`. Arguments
// are placed to end at the boundary, so that a header lies in the first page
// and the array after it in the second.
class Boundary {
public:
	explicit Boundary(int second_prot)
	{
		void *addr = mmap(nullptr, 2 * page_size(), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_TRUE(addr != MAP_FAILED);
		base_ = static_cast<unsigned char *>(addr);
		ASSERT_OK(mprotect(base_ + page_size(), page_size(), second_prot));
	}
	~Boundary() { munmap(base_, 2 * page_size()); }
	Boundary(const Boundary &) = delete;
	Boundary &operator=(const Boundary &) = delete;

	// A T whose last byte is the last byte of the first page.
	template <typename T> T *header() const
	{
		return reinterpret_cast<T *>(base_ + page_size() - sizeof(T));
	}
	// The start of the second page.
	void *second() const { return base_ + page_size(); }

private:
	unsigned char *base_;
};

// One page of read-only memory holding `value`.
class ReadOnly {
public:
	template <typename T> explicit ReadOnly(const T &value)
	{
		void *addr = mmap(nullptr, page_size(), PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_TRUE(addr != MAP_FAILED);
		addr_ = addr;
		std::memcpy(addr_, &value, sizeof(T));
		ASSERT_OK(mprotect(addr_, page_size(), PROT_READ));
	}
	~ReadOnly() { munmap(addr_, page_size()); }
	ReadOnly(const ReadOnly &) = delete;
	ReadOnly &operator=(const ReadOnly &) = delete;

	void *get() const { return addr_; }

private:
	void *addr_;
};

struct Call {
	const char *what;
	unsigned long request;
	void *arg;
};

constexpr unsigned long kKernelAddress = 0xffff888000000000UL; // the direct map

} // namespace

// The system fd's pointer-taking ioctls (kvm_arch_dev_ioctl) answer EFAULT
// for an argument KVM cannot read or write: NULL, a kernel address, an
// unmapped page, a header in read-only memory (both write the header back),
// a header followed by an array KVM cannot write. KVM_GET_MSR_INDEX_LIST
// writes the count into the header before it copies the array, so it is
// there even when the array copy fails.
KVMPP_TEST(bad_input, system_fd_pointers)
{
	UniqueFd kvm = open_kvm();
	void *none = mmap(nullptr, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(none != MAP_FAILED);
	Cleanup unmap([&] { munmap(none, page_size()); });

	// The MSR count, for a header that is large enough.
	abi::MsrListHeader probe{0};
	ASSERT_ERRNO(ioctl(kvm.get(), abi::kGetMsrIndexList, &probe), E2BIG);
	const std::uint32_t nmsrs = probe.nmsrs;
	ASSERT_GE(nmsrs, 1u);

	const ReadOnly readonly_msr_list(abi::MsrListHeader{nmsrs});
	const ReadOnly readonly_cpuid(abi::Cpuid2Header{256, 0});
	for (unsigned long request : {abi::kGetMsrIndexList, abi::kGetSupportedCpuid}) {
		const bool msr = request == abi::kGetMsrIndexList;
		const Call calls[] = {
			{"NULL", request, nullptr},
			{"a kernel address", request, reinterpret_cast<void *>(kKernelAddress)},
			{"an unmapped page", request, none},
			{"a read-only header", request,
			 msr ? readonly_msr_list.get() : readonly_cpuid.get()},
		};
		for (const Call &call : calls) {
			CONTEXT("%s with %s", msr ? "KVM_GET_MSR_INDEX_LIST" : "KVM_GET_SUPPORTED_CPUID",
				call.what);
			ASSERT_ERRNO(ioctl(kvm.get(), call.request, call.arg), EFAULT);
		}
	}

	// Headers KVM can read and write, arrays it cannot write.
	for (int prot : {PROT_NONE, PROT_READ}) {
		CONTEXT("array in a page with protection %d", prot);
		const Boundary msr_list(prot);
		auto *msr_header = msr_list.header<abi::MsrListHeader>();
		msr_header->nmsrs = nmsrs + 1;
		ASSERT_ERRNO(ioctl(kvm.get(), abi::kGetMsrIndexList, msr_header), EFAULT);
		ASSERT_EQ(msr_header->nmsrs, nmsrs);

		const Boundary cpuid(prot);
		auto *cpuid_header = cpuid.header<abi::Cpuid2Header>();
		cpuid_header->nent = 256;
		ASSERT_ERRNO(ioctl(kvm.get(), abi::kGetSupportedCpuid, cpuid_header), EFAULT);
	}

	// The fd is unharmed.
	ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	abi::MsrListHeader again{0};
	ASSERT_ERRNO(ioctl(kvm.get(), abi::kGetMsrIndexList, &again), E2BIG);
	ASSERT_EQ(again.nmsrs, nmsrs);
}

// The system fd's and vCPU fd's pointer-taking ioctls on a fd of another
// kind, with valid argument buffers (so that the errno cannot come from the
// argument): a VM fd answers ENOTTY to all of them (kvm_vm_ioctl ->
// kvm_arch_vm_ioctl's default), the system fd EINVAL to the vCPU ones
// (kvm_arch_dev_ioctl's default). KVM_GET_MSRS is left out on the system fd:
// there it reads feature MSRs.
KVMPP_TEST(bad_input, wrong_fd_kind)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);

	struct {
		abi::Cpuid2Header header;
		kvm_cpuid_entry2 entries[256];
	} cpuid{};
	struct {
		abi::MsrListHeader header;
		std::uint32_t indices[1024];
	} msr_list{};
	struct {
		abi::MsrsHeader header;
		kvm_msr_entry entries[1];
	} msrs{};
	struct {
		abi::SignalMaskHeader header;
		unsigned char sigset[8];
	} sigmask{};
	kvm_regs regs{};
	kvm_sregs sregs{};
	kvm_fpu fpu{};
	auto reset_buffers = [&] {
		std::memset(&cpuid, 0, sizeof(cpuid));
		cpuid.header.nent = 256;
		std::memset(&msr_list, 0, sizeof(msr_list));
		msr_list.header.nmsrs = 1024;
		msrs.header.nmsrs = 1;
		msrs.entries[0] = {x86::kMsrSysenterCs, 0, 0};
		sigmask.header.len = abi::kKernelSigsetSize;
	};

	const Call system_calls[] = {
		{"KVM_GET_MSR_INDEX_LIST", abi::kGetMsrIndexList, &msr_list},
		{"KVM_GET_SUPPORTED_CPUID", abi::kGetSupportedCpuid, &cpuid},
	};
	const Call vcpu_calls[] = {
		{"KVM_GET_REGS", KVM_GET_REGS, &regs},
		{"KVM_SET_REGS", KVM_SET_REGS, &regs},
		{"KVM_GET_SREGS", KVM_GET_SREGS, &sregs},
		{"KVM_SET_SREGS", KVM_SET_SREGS, &sregs},
		{"KVM_GET_FPU", KVM_GET_FPU, &fpu},
		{"KVM_SET_FPU", KVM_SET_FPU, &fpu},
		{"KVM_SET_MSRS", abi::kSetMsrs, &msrs},
		{"KVM_GET_CPUID2", abi::kGetCpuid2, &cpuid},
		{"KVM_SET_CPUID2", abi::kSetCpuid2, &cpuid},
		{"KVM_SET_SIGNAL_MASK", abi::kSetSignalMask, &sigmask},
	};
	for (const Call &call : system_calls) {
		CONTEXT("%s on a VM fd", call.what);
		reset_buffers();
		ASSERT_ERRNO(ioctl(vm.get(), call.request, call.arg), ENOTTY);
	}
	for (const Call &call : vcpu_calls) {
		reset_buffers();
		{
			CONTEXT("%s on a VM fd", call.what);
			ASSERT_ERRNO(ioctl(vm.get(), call.request, call.arg), ENOTTY);
		}
		reset_buffers();
		{
			CONTEXT("%s on the system fd", call.what);
			ASSERT_ERRNO(ioctl(kvm.get(), call.request, call.arg), EINVAL);
		}
	}
	{
		reset_buffers();
		CONTEXT("KVM_GET_MSRS on a VM fd");
		ASSERT_ERRNO(ioctl(vm.get(), abi::kGetMsrs, &msrs), ENOTTY);
	}

	// The right fd takes the same buffers.
	reset_buffers();
	ASSERT_OK(ioctl(kvm.get(), abi::kGetSupportedCpuid, &cpuid));
	ASSERT_OK(ioctl(kvm.get(), abi::kGetMsrIndexList, &msr_list));
}

// ... and the system fd's on a vCPU fd: EINVAL (kvm_arch_vcpu_ioctl's
// default), the vCPU unharmed.
KVMPP_TEST(bad_input, wrong_fd_kind_vcpu, .needs_vcpus = true)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);
	UniqueFd vcpu(ASSERT_OK(ioctl(vm.get(), KVM_CREATE_VCPU, 0)));

	struct {
		abi::Cpuid2Header header;
		kvm_cpuid_entry2 entries[256];
	} cpuid{};
	struct {
		abi::MsrListHeader header;
		std::uint32_t indices[1024];
	} msr_list{};
	for (int i = 0; i < 2; i++) {
		std::memset(&cpuid, 0, sizeof(cpuid));
		cpuid.header.nent = 256;
		std::memset(&msr_list, 0, sizeof(msr_list));
		msr_list.header.nmsrs = 1024;
		const Call calls[] = {
			{"KVM_GET_MSR_INDEX_LIST", abi::kGetMsrIndexList, &msr_list},
			{"KVM_GET_SUPPORTED_CPUID", abi::kGetSupportedCpuid, &cpuid},
		};
		CONTEXT("%s on a vCPU fd", calls[i].what);
		ASSERT_ERRNO(ioctl(vcpu.get(), calls[i].request, calls[i].arg), EINVAL);
		// Nothing was written back.
		ASSERT_EQ(cpuid.header.nent, 256u);
		ASSERT_EQ(msr_list.header.nmsrs, 1024u);
	}
	kvm_regs regs;
	ASSERT_OK(ioctl(vcpu.get(), KVM_GET_REGS, &regs));
	ASSERT_EQ(regs.rip, 0xfff0u);
}

// vCPU ioctls with memory of the wrong kind: a GET into read-only memory is
// EFAULT (copy_to_user), a SET from read-only memory works (KVM only reads
// it); KVM_GET_MSRS reads the indices and writes the values back, so
// read-only entries are EFAULT for it and fine for KVM_SET_MSRS (msr_io:
// copy_to_user only "if (writeback)"); KVM_SET_CPUID2, KVM_GET_CPUID2 and
// KVM_SET_SIGNAL_MASK with a good header and an array KVM cannot read or
// write are EFAULT, and the CPUID table stays as it was. KVM_SET_SIGNAL_MASK
// checks len before it reads the set (EINVAL wins over EFAULT).
KVMPP_TEST(bad_input, vcpu_memory_kinds, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	kvmpp::Vm vm = ASSERT_RESULT(kvm.create_vm());
	kvmpp::Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));
	const int fd = vcpu.fd();

	// GET into read-only memory: EFAULT; SET from it: fine.
	const kvm_regs regs = ASSERT_RESULT(vcpu.get_regs());
	const kvm_sregs sregs = ASSERT_RESULT(vcpu.get_sregs());
	const kvm_fpu fpu = ASSERT_RESULT(vcpu.get_fpu());
	const ReadOnly ro_regs(regs), ro_sregs(sregs), ro_fpu(fpu);
	const Call gets[] = {
		{"KVM_GET_REGS", KVM_GET_REGS, ro_regs.get()},
		{"KVM_GET_SREGS", KVM_GET_SREGS, ro_sregs.get()},
		{"KVM_GET_FPU", KVM_GET_FPU, ro_fpu.get()},
	};
	const Call sets[] = {
		{"KVM_SET_REGS", KVM_SET_REGS, ro_regs.get()},
		{"KVM_SET_SREGS", KVM_SET_SREGS, ro_sregs.get()},
		{"KVM_SET_FPU", KVM_SET_FPU, ro_fpu.get()},
	};
	for (const Call &call : gets) {
		CONTEXT("%s into read-only memory", call.what);
		ASSERT_ERRNO(ioctl(fd, call.request, call.arg), EFAULT);
	}
	for (const Call &call : sets) {
		CONTEXT("%s from read-only memory", call.what);
		ASSERT_OK(ioctl(fd, call.request, call.arg));
	}

	// MSRs: entries in read-only memory.
	{
		const Boundary msrs(PROT_READ);
		auto *header = msrs.header<abi::MsrsHeader>();
		header->nmsrs = 1;
		header->pad = 0;
		// The entry was written while the page was writable: make it so.
		ASSERT_OK(mprotect(msrs.second(), page_size(), PROT_READ | PROT_WRITE));
		*static_cast<kvm_msr_entry *>(msrs.second()) = {x86::kMsrSysenterCs, 0, 0x33};
		ASSERT_OK(mprotect(msrs.second(), page_size(), PROT_READ));
		ASSERT_ERRNO(ioctl(fd, abi::kGetMsrs, header), EFAULT);
		ASSERT_EQ(static_cast<kvm_msr_entry *>(msrs.second())->data, 0x33u);
		ASSERT_EQ(ioctl(fd, abi::kSetMsrs, header), 1);
		ASSERT_EQ(ASSERT_RESULT(vcpu.get_msr(x86::kMsrSysenterCs)), 0x33u);
		// Too many entries: E2BIG for a set as for a get (vcpu.bad_pointers).
		header->nmsrs = 1000;
		ASSERT_ERRNO(ioctl(fd, abi::kSetMsrs, header), E2BIG);
	}

	// CPUID: a table of one entry, then arrays KVM cannot reach.
	kvm_cpuid_entry2 entry{};
	entry.function = 0;
	entry.eax = 1;
	entry.ebx = 0x706d766b; // "kvmp"
	ASSERT_RESULT(vcpu.set_cpuid(std::span(&entry, 1)));
	for (int prot : {PROT_NONE, PROT_READ}) {
		CONTEXT("entries in a page with protection %d", prot);
		const Boundary cpuid(prot);
		auto *header = cpuid.header<abi::Cpuid2Header>();
		header->nent = 1;
		header->padding = 0;
		if (prot == PROT_NONE)
			ASSERT_ERRNO(ioctl(fd, abi::kSetCpuid2, header), EFAULT);
		header->nent = 4;
		ASSERT_ERRNO(ioctl(fd, abi::kGetCpuid2, header), EFAULT);
	}
	const std::vector<kvm_cpuid_entry2> table = ASSERT_RESULT(vcpu.get_cpuid());
	ASSERT_EQ(table.size(), 1u);
	ASSERT_EQ(table[0].ebx, 0x706d766bu);

	// Signal mask: the set behind the header is unreadable.
	{
		const Boundary mask(PROT_NONE);
		auto *header = mask.header<abi::SignalMaskHeader>();
		header->len = abi::kKernelSigsetSize;
		ASSERT_ERRNO(ioctl(fd, abi::kSetSignalMask, header), EFAULT);
		header->len = 4;
		ASSERT_ERRNO(ioctl(fd, abi::kSetSignalMask, header), EINVAL);
	}

	// The vCPU is unharmed.
	const kvm_regs after = ASSERT_RESULT(vcpu.get_regs());
	ASSERT_EQ(std::memcmp(&after, &regs, sizeof(regs)), 0);
}

// KVM_RUN refuses kvm_run.kvm_valid_regs or kvm_dirty_regs with a bit that
// is not a KVM_SYNC_X86_* field (KVM_SYNC_X86_VALID_FIELDS, bits 0-2), with
// EINVAL and without entering the guest; the check comes before the one of
// immediate_exit (EINVAL, not EINTR). With the fields cleared the guest runs
// from where it was.
KVMPP_TEST(bad_input, run_sync_regs_fields, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
	Assembler code(16, layout::kCode);
	code.out(0x30, Reg::al).hlt();
	m.load(code);
	kvm_run &run = m.vcpu.run_data();

	const __u64 bad[] = {1ULL << 3, 1ULL << 31, 1ULL << 63, ~0ULL};
	for (bool dirty : {false, true}) {
		for (__u64 value : bad) {
			CONTEXT("kvm_run.%s = %#llx", dirty ? "kvm_dirty_regs" : "kvm_valid_regs",
				static_cast<unsigned long long>(value));
			(dirty ? run.kvm_dirty_regs : run.kvm_valid_regs) = value;
			ASSERT_RESULT_ERRNO(m.vcpu.run(), EINVAL);
			m.vcpu.request_immediate_exit();
			ASSERT_RESULT_ERRNO(m.vcpu.run(), EINVAL);
			m.vcpu.request_immediate_exit(false);
			(dirty ? run.kvm_dirty_regs : run.kvm_valid_regs) = 0;
			ASSERT_EQ(run.exit_reason, KVM_EXIT_UNKNOWN);
			ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, layout::kCode);
		}
	}
	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x30);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
}

// Without an in-kernel local APIC, KVM_RUN first sets CR8 (the TPR) from
// kvm_run.cr8 (kvm_set_cr8: only 0-15 are valid; anything else is EINVAL
// before the guest runs) and reports it back in kvm_run.cr8 when it returns,
// failed or not (post_kvm_run_save). So kvm_run.cr8 wins over a CR8 set with
// KVM_SET_SREGS, the guest reads it with MOV from CR8, and what the guest
// writes with MOV to CR8 is in kvm_run.cr8 and KVM_GET_SREGS afterwards. A
// guest that lowers its TPR exits to userspace with KVM_EXIT_SET_TPR right
// after the MOV (so that the VMM can deliver an interrupt the TPR held back:
// cr8_write_interception on SVM, handle_cr on VMX); raising it does not exit.
KVMPP_TEST(bad_input, run_cr8, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	Assembler code(64, layout::kCode);
	code.raw({0x44, 0x0f, 0x20, 0xc0}) // mov rax, cr8
		.out(0x30, Reg::al)
		.mov(Reg::eax, 12)
		.raw({0x44, 0x0f, 0x22, 0xc0}) // mov cr8, rax: up from 9, no exit
		.out(0x31, Reg::al)
		.mov(Reg::eax, 3)
		.raw({0x44, 0x0f, 0x22, 0xc0}); // mov cr8, rax: down, KVM_EXIT_SET_TPR
	const std::uint64_t after_lowering = code.address();
	code.out(0x32, Reg::al).hlt();
	m.load(code);
	kvm_run &run = m.vcpu.run_data();

	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	sregs.cr8 = 5;
	ASSERT_RESULT(m.vcpu.set_sregs(sregs));
	for (__u64 cr8 : {16ULL, 0x100ULL, 1ULL << 63, ~0ULL}) {
		CONTEXT("kvm_run.cr8 = %#llx", static_cast<unsigned long long>(cr8));
		run.cr8 = cr8;
		ASSERT_RESULT_ERRNO(m.vcpu.run(), EINVAL);
		ASSERT_EQ(run.cr8, 5u); // the vCPU's CR8, written back
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).cr8, 5u);
		ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, layout::kCode);
	}

	run.cr8 = 9;
	const exits::Io read = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(read.port, 0x30);
	ASSERT_EQ(read.value(), 9u);
	ASSERT_EQ(run.cr8, 9u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).cr8, 9u);

	const exits::Io raised = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(raised.port, 0x31);
	ASSERT_EQ(run.cr8, 12u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).cr8, 12u);

	const exits::Unknown lowered = ASSERT_EXIT(exits::Unknown, m.vcpu);
	ASSERT_EQ(lowered.reason, KVM_EXIT_SET_TPR);
	ASSERT_EQ(run.cr8, 3u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).cr8, 3u);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_regs()).rip, after_lowering);

	ASSERT_EQ(ASSERT_EXIT(exits::Io, m.vcpu).port, 0x32);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(run.cr8, 3u);
}
