// SPDX-License-Identifier: GPL-2.0
//
// What KVM tells userspace about CPUID and MSRs, and the MSRs' values through
// the host-side ioctls: KVM_GET_SUPPORTED_CPUID (kvm_dev_ioctl_get_cpuid() in
// arch/x86/kvm/cpuid.c), KVM_GET_MSR_INDEX_LIST (kvm_arch_dev_ioctl() in
// arch/x86/kvm/x86.c), KVM_GET_MSRS / KVM_SET_MSRS (msr_io(), __kvm_set_msr(),
// kvm_set_msr_common(), set_efer() in x86.c) and a guest executing CPUID with
// the supported table (kvm_emulate_cpuid(), __kvm_update_cpuid_runtime() in
// cpuid.c) in Linux 6.1.
//
// The ioctls here take structs that end in a flexible array: they use
// kvmpp::abi's layouts and request numbers, never <linux/kvm.h>'s (wrong in
// C++, see kvmpp/abi.hpp).
#include "guest_support.h"
#include "kvm.h"
#include "test.h"

#include <kvmpp/abi.hpp>
#include <kvmpp/x86.hpp>

#include <algorithm>
#include <cpuid.h>
#include <cstdint>
#include <cstring>
#include <memory>
#include <sched.h>
#include <set>
#include <utility>
#include <vector>

using namespace kvmpp::test;
using namespace kvmpp::guest;
using kvmpp::System;
namespace exits = kvmpp::exits;
namespace x86 = kvmpp::x86;

namespace {

// MSR numbers (Intel SDM vol. 4 / AMD APM vol. 2).
constexpr std::uint32_t kMsrTsc = 0x10;
constexpr std::uint32_t kMsrPat = 0x277;
constexpr std::uint32_t kMsrStar = 0xc0000081;
constexpr std::uint32_t kMsrLstar = 0xc0000082;
constexpr std::uint32_t kMsrCstar = 0xc0000083;
constexpr std::uint32_t kMsrSfmask = 0xc0000084;
constexpr std::uint32_t kMsrKernelGsBase = 0xc0000102;

// The MSRs a VMM saves and restores for any 64-bit guest. Linux 6.1 lists all
// of them in KVM_GET_MSR_INDEX_LIST (msrs_to_save_all[], kept when the host
// can RDMSR them). EFER is not among them in 6.1: VMMs move it with SREGS.
struct NamedMsr {
	const char *name;
	std::uint32_t index;
};
constexpr NamedMsr kSavedMsrs[] = {
	{"SYSENTER_CS", x86::kMsrSysenterCs},
	{"SYSENTER_ESP", x86::kMsrSysenterEsp},
	{"SYSENTER_EIP", x86::kMsrSysenterEip},
	{"STAR", kMsrStar},
	{"LSTAR", kMsrLstar},
	{"CSTAR", kMsrCstar},
	{"SFMASK", kMsrSfmask},
	{"KERNEL_GS_BASE", kMsrKernelGsBase},
	{"TSC", kMsrTsc},
	{"PAT", kMsrPat},
};

// KVM_GET_SUPPORTED_CPUID's argument with room for `capacity` entries.
struct CpuidArgument {
	explicit CpuidArgument(std::size_t capacity)
		: bytes(sizeof(kvmpp::abi::Cpuid2Header) + capacity * sizeof(kvm_cpuid_entry2)),
		  storage(new std::uint64_t[(bytes + 7) / 8])
	{
		std::memset(storage.get(), 0xa5, bytes); // a pattern: what KVM wrote shows
	}
	kvmpp::abi::Cpuid2Header *header()
	{
		return reinterpret_cast<kvmpp::abi::Cpuid2Header *>(storage.get());
	}
	kvm_cpuid_entry2 *entries()
	{
		return reinterpret_cast<kvm_cpuid_entry2 *>(header() + 1);
	}
	std::size_t bytes;
	std::unique_ptr<std::uint64_t[]> storage;
};
static_assert(sizeof(kvmpp::abi::Cpuid2Header) % alignof(kvm_cpuid_entry2) == 0);

// KVM_GET_MSR_INDEX_LIST's argument with room for `capacity` indices.
struct MsrListArgument {
	explicit MsrListArgument(std::size_t capacity) : words(1 + capacity, 0xa5a5a5a5u) {}
	kvmpp::abi::MsrListHeader *header()
	{
		return reinterpret_cast<kvmpp::abi::MsrListHeader *>(words.data());
	}
	std::uint32_t *indices() { return words.data() + 1; }
	std::vector<std::uint32_t> words;
};
static_assert(sizeof(kvmpp::abi::MsrListHeader) == sizeof(std::uint32_t));

// The host CPU's vendor string (CPUID 0: EBX, EDX, ECX).
void host_vendor(std::uint32_t &ebx, std::uint32_t &ecx, std::uint32_t &edx)
{
	unsigned int eax = 0, b = 0, c = 0, d = 0;
	ASSERT_TRUE(__get_cpuid(0, &eax, &b, &c, &d) != 0);
	ebx = b;
	ecx = c;
	edx = d;
}

const kvm_cpuid_entry2 *find_leaf(const std::vector<kvm_cpuid_entry2> &table, std::uint32_t function)
{
	for (const kvm_cpuid_entry2 &entry : table)
		if (entry.function == function && entry.index == 0)
			return &entry;
	return nullptr;
}

// The whole MSR index list, read with the count KVM reports.
std::vector<std::uint32_t> msr_index_list(int kvm_fd)
{
	kvmpp::abi::MsrListHeader probe{0};
	ASSERT_ERRNO(ioctl(kvm_fd, kvmpp::abi::kGetMsrIndexList, &probe), E2BIG);
	MsrListArgument list(probe.nmsrs);
	list.header()->nmsrs = probe.nmsrs;
	ASSERT_OK(ioctl(kvm_fd, kvmpp::abi::kGetMsrIndexList, list.header()));
	ASSERT_EQ(list.header()->nmsrs, probe.nmsrs);
	return std::vector<std::uint32_t>(list.indices(), list.indices() + probe.nmsrs);
}

} // namespace

