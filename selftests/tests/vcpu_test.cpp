// SPDX-License-Identifier: GPL-2.0
//
// vCPU fds: creating them, what they are, their kvm_run mapping, register
// state, and the vCPU ioctls' error paths (kvm_vm_ioctl_create_vcpu(),
// kvm_vcpu_ioctl(), kvm_vcpu_fault() in virt/kvm/kvm_main.c;
// kvm_arch_vcpu_ioctl(), kvm_vcpu_reset(), __set_regs(), __set_sregs_common()
// in arch/x86/kvm/x86.c of Linux 6.1).
#include "guest_support.h"
#include "kvm.h"
#include "test.h"

#include <kvmpp/abi.hpp>
#include <kvmpp/x86.hpp>

#include <cstring>
#include <set>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <termios.h>
#include <vector>

using namespace kvmpp::test;
using kvmpp::System;
using kvmpp::Vcpu;
using kvmpp::Vm;
namespace x86 = kvmpp::x86;

namespace {

std::string fd_target(int fd)
{
	const std::string link = "/proc/self/fd/" + std::to_string(fd);
	char target[256];
	const ssize_t length = ASSERT_OK(readlink(link.c_str(), target, sizeof(target)));
	return std::string(target, length);
}

void assert_segment_eq(const kvm_segment &got, const kvm_segment &want, const char *name)
{
	CONTEXT("segment %s", name);
	ASSERT_EQ(got.base, want.base);
	ASSERT_EQ(got.limit, want.limit);
	ASSERT_EQ(got.selector, want.selector);
	ASSERT_EQ(got.type, want.type);
	ASSERT_EQ(got.present, want.present);
	ASSERT_EQ(got.dpl, want.dpl);
	ASSERT_EQ(got.db, want.db);
	ASSERT_EQ(got.s, want.s);
	ASSERT_EQ(got.l, want.l);
	ASSERT_EQ(got.g, want.g);
	ASSERT_EQ(got.avl, want.avl);
}

kvm_segment segment(std::uint64_t base, std::uint32_t limit, std::uint16_t selector,
		    std::uint8_t type, bool s, bool db)
{
	kvm_segment seg{};
	seg.base = base;
	seg.limit = limit;
	seg.selector = selector;
	seg.type = type;
	seg.present = 1;
	seg.s = s;
	seg.db = db;
	seg.g = limit > 0xfffff; // the only G KVM reports back on SVM (svm_get_segment)
	return seg;
}

} // namespace

// vCPU ids: any id below KVM_CAP_MAX_VCPU_ID, each at most once per VM
// (kvm_vm_ioctl_create_vcpu: EINVAL for id >= KVM_MAX_VCPU_IDS, checked again
// against kvm->arch.max_vcpu_ids by kvm_arch_vcpu_precreate; EEXIST when
// kvm_get_vcpu_by_id finds it).
KVMPP_TEST(vcpu, create_ids, .timeout_s = 60, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	const int max_id = ASSERT_RESULT(vm.check_extension(KVM_CAP_MAX_VCPU_ID));
	ASSERT_GE(max_id, 1);
	note("KVM_CAP_MAX_VCPU_ID = %d", max_id);

	std::vector<Vcpu> vcpus;
	std::set<int> fds;
	for (unsigned id : {0u, 1u, 2u, 7u, static_cast<unsigned>(max_id - 1)}) {
		CONTEXT("KVM_CREATE_VCPU(%u)", id);
		vcpus.push_back(ASSERT_RESULT(vm.create_vcpu(id)));
		ASSERT_TRUE(fds.insert(vcpus.back().fd()).second);
	}

	for (unsigned id : {0u, 7u, static_cast<unsigned>(max_id - 1)}) {
		CONTEXT("KVM_CREATE_VCPU(%u) again", id);
		ASSERT_RESULT_ERRNO(vm.create_vcpu(id), EEXIST);
	}
	for (unsigned id : {static_cast<unsigned>(max_id), static_cast<unsigned>(max_id) + 1, 0xffffffffu}) {
		CONTEXT("KVM_CREATE_VCPU(%u)", id);
		ASSERT_RESULT_ERRNO(vm.create_vcpu(id), EINVAL);
	}

	// The refusals left nothing behind: the next id still works, and the
	// vCPUs created so far still answer.
	vcpus.push_back(ASSERT_RESULT(vm.create_vcpu(3)));
	for (const Vcpu &vcpu : vcpus) {
		CONTEXT("vCPU %u", vcpu.id());
		ASSERT_RESULT(vcpu.get_regs());
	}

	// Ids are per VM.
	Vm other = ASSERT_RESULT(kvm.create_vm());
	Vcpu other0 = ASSERT_RESULT(other.create_vcpu(0));
}

