// SPDX-License-Identifier: GPL-2.0
//
// OwnedFd: owns one file descriptor and closes it when destroyed.
//
// Thread safety: as an int; do not move or reset an OwnedFd while another
// thread uses it. Using the descriptor (get()) from several threads is fine.
#pragma once

#include <unistd.h>
#include <utility>

namespace kvmpp {

class OwnedFd {
public:
	OwnedFd() noexcept = default;
	explicit OwnedFd(int fd) noexcept : fd_(fd) {}
	OwnedFd(OwnedFd &&other) noexcept : fd_(other.release()) {}
	OwnedFd &operator=(OwnedFd &&other) noexcept
	{
		reset(other.release());
		return *this;
	}
	OwnedFd(const OwnedFd &) = delete;
	OwnedFd &operator=(const OwnedFd &) = delete;
	~OwnedFd() { reset(); }

	int get() const noexcept { return fd_; }
	explicit operator bool() const noexcept { return fd_ >= 0; }

	// Gives up ownership without closing.
	int release() noexcept { return std::exchange(fd_, -1); }

	// Closes the owned descriptor (if any) and owns `fd` instead.
	void reset(int fd = -1) noexcept
	{
		if (fd_ >= 0)
			::close(fd_);
		fd_ = fd;
	}

private:
	int fd_ = -1;
};

} // namespace kvmpp