// KVM_GET_SUPPORTED_CPUID (kvm_dev_ioctl_get_cpuid): nent 0 is E2BIG; a nent
// too small for the table is E2BIG too (get_cpuid_func runs out of room),
// and neither failure writes the header back; with room enough (256, the
// most KVM uses: a larger nent is cut to KVM_MAX_CPUID_ENTRIES) nent becomes
// the number of entries, only those are written, and the table has the basic
// and extended range leaves (0 and 0x80000000), with the host CPU's vendor in
// leaf 0 (do_host_cpuid). Each (function, index) appears once, and an entry
// has a non-zero index only if its index is significant.
KVMPP_TEST(cpuid, supported_cpuid)
{
	UniqueFd kvm = open_kvm();
	// The table holds the APIC ID of the CPU the ioctl ran on (leaf 1 EBX,
	// leaves 0xb/0x1f, 0x8000001e: do_host_cpuid executes CPUID there): stay
	// on one CPU so that the tables below can be compared.
	const int cpu = ASSERT_OK(sched_getcpu());
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	ASSERT_OK(sched_setaffinity(0, sizeof(one), &one));

	for (std::uint32_t nent : {0u, 1u}) {
		CONTEXT("nent %u", nent);
		CpuidArgument small(1);
		small.header()->nent = nent;
		ASSERT_ERRNO(ioctl(kvm.get(), kvmpp::abi::kGetSupportedCpuid, small.header()), E2BIG);
		ASSERT_EQ(small.header()->nent, nent);
	}

	CpuidArgument full(256);
	full.header()->nent = 256;
	ASSERT_OK(ioctl(kvm.get(), kvmpp::abi::kGetSupportedCpuid, full.header()));
	const std::uint32_t count = full.header()->nent;
	note("KVM_GET_SUPPORTED_CPUID: %u entries", count);
	ASSERT_GE(count, 2u);
	ASSERT_GE(256u, count);
	const std::vector<kvm_cpuid_entry2> table(full.entries(), full.entries() + count);
	if (count < 256) {
		// The entry after the last one is still the pattern.
		kvm_cpuid_entry2 pattern;
		std::memset(&pattern, 0xa5, sizeof(pattern));
		ASSERT_EQ(std::memcmp(&full.entries()[count], &pattern, sizeof(pattern)), 0);
	}

	std::set<std::pair<std::uint32_t, std::uint32_t>> seen;
	for (const kvm_cpuid_entry2 &entry : table) {
		CONTEXT("entry %#x.%u flags %#x", entry.function, entry.index, entry.flags);
		ASSERT_TRUE(seen.insert({entry.function, entry.index}).second);
		ASSERT_EQ(entry.flags & ~static_cast<__u32>(KVM_CPUID_FLAG_SIGNIFCANT_INDEX), 0u);
		if (entry.index != 0)
			ASSERT_TRUE(entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	}

	const kvm_cpuid_entry2 *leaf0 = find_leaf(table, 0);
	const kvm_cpuid_entry2 *ext0 = find_leaf(table, 0x80000000);
	ASSERT_TRUE(leaf0 != nullptr);
	ASSERT_TRUE(ext0 != nullptr);
	ASSERT_GE(leaf0->eax, 1u);
	ASSERT_TRUE(find_leaf(table, 1) != nullptr);
	ASSERT_GE(ext0->eax, 0x80000000u);
	std::uint32_t ebx, ecx, edx;
	host_vendor(ebx, ecx, edx);
	ASSERT_EQ(leaf0->ebx, ebx);
	ASSERT_EQ(leaf0->ecx, ecx);
	ASSERT_EQ(leaf0->edx, edx);

	// More room than KVM uses: the same table (on the same CPU).
	CpuidArgument larger(1000);
	larger.header()->nent = 1000;
	ASSERT_OK(ioctl(kvm.get(), kvmpp::abi::kGetSupportedCpuid, larger.header()));
	ASSERT_EQ(larger.header()->nent, count);
	ASSERT_EQ(std::memcmp(larger.entries(), full.entries(), count * sizeof(kvm_cpuid_entry2)), 0);

	// One entry less than needed: E2BIG.
	CpuidArgument short_by_one(count);
	short_by_one.header()->nent = count - 1;
	ASSERT_ERRNO(ioctl(kvm.get(), kvmpp::abi::kGetSupportedCpuid, short_by_one.header()), E2BIG);
	ASSERT_EQ(short_by_one.header()->nent, count - 1);
}

// A guest given the supported table (KVM_SET_CPUID2) reads it back with CPUID:
// leaves 0 and 0x80000000 exactly, leaf 1 except the two bits KVM keeps in
// step with the vCPU's state at run time (__kvm_update_cpuid_runtime):
// ECX.OSXSAVE is CR4.OSXSAVE (clear here) and EDX.APIC is the APIC base MSR's
// enable bit. That bit is set in a new vCPU (kvm_lapic_reset: APIC base
// 0xfee00000 | enabled | BSP for vCPU 0, even without an in-kernel local
// APIC); the host then clears it with KVM_SET_SREGS (kvm_set_apic_base ->
// kvm_lapic_set_base updates the CPUID bits) and the guest's next CPUID 1
// shows EDX.APIC clear.
KVMPP_TEST(cpuid, guest_sees_supported_table, .needs_vcpus = true)
{
	constexpr std::uint64_t kApicEnable = 1u << 11;
	System kvm = ASSERT_RESULT(System::open());
	const std::vector<kvm_cpuid_entry2> table = ASSERT_RESULT(kvm.supported_cpuid());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::long64));
	ASSERT_RESULT(m.vcpu.set_cpuid(table));
	kvm_sregs sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	ASSERT_EQ(sregs.apic_base, 0xfee00900u);
	ASSERT_EQ(sregs.cr4 & (1u << 18), 0u); // CR4.OSXSAVE

	// CPUID `leaf`, then its four registers to ports 0x40-0x43.
	Assembler code(64, layout::kCode);
	auto query = [&](std::uint32_t leaf) {
		code.mov(Reg::eax, leaf)
			.xor_(Reg::ecx, Reg::ecx)
			.cpuid()
			.out(0x40, Reg::eax)
			.mov(Reg::eax, Reg::ebx)
			.out(0x41, Reg::eax)
			.mov(Reg::eax, Reg::ecx)
			.out(0x42, Reg::eax)
			.mov(Reg::eax, Reg::edx)
			.out(0x43, Reg::eax);
	};
	const std::uint32_t leaves[] = {0, 1, 0x80000000};
	for (std::uint32_t leaf : leaves)
		query(leaf);
	code.hlt();
	query(1);
	code.hlt();
	m.load(code);

	// The guest's next CPUID `leaf` must give the table's entry, leaf 1 with
	// EDX.APIC = `apic`.
	auto expect = [&](std::uint32_t leaf, bool apic) {
		CONTEXT("CPUID %#x with the APIC %s", leaf, apic ? "enabled" : "disabled");
		const kvm_cpuid_entry2 *entry = find_leaf(table, leaf);
		ASSERT_TRUE(entry != nullptr);
		std::uint32_t want[4] = {entry->eax, entry->ebx, entry->ecx, entry->edx};
		if (leaf == 1) {
			want[2] &= ~(1u << 27); // OSXSAVE
			want[3] &= ~(1u << 9);  // APIC
			if (apic)
				want[3] |= 1u << 9;
		}
		for (unsigned reg = 0; reg < 4; reg++) {
			static const char *const kNames[] = {"eax", "ebx", "ecx", "edx"};
			CONTEXT("register %s", kNames[reg]);
			const exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);
			ASSERT_TRUE(io.is_out());
			ASSERT_EQ(io.port, 0x40 + reg);
			ASSERT_EQ(io.size, 4);
			ASSERT_EQ(io.value(), want[reg]);
		}
	};
	for (std::uint32_t leaf : leaves)
		expect(leaf, true);
	ASSERT_EXIT(exits::Hlt, m.vcpu);

	sregs = ASSERT_RESULT(m.vcpu.get_sregs());
	sregs.apic_base &= ~kApicEnable;
	ASSERT_RESULT(m.vcpu.set_sregs(sregs));
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).apic_base, 0xfee00100u);
	expect(1, false);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
}