// The vCPU count capabilities (kvm_vm_ioctl_check_extension in x86.c):
// NR_VCPUS, the recommended maximum, is min(online CPUs, KVM_MAX_VCPUS);
// MAX_VCPUS is KVM_MAX_VCPUS; MAX_VCPU_ID is at least that.
KVMPP_TEST(vcpu, count_capabilities, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	const long online = sysconf(_SC_NPROCESSORS_ONLN);
	ASSERT_GE(online, 1);
	struct Source {
		const char *what;
		std::function<kvmpp::Result<int>(long)> check;
	} sources[] = {
		{"/dev/kvm", [&](long cap) { return kvm.check_extension(cap); }},
		{"VM fd", [&](long cap) { return vm.check_extension(cap); }},
	};
	for (const Source &source : sources) {
		CONTEXT("KVM_CHECK_EXTENSION on %s", source.what);
		const int nr = ASSERT_RESULT(source.check(KVM_CAP_NR_VCPUS));
		const int max = ASSERT_RESULT(source.check(KVM_CAP_MAX_VCPUS));
		const int max_id = ASSERT_RESULT(source.check(KVM_CAP_MAX_VCPU_ID));
		note("%s: NR_VCPUS %d, MAX_VCPUS %d, MAX_VCPU_ID %d, online CPUs %ld", source.what,
		     nr, max, max_id, online);
		ASSERT_GE(nr, 1);
		ASSERT_GE(max, nr);
		const long recommended = online < max ? online : max;
		ASSERT_EQ(nr, recommended);
		ASSERT_GE(max_id, max);
	}
}

// A vCPU fd is an anonymous inode named "kvm-vcpu:<id>", opened O_RDWR and
// O_CLOEXEC (create_vcpu_fd), whatever the VM fd's flags.
KVMPP_TEST(vcpu, fd_name_and_flags, .needs_vcpus = true)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);
	ASSERT_OK(fcntl(vm.get(), F_SETFD, 0)); // the VM fd without FD_CLOEXEC
	for (int id : {0, 5, 42}) {
		CONTEXT("vCPU %d", id);
		UniqueFd vcpu(ASSERT_OK(ioctl(vm.get(), KVM_CREATE_VCPU, id)));
		ASSERT_EQ(fd_target(vcpu.get()), "anon_inode:kvm-vcpu:" + std::to_string(id));
		ASSERT_TRUE(ASSERT_OK(fcntl(vcpu.get(), F_GETFD)) & FD_CLOEXEC);
		ASSERT_EQ(ASSERT_OK(fcntl(vcpu.get(), F_GETFL)) & O_ACCMODE, O_RDWR);
	}
}

