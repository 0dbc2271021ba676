// SPDX-License-Identifier: GPL-2.0
//
// The one assertion libkvmpp's small host tests share: CHECK(cond) counts a
// failure and goes on; main() returns failures() != 0.
#pragma once

#include <cstdio>

namespace kvmpp::test {

inline int &failures()
{
	static int count = 0;
	return count;
}

} // namespace kvmpp::test

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			::kvmpp::test::failures()++;                                    \
		}                                                                       \
	} while (0)
