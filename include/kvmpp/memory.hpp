// SPDX-License-Identifier: GPL-2.0
//
// GuestMemory: host memory to back a range of guest-physical memory.
//
// An anonymous, zero-filled, page-aligned private mapping (MAP_NORESERVE: host
// pages are allocated when first touched, by the host or by the guest). Give it
// to the VM with Vm::map_memory(); offsets below are offsets into the region,
// i.e. guest-physical address minus the address it is mapped at.
//
// The kernel does not pin the pages: the mapping must stay alive while a
// memory slot refers to it (unmap the slot, or destroy the VM, first). A vCPU
// touching a slot whose memory is gone fails KVM_RUN with EFAULT.
//
// Thread safety: the object is immutable after creation; any thread may read
// and write guest memory through it (vCPUs do so concurrently too: the caller
// orders its own accesses against the guest's). Moving or destroying it while
// another thread uses it is a data race.
#pragma once

#include "error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <type_traits>

namespace kvmpp {

class GuestMemory {
public:
	GuestMemory() noexcept = default; // empty: no mapping
	GuestMemory(GuestMemory &&other) noexcept;
	GuestMemory &operator=(GuestMemory &&other) noexcept;
	GuestMemory(const GuestMemory &) = delete;
	GuestMemory &operator=(const GuestMemory &) = delete;
	~GuestMemory();

	// Maps `size` bytes, which must be a non-zero multiple of the page size
	// (else EINVAL, reported as Op::mmap_memory).
	static Result<GuestMemory> create(std::size_t size);

	std::byte *data() const noexcept { return data_; }
	std::size_t size() const noexcept { return size_; }
	explicit operator bool() const noexcept { return data_ != nullptr; }
	std::span<std::byte> bytes() const noexcept { return {data_, size_}; }

	// `count` objects of type T at `offset`, in place. Throws std::out_of_range
	// if they do not lie inside the region and std::invalid_argument if
	// `offset` is not aligned for T.
	template <typename T> std::span<T> span(std::size_t offset, std::size_t count) const
	{
		static_assert(std::is_trivially_copyable_v<T>);
		check_range(offset, count, sizeof(T));
		if (reinterpret_cast<std::uintptr_t>(data_ + offset) % alignof(T) != 0)
			throw std::invalid_argument("GuestMemory::span: misaligned offset");
		return {reinterpret_cast<T *>(data_ + offset), count};
	}

	// Reads or writes one T at `offset` (any alignment). Throws
	// std::out_of_range if it does not lie inside the region.
	template <typename T> T read(std::size_t offset) const
	{
		static_assert(std::is_trivially_copyable_v<T>);
		check_range(offset, 1, sizeof(T));
		T value;
		std::memcpy(&value, data_ + offset, sizeof(T));
		return value;
	}
	template <typename T> void write(std::size_t offset, const T &value) const
	{
		static_assert(std::is_trivially_copyable_v<T>);
		check_range(offset, 1, sizeof(T));
		std::memcpy(data_ + offset, &value, sizeof(T));
	}

	// Copies bytes in at `offset`; throws std::out_of_range as above.
	void write_bytes(std::size_t offset, std::span<const std::byte> bytes) const;
	void write_bytes(std::size_t offset, std::span<const std::uint8_t> bytes) const
	{
		write_bytes(offset, std::as_bytes(bytes));
	}

private:
	GuestMemory(std::byte *data, std::size_t size) noexcept : data_(data), size_(size) {}
	void check_range(std::size_t offset, std::size_t count, std::size_t element_size) const;
	void release() noexcept;

	std::byte *data_ = nullptr;
	std::size_t size_ = 0;
};

} // namespace kvmpp