// The vCPU mapping: KVM_GET_VCPU_MMAP_SIZE bytes (kvm_run, the PIO data page,
// the coalesced MMIO ring on x86) map; a page beyond them maps too (mmap does
// not check) but touching it is SIGBUS (kvm_vcpu_fault ->
// kvm_arch_vcpu_fault returns VM_FAULT_SIGBUS).
KVMPP_TEST(vcpu, mmap_pages, .needs_vcpus = true)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);
	UniqueFd vcpu(ASSERT_OK(ioctl(vm.get(), KVM_CREATE_VCPU, 0)));
	const long page = page_size();
	const int size = ASSERT_OK(ioctl(kvm.get(), KVM_GET_VCPU_MMAP_SIZE, 0));
	ASSERT_EQ(size % page, 0);
	ASSERT_GE(size, 3 * page);

	void *whole = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(), 0);
	ASSERT_TRUE(whole != MAP_FAILED);
	Cleanup unmap_whole([&] { munmap(whole, size); });
	// Every page of it can be read (and so is backed by a page of KVM's).
	volatile const unsigned char *bytes = static_cast<unsigned char *>(whole);
	unsigned sum = 0;
	for (long offset = 0; offset < size; offset += page)
		sum += bytes[offset];
	(void)sum;
	// A fresh kvm_run: no exit yet, nothing requested.
	const auto *run = static_cast<const kvm_run *>(whole);
	ASSERT_EQ(run->exit_reason, KVM_EXIT_UNKNOWN);
	ASSERT_EQ(run->immediate_exit, 0);
	ASSERT_EQ(run->request_interrupt_window, 0);

	// The PIO page alone, at its own offset.
	void *pio = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.get(),
			 KVM_PIO_PAGE_OFFSET * page);
	ASSERT_TRUE(pio != MAP_FAILED);
	Cleanup unmap_pio([&] { munmap(pio, page); });
	static_cast<volatile unsigned char *>(pio)[0] = 0xa5;
	ASSERT_EQ(bytes[KVM_PIO_PAGE_OFFSET * page], 0xa5); // the same page

	// One page past the end: the mapping is made, the access faults.
	void *beyond = mmap(nullptr, page, PROT_READ, MAP_SHARED, vcpu.get(), size);
	ASSERT_TRUE(beyond != MAP_FAILED);
	Cleanup unmap_beyond([&] { munmap(beyond, page); });
	const pid_t child = ASSERT_OK(fork());
	if (child == 0) {
		signal(SIGBUS, SIG_DFL);
		volatile unsigned char value = *static_cast<volatile unsigned char *>(beyond);
		(void)value;
		_exit(0); // not reached on KVM
	}
	int status = 0;
	ASSERT_EQ(waitpid(child, &status, 0), child);
	ASSERT_TRUE(WIFSIGNALED(status));
	ASSERT_EQ(WTERMSIG(status), SIGBUS);
}

// Two mappings of page 0 are the same kvm_run: what userspace writes in one
// (immediate_exit) and what KVM_RUN writes (the exit) show in both.
KVMPP_TEST(vcpu, run_shared_between_mappings, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	auto m = ASSERT_RESULT(kvmpp::guest::Machine::create(kvm, kvmpp::guest::Mode::real));
	kvmpp::guest::Assembler code(16, kvmpp::guest::layout::kCode);
	code.mov(kvmpp::guest::Reg::al, 0x5a).out(0x30, kvmpp::guest::Reg::al).hlt();
	m.load(code);

	const long page = page_size();
	void *second = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, m.vcpu.fd(), 0);
	ASSERT_TRUE(second != MAP_FAILED);
	Cleanup unmap([&] { munmap(second, page); });
	auto *other = static_cast<volatile kvm_run *>(second);
	ASSERT_TRUE(static_cast<const void *>(&m.vcpu.run_data()) != second);

	other->immediate_exit = 1;
	ASSERT_EQ(m.vcpu.run_data().immediate_exit, 1);
	ASSERT_RESULT_ERRNO(m.vcpu.run(), EINTR);
	other->immediate_exit = 0;

	kvmpp::exits::Io io = ASSERT_EXIT(kvmpp::exits::Io, m.vcpu);
	ASSERT_EQ(io.port, 0x30);
	ASSERT_EQ(other->exit_reason, KVM_EXIT_IO);
	ASSERT_EQ(other->io.port, 0x30);
	ASSERT_EQ(other->io.size, 1);
	ASSERT_EQ(other->io.count, 1u);
	ASSERT_EQ(other->io.data_offset, io.data_offset);
}

