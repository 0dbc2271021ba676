// SPDX-License-Identifier: GPL-2.0
#include <kvmpp/abi.hpp>
#include <kvmpp/vcpu.hpp>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

namespace kvmpp {
namespace {

// Linux 6.1 accepts at most KVM_MAX_CPUID_ENTRIES (256) CPUID entries.
constexpr std::size_t kMaxCpuidEntries = 256;

// A variable-length ioctl argument: the kernel's header (abi.hpp: not the
// <linux/kvm.h> struct, whose C++ layout is wrong) directly followed by
// `count` entries. Up to kInline entries stay on the stack.
template <typename Header, typename Entry, std::size_t kInline> class Buffer {
public:
	explicit Buffer(std::size_t count)
	{
		static_assert(sizeof(Header) % alignof(Entry) == 0);
		void *storage = inline_;
		if (count > kInline) {
			heap_ = std::make_unique<std::byte[]>(sizeof(Header) + count * sizeof(Entry));
			storage = heap_.get(); // new[] memory is suitably aligned
		}
		header_ = new (storage) Header{};
		entries_ = reinterpret_cast<Entry *>(static_cast<std::byte *>(storage) + sizeof(Header));
		for (std::size_t i = 0; i < count; i++)
			new (&entries_[i]) Entry{};
	}
	Buffer(const Buffer &) = delete;
	Buffer &operator=(const Buffer &) = delete;

	Header *header() const noexcept { return header_; }
	Entry *entries() const noexcept { return entries_; }

private:
	alignas(Header) alignas(Entry) std::byte inline_[sizeof(Header) + kInline * sizeof(Entry)];
	std::unique_ptr<std::byte[]> heap_;
	Header *header_;
	Entry *entries_;
};

using MsrBuffer = Buffer<abi::MsrsHeader, kvm_msr_entry, 16>;
using CpuidBuffer = Buffer<abi::Cpuid2Header, kvm_cpuid_entry2, 0>;

} // namespace

Vcpu::Vcpu(Vcpu &&other) noexcept
	: fd_(std::move(other.fd_)), run_(std::exchange(other.run_, nullptr)),
	  mapping_size_(std::exchange(other.mapping_size_, 0)), id_(other.id_)
{
}

Vcpu &Vcpu::operator=(Vcpu &&other) noexcept
{
	if (this != &other) {
		unmap();
		fd_ = std::move(other.fd_);
		run_ = std::exchange(other.run_, nullptr);
		mapping_size_ = std::exchange(other.mapping_size_, 0);
		id_ = other.id_;
	}
	return *this;
}

Vcpu::~Vcpu()
{
	unmap();
}

void Vcpu::unmap() noexcept
{
	if (run_)
		::munmap(run_, mapping_size_);
	run_ = nullptr;
	mapping_size_ = 0;
}

Result<Vcpu> Vcpu::adopt(OwnedFd fd, unsigned id, std::size_t mapping_size)
{
	if (mapping_size < sizeof(kvm_run))
		return make_error(Op::mmap_vcpu, EINVAL);
	void *run = ::mmap(nullptr, mapping_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
	if (run == MAP_FAILED)
		return make_error(Op::mmap_vcpu, errno);
	return Vcpu(std::move(fd), id, static_cast<kvm_run *>(run), mapping_size);
}

CoalescedRing Vcpu::coalesced_ring() const noexcept
{
	const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
	if (!run_ || mapping_size_ < (KVM_COALESCED_MMIO_PAGE_OFFSET + 1) * page)
		return {};
	return CoalescedRing(reinterpret_cast<std::byte *>(run_) + KVM_COALESCED_MMIO_PAGE_OFFSET * page,
			     page);
}

Result<kvm_translation> Vcpu::translate(std::uint64_t linear_address) const noexcept
{
	kvm_translation translation{};
	translation.linear_address = linear_address;
	if (::ioctl(fd_.get(), KVM_TRANSLATE, &translation) < 0)
		return make_error(Op::translate, errno);
	return translation;
}

Result<Exit> Vcpu::run() noexcept
{
	if (::ioctl(fd_.get(), KVM_RUN, 0) < 0)
		return make_error(Op::run, errno);
	return decode_exit(*run_, mapping_size_);
}

void Vcpu::request_immediate_exit(bool value) const noexcept
{
	std::atomic_ref<__u8>(run_->immediate_exit).store(value ? 1 : 0, std::memory_order_relaxed);
}

Result<kvm_regs> Vcpu::get_regs() const noexcept
{
	kvm_regs regs;
	if (::ioctl(fd_.get(), KVM_GET_REGS, &regs) < 0)
		return make_error(Op::get_regs, errno);
	return regs;
}

Result<void> Vcpu::set_regs(const kvm_regs &regs) const noexcept
{
	if (::ioctl(fd_.get(), KVM_SET_REGS, &regs) < 0)
		return make_error(Op::set_regs, errno);
	return {};
}

Result<kvm_sregs> Vcpu::get_sregs() const noexcept
{
	kvm_sregs sregs;
	if (::ioctl(fd_.get(), KVM_GET_SREGS, &sregs) < 0)
		return make_error(Op::get_sregs, errno);
	return sregs;
}

Result<void> Vcpu::set_sregs(const kvm_sregs &sregs) const noexcept
{
	if (::ioctl(fd_.get(), KVM_SET_SREGS, &sregs) < 0)
		return make_error(Op::set_sregs, errno);
	return {};
}

Result<kvm_fpu> Vcpu::get_fpu() const noexcept
{
	kvm_fpu fpu;
	if (::ioctl(fd_.get(), KVM_GET_FPU, &fpu) < 0)
		return make_error(Op::get_fpu, errno);
	return fpu;
}

Result<void> Vcpu::set_fpu(const kvm_fpu &fpu) const noexcept
{
	if (::ioctl(fd_.get(), KVM_SET_FPU, &fpu) < 0)
		return make_error(Op::set_fpu, errno);
	return {};
}

Result<std::size_t> Vcpu::get_msrs(std::span<kvm_msr_entry> entries) const
{
	MsrBuffer buffer(entries.size());
	buffer.header()->nmsrs = static_cast<std::uint32_t>(entries.size());
	for (std::size_t i = 0; i < entries.size(); i++)
		buffer.entries()[i].index = entries[i].index;
	const int done = ::ioctl(fd_.get(), abi::kGetMsrs, buffer.header());
	if (done < 0)
		return make_error(Op::get_msrs, errno);
	for (std::size_t i = 0; i < static_cast<std::size_t>(done) && i < entries.size(); i++)
		entries[i].data = buffer.entries()[i].data;
	return static_cast<std::size_t>(done);
}

Result<std::size_t> Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) const
{
	MsrBuffer buffer(entries.size());
	buffer.header()->nmsrs = static_cast<std::uint32_t>(entries.size());
	for (std::size_t i = 0; i < entries.size(); i++) {
		buffer.entries()[i].index = entries[i].index;
		buffer.entries()[i].data = entries[i].data;
	}
	const int done = ::ioctl(fd_.get(), abi::kSetMsrs, buffer.header());
	if (done < 0)
		return make_error(Op::set_msrs, errno);
	return static_cast<std::size_t>(done);
}

Result<std::uint64_t> Vcpu::get_msr(std::uint32_t index) const noexcept
{
	MsrBuffer buffer(1);
	buffer.header()->nmsrs = 1;
	buffer.entries()[0].index = index;
	const int done = ::ioctl(fd_.get(), abi::kGetMsrs, buffer.header());
	if (done < 0)
		return make_error(Op::get_msrs, errno);
	if (done != 1)
		return make_error(Op::get_msrs, EINVAL);
	return buffer.entries()[0].data;
}

Result<void> Vcpu::set_msr(std::uint32_t index, std::uint64_t value) const noexcept
{
	MsrBuffer buffer(1);
	buffer.header()->nmsrs = 1;
	buffer.entries()[0].index = index;
	buffer.entries()[0].data = value;
	const int done = ::ioctl(fd_.get(), abi::kSetMsrs, buffer.header());
	if (done < 0)
		return make_error(Op::set_msrs, errno);
	if (done != 1)
		return make_error(Op::set_msrs, EINVAL);
	return {};
}

Result<void> Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const
{
	CpuidBuffer buffer(entries.size());
	buffer.header()->nent = static_cast<std::uint32_t>(entries.size());
	if (!entries.empty())
		std::memcpy(buffer.entries(), entries.data(), entries.size_bytes());
	if (::ioctl(fd_.get(), abi::kSetCpuid2, buffer.header()) < 0)
		return make_error(Op::set_cpuid2, errno);
	return {};
}

Result<std::vector<kvm_cpuid_entry2>> Vcpu::get_cpuid() const
{
	CpuidBuffer buffer(kMaxCpuidEntries);
	buffer.header()->nent = kMaxCpuidEntries;
	if (::ioctl(fd_.get(), abi::kGetCpuid2, buffer.header()) < 0)
		return make_error(Op::get_cpuid2, errno);
	std::size_t count = std::min<std::size_t>(buffer.header()->nent, kMaxCpuidEntries);
	if (count == kMaxCpuidEntries) {
		// Linux 6.1 sets nent only when it fails (kvm_vcpu_ioctl_get_cpuid2
		// returns before "cpuid->nent = ..." on success; newer kernels set
		// it), and fails with E2BIG exactly when nent is below the number of
		// entries. Find that number; the entries are already in the buffer
		// (every successful call copies all of them).
		std::size_t low = 0, high = kMaxCpuidEntries; // high: known to succeed
		while (low < high) {
			const std::size_t middle = (low + high) / 2;
			buffer.header()->nent = static_cast<std::uint32_t>(middle);
			if (::ioctl(fd_.get(), abi::kGetCpuid2, buffer.header()) == 0)
				high = middle;
			else if (errno == E2BIG)
				low = middle + 1;
			else
				return make_error(Op::get_cpuid2, errno);
		}
		count = high;
	}
	return std::vector<kvm_cpuid_entry2>(buffer.entries(), buffer.entries() + count);
}

Result<void> Vcpu::set_signal_mask(const sigset_t *mask) const noexcept
{
	if (!mask) {
		if (::ioctl(fd_.get(), abi::kSetSignalMask, nullptr) < 0)
			return make_error(Op::set_signal_mask, errno);
		return {};
	}
	// kvm_signal_mask { __u32 len; __u8 sigset[]; }: header and set in one buffer.
	Buffer<abi::SignalMaskHeader, unsigned char, abi::kKernelSigsetSize> buffer(
		abi::kKernelSigsetSize);
	buffer.header()->len = abi::kKernelSigsetSize;
	static_assert(sizeof(sigset_t) >= abi::kKernelSigsetSize);
	// glibc's sigset_t begins with the kernel's bit layout.
	std::memcpy(buffer.entries(), mask, abi::kKernelSigsetSize);
	if (::ioctl(fd_.get(), abi::kSetSignalMask, buffer.header()) < 0)
		return make_error(Op::set_signal_mask, errno);
	return {};
}

} // namespace kvmpp