// KVM_GET_MSR_INDEX_LIST (kvm_arch_dev_ioctl): the header is written back
// with the number of MSRs before the size is checked, so a too-small nmsrs
// (0, or one short) fails with E2BIG and tells the count, without touching
// the array; with room enough the list fills exactly that many entries, with
// no duplicates, and has every MSR a VMM must save for a 64-bit guest.
KVMPP_TEST(msr, index_list)
{
	UniqueFd kvm = open_kvm();

	MsrListArgument empty(0);
	empty.header()->nmsrs = 0;
	ASSERT_ERRNO(ioctl(kvm.get(), kvmpp::abi::kGetMsrIndexList, empty.header()), E2BIG);
	const std::uint32_t count = empty.header()->nmsrs;
	note("KVM_GET_MSR_INDEX_LIST: %u MSRs", count);
	ASSERT_GE(count, static_cast<std::uint32_t>(std::size(kSavedMsrs)));

	MsrListArgument short_by_one(count);
	short_by_one.header()->nmsrs = count - 1;
	ASSERT_ERRNO(ioctl(kvm.get(), kvmpp::abi::kGetMsrIndexList, short_by_one.header()), E2BIG);
	ASSERT_EQ(short_by_one.header()->nmsrs, count);
	for (std::uint32_t i = 0; i < count; i++) {
		CONTEXT("index %u", i);
		ASSERT_EQ(short_by_one.indices()[i], 0xa5a5a5a5u);
	}

	// Room for 8 more: nmsrs comes back as the count, the rest is untouched.
	MsrListArgument roomy(count + 8);
	roomy.header()->nmsrs = count + 8;
	ASSERT_OK(ioctl(kvm.get(), kvmpp::abi::kGetMsrIndexList, roomy.header()));
	ASSERT_EQ(roomy.header()->nmsrs, count);
	for (std::uint32_t i = count; i < count + 8; i++) {
		CONTEXT("index %u (past the list)", i);
		ASSERT_EQ(roomy.indices()[i], 0xa5a5a5a5u);
	}

	const std::vector<std::uint32_t> list = msr_index_list(kvm.get());
	ASSERT_EQ(std::memcmp(list.data(), roomy.indices(), count * sizeof(std::uint32_t)), 0);
	const std::set<std::uint32_t> unique(list.begin(), list.end());
	ASSERT_EQ(unique.size(), list.size());
	for (const NamedMsr &msr : kSavedMsrs) {
		CONTEXT("MSR %s (%#x)", msr.name, msr.index);
		ASSERT_TRUE(unique.count(msr.index) == 1);
	}
}