// The state of a new vCPU: RESET as kvm_vcpu_reset(vcpu, false) leaves it,
// asserting only what SVM (init_vmcb) and VMX (vmx_vcpu_reset) agree on.
KVMPP_TEST(vcpu, initial_state, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	const kvm_regs regs = ASSERT_RESULT(vcpu.get_regs());
	ASSERT_EQ(regs.rip, 0xfff0u);
	ASSERT_EQ(regs.rflags, x86::kRflagsFixed);
	// RDX holds the processor signature; with no CPUID set yet KVM uses its
	// default family 6 (0x600).
	ASSERT_EQ(regs.rdx, 0x600u);
	for (auto [name, value] : {std::pair{"rax", regs.rax}, {"rbx", regs.rbx}, {"rcx", regs.rcx},
				   {"rsi", regs.rsi}, {"rdi", regs.rdi}, {"rsp", regs.rsp},
				   {"rbp", regs.rbp}, {"r8", regs.r8}, {"r9", regs.r9},
				   {"r10", regs.r10}, {"r11", regs.r11}, {"r12", regs.r12},
				   {"r13", regs.r13}, {"r14", regs.r14}, {"r15", regs.r15}}) {
		CONTEXT("register %s", name);
		ASSERT_EQ(value, 0u);
	}

	const kvm_sregs sregs = ASSERT_RESULT(vcpu.get_sregs());
	ASSERT_EQ(sregs.cs.selector, 0xf000);
	ASSERT_EQ(sregs.cs.base, 0xffff0000u);
	ASSERT_EQ(sregs.cs.limit, 0xffffu);
	ASSERT_EQ(sregs.cs.present, 1);
	ASSERT_EQ(sregs.cs.s, 1);
	ASSERT_EQ(sregs.cs.type & 0xa, 0xa); // code, readable
	for (auto [name, seg] : {std::pair{"ds", sregs.ds}, {"es", sregs.es}, {"fs", sregs.fs},
				 {"gs", sregs.gs}, {"ss", sregs.ss}}) {
		CONTEXT("segment %s", name);
		ASSERT_EQ(seg.selector, 0);
		ASSERT_EQ(seg.base, 0u);
		ASSERT_EQ(seg.limit, 0xffffu);
		ASSERT_EQ(seg.present, 1);
		ASSERT_EQ(seg.s, 1);
		ASSERT_EQ(seg.type & 0xa, 0x2); // data, writable
	}
	// TR: a busy TSS (16-bit on SVM, 32-bit on VMX); LDTR: an LDT.
	ASSERT_EQ(sregs.tr.selector, 0);
	ASSERT_EQ(sregs.tr.base, 0u);
	ASSERT_EQ(sregs.tr.limit, 0xffffu);
	ASSERT_EQ(sregs.tr.present, 1);
	ASSERT_EQ(sregs.tr.s, 0);
	ASSERT_EQ(sregs.tr.type & 0x7, 0x3);
	ASSERT_EQ(sregs.ldt.selector, 0);
	ASSERT_EQ(sregs.ldt.base, 0u);
	ASSERT_EQ(sregs.ldt.limit, 0xffffu);
	ASSERT_EQ(sregs.ldt.type, x86::kTypeLdt);
	ASSERT_EQ(sregs.gdt.base, 0u);
	ASSERT_EQ(sregs.gdt.limit, 0xffff);
	ASSERT_EQ(sregs.idt.base, 0u);
	ASSERT_EQ(sregs.idt.limit, 0xffff);
	// CR0.CD/NW/ET set on RESET; paging and protection off.
	ASSERT_EQ(sregs.cr0, x86::kCr0Cd | x86::kCr0Nw | x86::kCr0Et);
	ASSERT_EQ(sregs.cr2, 0u);
	ASSERT_EQ(sregs.cr3, 0u);
	ASSERT_EQ(sregs.cr4, 0u);
	ASSERT_EQ(sregs.cr8, 0u);
	ASSERT_EQ(sregs.efer, 0u);
	for (__u64 word : sregs.interrupt_bitmap)
		ASSERT_EQ(word, 0u);

	// The x87 FPU as FNINIT leaves it. KVM_GET_FPU does not report MXCSR at
	// all (kvm_arch_vcpu_ioctl_get_fpu copies everything but it; the struct
	// comes from kzalloc): it reads 0, not the power-on 0x1f80.
	kvm_fpu fpu;
	std::memset(&fpu, 0xff, sizeof(fpu));
	ASSERT_OK(ioctl(vcpu.fd(), KVM_GET_FPU, &fpu));
	ASSERT_EQ(fpu.fcw, 0x37f);
	ASSERT_EQ(fpu.fsw, 0);
	ASSERT_EQ(fpu.mxcsr, 0u);
}

