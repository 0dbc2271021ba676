// SPDX-License-Identifier: GPL-2.0
#include <kvmpp/memory.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

namespace kvmpp {

GuestMemory::GuestMemory(GuestMemory &&other) noexcept
	: data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0))
{
}

GuestMemory &GuestMemory::operator=(GuestMemory &&other) noexcept
{
	if (this != &other) {
		release();
		data_ = std::exchange(other.data_, nullptr);
		size_ = std::exchange(other.size_, 0);
	}
	return *this;
}

GuestMemory::~GuestMemory()
{
	release();
}

void GuestMemory::release() noexcept
{
	if (data_)
		::munmap(data_, size_);
	data_ = nullptr;
	size_ = 0;
}

Result<GuestMemory> GuestMemory::create(std::size_t size)
{
	const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
	if (size == 0 || size % page != 0)
		return make_error(Op::mmap_memory, EINVAL);
	void *data = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (data == MAP_FAILED)
		return make_error(Op::mmap_memory, errno);
	return GuestMemory(static_cast<std::byte *>(data), size);
}

void GuestMemory::check_range(std::size_t offset, std::size_t count,
			      std::size_t element_size) const
{
	// Written so that no intermediate value can overflow.
	if (offset > size_ || count > (size_ - offset) / element_size)
		throw std::out_of_range("GuestMemory: " + std::to_string(count) + " x " +
					std::to_string(element_size) + " bytes at offset " +
					std::to_string(offset) + " outside the region of " +
					std::to_string(size_) + " bytes");
}

void GuestMemory::write_bytes(std::size_t offset, std::span<const std::byte> bytes) const
{
	check_range(offset, bytes.size(), 1);
	if (!bytes.empty())
		std::memcpy(data_ + offset, bytes.data(), bytes.size());
}

} // namespace kvmpp