// KVM_SET_MSRS then KVM_GET_MSRS give back what was written, for the MSRs of
// a 64-bit guest, with values the architecture allows: canonical addresses
// for LSTAR/CSTAR/KERNEL_GS_BASE (__kvm_set_msr), 32-bit SYSENTER_ESP/EIP
// (SVM keeps only the low halves unless the guest's CPUID vendor is Intel),
// a PAT of valid memory types (kvm_pat_valid), EFER.SCE. All entries in one
// call, then all again with other values, so that neither set is left over.
KVMPP_TEST(msr, round_trip, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	kvmpp::Vm vm = ASSERT_RESULT(kvm.create_vm());
	kvmpp::Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	struct Value {
		const char *name;
		std::uint32_t index;
		std::uint64_t first, second;
	};
	const Value values[] = {
		{"STAR", kMsrStar, 0x0023001000000000, 0x001b000800000000},
		{"LSTAR", kMsrLstar, 0xffffffff81a00000, 0x00007fffffffe000},
		{"CSTAR", kMsrCstar, 0xffffffff81a01000, 0x0000000000401000},
		{"SFMASK", kMsrSfmask, 0x47700, 0x200},
		{"KERNEL_GS_BASE", kMsrKernelGsBase, 0x00007f0012345000, 0xffff800000000000},
		{"SYSENTER_CS", x86::kMsrSysenterCs, 0x10, 0x73},
		{"SYSENTER_ESP", x86::kMsrSysenterEsp, 0x12345678, 0xfffff000},
		{"SYSENTER_EIP", x86::kMsrSysenterEip, 0x9abcdef0, 0x00001000},
		{"PAT", kMsrPat, 0x0007010600070106, 0x0007040600070406},
		{"EFER", x86::kMsrEfer, x86::kEferSce, 0},
	};
	for (bool second : {false, true}) {
		CONTEXT("%s values", second ? "second" : "first");
		std::vector<kvm_msr_entry> writes, reads;
		for (const Value &v : values) {
			writes.push_back({v.index, 0, second ? v.second : v.first});
			reads.push_back({v.index, 0, 0x5a5a5a5a5a5a5a5a});
		}
		ASSERT_EQ(ASSERT_RESULT(vcpu.set_msrs(writes)), writes.size());
		ASSERT_EQ(ASSERT_RESULT(vcpu.get_msrs(reads)), reads.size());
		for (std::size_t i = 0; i < std::size(values); i++) {
			CONTEXT("MSR %s", values[i].name);
			ASSERT_EQ(reads[i].index, values[i].index);
			ASSERT_EQ(reads[i].data, writes[i].data);
		}
	}
}