// KVM_SET_REGS / KVM_GET_REGS round trip. RFLAGS bit 1 is forced on
// (__set_regs: kvm_set_rflags(regs->rflags | X86_EFLAGS_FIXED)).
KVMPP_TEST(vcpu, regs_round_trip, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	kvm_regs set{};
	__u64 *fields[] = {&set.rax, &set.rbx, &set.rcx, &set.rdx, &set.rsi, &set.rdi,
			   &set.rsp, &set.rbp, &set.r8,  &set.r9,  &set.r10, &set.r11,
			   &set.r12, &set.r13, &set.r14, &set.r15, &set.rip};
	std::uint64_t pattern = 0x0123456789abcdefULL;
	for (__u64 *field : fields) {
		*field = pattern;
		pattern = pattern * 6364136223846793005ULL + 1442695040888963407ULL;
	}
	// CF PF AF ZF SF DF OF, without the fixed bit 1.
	set.rflags = 0xcd5;
	ASSERT_RESULT(vcpu.set_regs(set));

	kvm_regs want = set;
	want.rflags = 0xcd5 | x86::kRflagsFixed;
	const kvm_regs got = ASSERT_RESULT(vcpu.get_regs());
	for (std::size_t i = 0; i < std::size(fields); i++) {
		CONTEXT("field %zu", i);
		const auto offset = reinterpret_cast<const char *>(fields[i]) -
				    reinterpret_cast<const char *>(&set);
		__u64 got_value, want_value;
		std::memcpy(&got_value, reinterpret_cast<const char *>(&got) + offset, 8);
		std::memcpy(&want_value, reinterpret_cast<const char *>(&want) + offset, 8);
		ASSERT_EQ(got_value, want_value);
	}
	ASSERT_EQ(got.rflags, want.rflags);

	// And again with other values: nothing sticks from the first set.
	kvm_regs zero{};
	zero.rflags = x86::kRflagsFixed;
	ASSERT_RESULT(vcpu.set_regs(zero));
	const kvm_regs got_zero = ASSERT_RESULT(vcpu.get_regs());
	ASSERT_EQ(std::memcmp(&got_zero, &zero, sizeof(zero)), 0);
}

