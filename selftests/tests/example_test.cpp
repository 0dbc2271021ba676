// SPDX-License-Identifier: GPL-2.0
//
// libkvmpp's minimal VMM example (libkvmpp/examples/mini_vmm.cpp) runs its
// guest and prints what the guest wrote to the serial port.
#include "test.h"

#include <climits>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace kvmpp::test;

namespace {

// The example sits next to this program (build/selftests/, or /bin in the test
// machines), its guest in ../share/kvmpp/ there or next to it.
std::string sibling(const std::string &name)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return name;
	std::string dir(self, static_cast<size_t>(n));
	return dir.substr(0, dir.rfind('/') + 1) + name;
}

} // namespace

KVMPP_TEST(example, mini_vmm, .needs_vcpus = true)
{
	std::string vmm = sibling("mini-vmm");
	std::string guest = sibling("../share/kvmpp/hello.bin");
	if (access(guest.c_str(), R_OK) != 0)
		guest = sibling("hello.bin");
	ASSERT_OK(access(vmm.c_str(), X_OK));
	ASSERT_OK(access(guest.c_str(), R_OK));

	std::string command = vmm + " " + guest + " 2>&1";
	FILE *out = popen(command.c_str(), "r");
	ASSERT_TRUE(out != nullptr);
	std::string output;
	char buffer[256];
	while (size_t n = fread(buffer, 1, sizeof(buffer), out))
		output.append(buffer, n);
	int status = pclose(out);
	note("mini-vmm said: %s", output.c_str());
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(output, std::string("Hello from a guest of the minimal VMM\n"));
}