// KVM_SET_MSRS refuses values the architecture does not allow, processing 0
// entries, and the MSR keeps its value: non-canonical LSTAR, CSTAR and
// KERNEL_GS_BASE (__kvm_set_msr), a PAT entry with a reserved memory type (2,
// 3) or a bit above the type (kvm_pat_valid), an EFER reserved bit (set_efer:
// efer_reserved_bits).
KVMPP_TEST(msr, invalid_values, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	kvmpp::Vm vm = ASSERT_RESULT(kvm.create_vm());
	kvmpp::Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	struct Case {
		const char *what;
		std::uint32_t index;
		std::uint64_t good, bad;
	};
	const Case cases[] = {
		{"LSTAR above the lower half", kMsrLstar, 0xffffffff81a00000, 0x0000800000000000},
		{"LSTAR below the upper half", kMsrLstar, 0xffffffff81a00000, 0xffff7fffffffffff},
		{"CSTAR bit 63 only", kMsrCstar, 0x401000, 0x8000000000000000},
		{"KERNEL_GS_BASE bit 48", kMsrKernelGsBase, 0x7f0012345000, 0x0001000000000000},
		{"PAT type 2", kMsrPat, 0x0007010600070106, 0x0007010600070102},
		{"PAT type 3", kMsrPat, 0x0007010600070106, 0x0307010600070106},
		{"PAT bit 3", kMsrPat, 0x0007010600070106, 0x0007010600070e06},
		{"EFER bit 63", x86::kMsrEfer, x86::kEferSce, x86::kEferSce | 1ULL << 63},
		{"EFER bit 1", x86::kMsrEfer, x86::kEferSce, x86::kEferSce | 1ULL << 1},
	};
	for (const Case &c : cases) {
		CONTEXT("%s", c.what);
		const kvm_msr_entry good[] = {{c.index, 0, c.good}};
		ASSERT_EQ(ASSERT_RESULT(vcpu.set_msrs(good)), 1u);
		const kvm_msr_entry bad[] = {{c.index, 0, c.bad}};
		ASSERT_EQ(ASSERT_RESULT(vcpu.set_msrs(bad)), 0u);
		ASSERT_EQ(ASSERT_RESULT(vcpu.get_msr(c.index)), c.good);
	}
}