// KVM_SET_SREGS / KVM_GET_SREGS round trip of segments (hidden parts
// included), descriptor tables and control registers. Types carry the
// accessed bit and G matches the limit, as KVM reports them on every vendor.
KVMPP_TEST(vcpu, sregs_round_trip, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	kvm_sregs set = ASSERT_RESULT(vcpu.get_sregs());
	set.cs = segment(0x10000, 0xfffff, 0x08, x86::kTypeCodeRxAccessed, true, true);
	set.ds = segment(0x20000, 0xffff, 0x10, x86::kTypeDataRwAccessed, true, true);
	set.es = segment(0x30000, 0xffffffff, 0x18, x86::kTypeDataRwAccessed, true, true);
	set.fs = segment(0x7fff12345000, 0xfff, 0x20, x86::kTypeDataRwAccessed, true, true);
	set.gs = segment(0x40000, 0x1ffff, 0x28, x86::kTypeDataRwAccessed, true, false);
	set.ss = segment(0, 0xffffffff, 0x30, x86::kTypeDataRwAccessed, true, true);
	set.tr = segment(0x50000, 0x67, 0x38, x86::kTypeTss32Busy, false, false);
	set.ldt = segment(0x60000, 0x27, 0x40, x86::kTypeLdt, false, false);
	set.gdt.base = 0x70000;
	set.gdt.limit = 0x47;
	set.idt.base = 0x71000;
	set.idt.limit = 0x7ff;
	set.cr0 = x86::kCr0Pe | x86::kCr0Mp | x86::kCr0Et | x86::kCr0Ne;
	set.cr2 = 0xdeadbeef000;
	set.cr3 = 0x123000;
	set.cr4 = x86::kCr4Pse | x86::kCr4Pge | x86::kCr4Osfxsr | x86::kCr4Osxmmexcpt;
	set.cr8 = 5;
	set.efer = x86::kEferSce;
	set.apic_base = 0xfee00900; // default base, enabled, BSP
	ASSERT_RESULT(vcpu.set_sregs(set));

	const kvm_sregs got = ASSERT_RESULT(vcpu.get_sregs());
	assert_segment_eq(got.cs, set.cs, "cs");
	assert_segment_eq(got.ds, set.ds, "ds");
	assert_segment_eq(got.es, set.es, "es");
	assert_segment_eq(got.fs, set.fs, "fs");
	assert_segment_eq(got.gs, set.gs, "gs");
	assert_segment_eq(got.ss, set.ss, "ss");
	assert_segment_eq(got.tr, set.tr, "tr");
	assert_segment_eq(got.ldt, set.ldt, "ldt");
	ASSERT_EQ(got.gdt.base, set.gdt.base);
	ASSERT_EQ(got.gdt.limit, set.gdt.limit);
	ASSERT_EQ(got.idt.base, set.idt.base);
	ASSERT_EQ(got.idt.limit, set.idt.limit);
	ASSERT_EQ(got.cr0, set.cr0);
	ASSERT_EQ(got.cr2, set.cr2);
	ASSERT_EQ(got.cr3, set.cr3);
	ASSERT_EQ(got.cr4, set.cr4);
	ASSERT_EQ(got.cr8, set.cr8);
	ASSERT_EQ(got.efer, set.efer);
	ASSERT_EQ(got.apic_base, set.apic_base);

	// One pending interrupt in the bitmap is queued and reported back
	// (__set_sregs -> kvm_queue_interrupt; __get_sregs sets its bit).
	kvm_sregs with_irq = got;
	with_irq.interrupt_bitmap[0x31 / 64] |= 1ULL << (0x31 % 64);
	ASSERT_RESULT(vcpu.set_sregs(with_irq));
	const kvm_sregs got_irq = ASSERT_RESULT(vcpu.get_sregs());
	for (std::size_t i = 0; i < std::size(got_irq.interrupt_bitmap); i++) {
		CONTEXT("interrupt_bitmap[%zu]", i);
		ASSERT_EQ(got_irq.interrupt_bitmap[i], with_irq.interrupt_bitmap[i]);
	}
}

