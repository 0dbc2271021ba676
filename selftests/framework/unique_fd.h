// SPDX-License-Identifier: GPL-2.0
//
// UniqueFd: owns one file descriptor and closes it when it goes out of scope.
#pragma once

#include <unistd.h>
#include <utility>

namespace kvmpp::test {

class UniqueFd {
public:
	UniqueFd() = default;
	explicit UniqueFd(int fd) : fd_(fd) {}
	UniqueFd(UniqueFd &&other) noexcept : fd_(other.release()) {}
	UniqueFd &operator=(UniqueFd &&other) noexcept
	{
		reset(other.release());
		return *this;
	}
	UniqueFd(const UniqueFd &) = delete;
	UniqueFd &operator=(const UniqueFd &) = delete;
	~UniqueFd() { reset(); }

	int get() const { return fd_; }
	explicit operator bool() const { return fd_ >= 0; }

	// Gives up ownership without closing.
	int release() { return std::exchange(fd_, -1); }

	// Closes the owned descriptor (if any) and takes `fd` instead.
	void reset(int fd = -1)
	{
		if (fd_ >= 0)
			close(fd_);
		fd_ = fd;
	}

private:
	int fd_ = -1;
};

} // namespace kvmpp::test