// The TSC through KVM_SET_MSRS (kvm_set_msr_common -> kvm_synchronize_tsc):
// the guest TSC then runs on from the value written: read back right after,
// it is at least that value and at most a few seconds' worth of cycles
// beyond it. The value is far (2^40 cycles, minutes at any clock rate) from
// the new vCPU's TSC, so KVM does not take it as an attempt to synchronize
// with another vCPU.
KVMPP_TEST(msr, tsc, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	kvmpp::Vm vm = ASSERT_RESULT(kvm.create_vm());
	kvmpp::Vcpu vcpu = ASSERT_RESULT(vm.create_vcpu(0));

	const std::uint64_t before = ASSERT_RESULT(vcpu.get_msr(kMsrTsc));
	note("TSC of a new vCPU: %llu", static_cast<unsigned long long>(before));
	for (std::uint64_t value : {1ULL << 40, 1ULL << 44}) {
		CONTEXT("TSC written %#llx", static_cast<unsigned long long>(value));
		ASSERT_RESULT(vcpu.set_msr(kMsrTsc, value));
		const std::uint64_t read = ASSERT_RESULT(vcpu.get_msr(kMsrTsc));
		note("wrote %#llx, read %#llx", static_cast<unsigned long long>(value),
		     static_cast<unsigned long long>(read));
		ASSERT_GE(read, value);
		ASSERT_GE(value + (1ULL << 36), read); // 2^36 cycles: > 10 s at 5 GHz
		const std::uint64_t later = ASSERT_RESULT(vcpu.get_msr(kMsrTsc));
		ASSERT_GE(later, read);
	}
}

// Host writes of EFER are checked against what KVM supports, not against the
// guest's CPUID (set_efer: __kvm_valid_efer only when !host_initiated): with
// no CPUID table at all, KVM_SET_MSRS sets EFER.LME. The guest's own WRMSR is
// checked against its CPUID: EFER.LME without CPUID.80000001H:EDX.LM is #GP;
// EFER.SCE is not checked against CPUID.80000001H:EDX.SYSCALL in 6.1 and the
// write succeeds.
KVMPP_TEST(msr, efer_host_and_guest_writes, .needs_vcpus = true)
{
	System kvm = ASSERT_RESULT(System::open());
	Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::protected32));
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_cpuid()).size(), 0u);

	ASSERT_RESULT(m.vcpu.set_msr(x86::kMsrEfer, x86::kEferSce | x86::kEferLme));
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrEfer)), x86::kEferSce | x86::kEferLme);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_sregs()).efer, x86::kEferSce | x86::kEferLme);
	ASSERT_RESULT(m.vcpu.set_msr(x86::kMsrEfer, 0));

	Assembler code(32, layout::kCode);
	code.mov(Reg::ecx, x86::kMsrEfer)
		.xor_(Reg::edx, Reg::edx)
		.mov(Reg::eax, x86::kEferSce)
		.wrmsr()
		.out(0x30, Reg::al)
		.mov(Reg::eax, x86::kEferSce | x86::kEferLme)
		.wrmsr() // #GP: the stub reports vector 13 and halts
		.out(0x31, Reg::al)
		.hlt();
	m.load(code);
	const exits::Io sce = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(sce.port, 0x30);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrEfer)), x86::kEferSce);
	const exits::Io fault = ASSERT_EXIT(exits::Io, m.vcpu);
	ASSERT_EQ(fault.port, kVectorPort);
	ASSERT_EQ(fault.value(), x86::kGeneralProtection);
	ASSERT_EXIT(exits::Hlt, m.vcpu);
	ASSERT_EQ(ASSERT_RESULT(m.vcpu.get_msr(x86::kMsrEfer)), x86::kEferSce);
}