// KVM_SET_FPU / KVM_GET_FPU round trip (the legacy FXSAVE image), except
// MXCSR, which neither ioctl transfers (kvm_arch_vcpu_ioctl_set_fpu and
// _get_fpu skip it: it is only reachable through KVM_SET/GET_XSAVE).
KVMPP_TEST(vcpu, fpu_round_trip, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	kvm_fpu set = ASSERT_RESULT(vcpu.get_fpu());
	for (int i = 0; i < 8; i++)
		for (int b = 0; b < 10; b++) // an 80-bit register in each 16-byte slot
			set.fpr[i][b] = static_cast<__u8>(0x10 * i + b + 1);
	for (int i = 0; i < 16; i++)
		for (int b = 0; b < 16; b++)
			set.xmm[i][b] = static_cast<__u8>(0x80 + 7 * i + b);
	set.fcw = 0x027f;
	set.fsw = 0x3800;
	set.ftwx = 0xc3;
	set.last_opcode = 0x1db;
	set.last_ip = 0x0000123456789abcULL;
	set.last_dp = 0x0000fedcba987654ULL;
	set.mxcsr = 0x7f80; // all exceptions masked, round toward zero
	ASSERT_RESULT(vcpu.set_fpu(set));

	const kvm_fpu got = ASSERT_RESULT(vcpu.get_fpu());
	for (int i = 0; i < 8; i++) {
		CONTEXT("st(%d)", i);
		ASSERT_EQ(std::memcmp(got.fpr[i], set.fpr[i], 10), 0);
	}
	for (int i = 0; i < 16; i++) {
		CONTEXT("xmm%d", i);
		ASSERT_EQ(std::memcmp(got.xmm[i], set.xmm[i], 16), 0);
	}
	ASSERT_EQ(got.fcw, set.fcw);
	ASSERT_EQ(got.fsw, set.fsw);
	ASSERT_EQ(got.ftwx, set.ftwx);
	ASSERT_EQ(got.last_opcode, set.last_opcode);
	ASSERT_EQ(got.last_ip, set.last_ip);
	ASSERT_EQ(got.last_dp, set.last_dp);
	ASSERT_EQ(got.mxcsr, 0u);
}

// Every vCPU ioctl that copies a struct in or out fails with EFAULT for an
// address that is not mapped, and changes nothing.
KVMPP_TEST(vcpu, bad_pointers, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Vm vm = ASSERT_RESULT(kvm.create_vm());
	Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));
	const kvm_regs regs_before = ASSERT_RESULT(vcpu.get_regs());
	const kvm_sregs sregs_before = ASSERT_RESULT(vcpu.get_sregs());

	const long page = page_size();
	void *none = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(none != MAP_FAILED);
	Cleanup unmap([&] { munmap(none, page); });
	struct Call {
		const char *what;
		unsigned long request;
	};
	const Call calls[] = {
		{"KVM_GET_REGS", KVM_GET_REGS},
		{"KVM_SET_REGS", KVM_SET_REGS},
		{"KVM_GET_SREGS", KVM_GET_SREGS},
		{"KVM_SET_SREGS", KVM_SET_SREGS},
		{"KVM_GET_FPU", KVM_GET_FPU},
		{"KVM_SET_FPU", KVM_SET_FPU},
		// Not the <linux/kvm.h> macros: their C++ request numbers are wrong
		// (see kvmpp/abi.hpp).
		{"KVM_GET_MSRS", kvmpp::abi::kGetMsrs},
		{"KVM_SET_MSRS", kvmpp::abi::kSetMsrs},
		{"KVM_GET_CPUID2", kvmpp::abi::kGetCpuid2},
		{"KVM_SET_CPUID2", kvmpp::abi::kSetCpuid2},
		{"KVM_SET_SIGNAL_MASK", kvmpp::abi::kSetSignalMask},
	};
	for (const Call &call : calls) {
		for (void *address : {none, static_cast<void *>(nullptr)}) {
			// A NULL signal mask is valid: it means "no mask".
			if (address == nullptr && call.request == kvmpp::abi::kSetSignalMask)
				continue;
			CONTEXT("%s(%p)", call.what, address);
			ASSERT_ERRNO(ioctl(vcpu.fd(), call.request, address), EFAULT);
		}
	}

	// kvm_msrs whose header is readable but whose entries are not.
	auto *tail = static_cast<unsigned char *>(
		mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	ASSERT_TRUE(tail != MAP_FAILED);
	Cleanup unmap_tail([&] { munmap(tail, 2 * page); });
	ASSERT_OK(mprotect(tail + page, page, PROT_NONE));
	auto *msrs = reinterpret_cast<kvmpp::abi::MsrsHeader *>(tail + page - sizeof(kvmpp::abi::MsrsHeader));
	msrs->nmsrs = 1;
	msrs->pad = 0;
	ASSERT_ERRNO(ioctl(vcpu.fd(), kvmpp::abi::kGetMsrs, msrs), EFAULT);
	ASSERT_ERRNO(ioctl(vcpu.fd(), kvmpp::abi::kSetMsrs, msrs), EFAULT);
	// Too many entries at once (msr_io: nmsrs >= MAX_IO_MSRS, 1000): E2BIG
	// before anything is read.
	msrs->nmsrs = 1000;
	ASSERT_ERRNO(ioctl(vcpu.fd(), kvmpp::abi::kGetMsrs, msrs), E2BIG);

	const kvm_regs regs_after = ASSERT_RESULT(vcpu.get_regs());
	const kvm_sregs sregs_after = ASSERT_RESULT(vcpu.get_sregs());
	ASSERT_EQ(std::memcmp(&regs_after, &regs_before, sizeof(kvm_regs)), 0);
	ASSERT_EQ(std::memcmp(&sregs_after, &sregs_before, sizeof(kvm_sregs)), 0);
}

