// SPDX-License-Identifier: GPL-2.0
#include "kernel_module.h"

#include "test.h"
#include "unique_fd.h"

#include <fcntl.h>
#include <fstream>
#include <sys/syscall.h>
#include <unistd.h>

namespace kvmpp::test {

KernelModule KernelModule::from_path(const std::string &path)
{
	std::string name = path.substr(path.find_last_of('/') + 1);
	if (name.ends_with(".ko"))
		name.resize(name.size() - 3);
	for (char &c : name)
		if (c == '-')
			c = '_';
	return {path, name};
}

int load_module(const KernelModule &module)
{
	CONTEXT("opening module file %s", module.path.c_str());
	UniqueFd file(ASSERT_OK(open(module.path.c_str(), O_RDONLY | O_CLOEXEC)));
	return static_cast<int>(syscall(SYS_finit_module, file.get(), "", 0));
}

int unload_module(const KernelModule &module)
{
	return static_cast<int>(syscall(SYS_delete_module, module.name.c_str(), O_NONBLOCK));
}

bool module_is_loaded(const KernelModule &module)
{
	// Each line starts with the module's name and a space.
	CONTEXT("reading /proc/modules");
	std::ifstream modules("/proc/modules");
	ASSERT_TRUE(modules.is_open());
	std::string line;
	while (std::getline(modules, line))
		if (line.starts_with(module.name + " "))
			return true;
	return false;
}

} // namespace kvmpp::test