// Unlike a VM fd (ENOTTY), a vCPU fd answers EINVAL to what it does not
// know: kvm_vcpu_ioctl returns EINVAL for a foreign ioctl type, and
// kvm_arch_vcpu_ioctl's default is EINVAL. KVM_RUN takes no argument.
KVMPP_TEST(vcpu, unknown_ioctl, .needs_vcpus = true)
{
	UniqueFd kvm = open_kvm();
	UniqueFd vm = create_vm(kvm);
	UniqueFd vcpu(ASSERT_OK(ioctl(vm.get(), KVM_CREATE_VCPU, 0)));

	int int_arg = 0;
	termios tty{};
	kvm_userspace_memory_region region{};
	struct Call {
		const char *what;
		unsigned long request;
		unsigned long arg;
	};
	const Call unsupported[] = {
		{"_IO(KVMIO, 0xff)", _IO(KVMIO, 0xff), 0},
		{"_IOW(KVMIO, 0xfe, int)", _IOW(KVMIO, 0xfe, int), reinterpret_cast<unsigned long>(&int_arg)},
		{"TCGETS", TCGETS, reinterpret_cast<unsigned long>(&tty)},
		{"KVM_GET_API_VERSION", KVM_GET_API_VERSION, 0},
		{"KVM_CREATE_VM", KVM_CREATE_VM, 0},
		{"KVM_GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE, 0},
		{"KVM_CHECK_EXTENSION", KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY},
		{"KVM_CREATE_VCPU", KVM_CREATE_VCPU, 1},
		{"KVM_SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION,
		 reinterpret_cast<unsigned long>(&region)},
		{"KVM_RUN with an argument", KVM_RUN, 1},
	};
	for (const Call &call : unsupported) {
		CONTEXT("%s on a vCPU fd", call.what);
		ASSERT_ERRNO(ioctl(vcpu.get(), call.request, call.arg), EINVAL);
	}
	// The vCPU fd still works.
	kvm_regs regs;
	ASSERT_OK(ioctl(vcpu.get(), KVM_GET_REGS, &regs));
	ASSERT_EQ(regs.rip, 0xfff0u);
}
