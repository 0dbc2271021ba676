// SPDX-License-Identifier: GPL-2.0
//
// kvmpp-module-tests: module lifecycle tests (see lifecycle_test.cpp). Run as
// root on a machine with neither the core nor a backend loaded; the module
// files come from the environment (kvm_modules.h). Afterwards core + backend
// are left loaded if possible, for the ABI suite that runs next.
#include "cpu.h"
#include "kvm_modules.h"
#include "test.h"

#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

using namespace kvmpp::test;

namespace {

KvmModules g_modules;
std::vector<int> g_cpus_online_at_start;

// Reads the three module paths; on any problem explains it and returns 2.
int read_environment()
{
	struct Variable {
		const char *name;
		const char *meaning;
		KernelModule *module;
	};
	const Variable variables[] = {
		{"KVM_CORE_KO", "the core module: kvmpp.ko or kvm.ko", &g_modules.core},
		{"KVM_BACKEND_KO",
		 "this CPU's backend: kvmpp-amd.ko/kvm-amd.ko (SVM) or "
		 "kvmpp-intel.ko/kvm-intel.ko (VMX)",
		 &g_modules.backend},
		{"KVM_OTHER_BACKEND_KO", "the other vendor's backend, expected to be refused",
		 &g_modules.other_backend},
	};
	for (const Variable &variable : variables) {
		const char *path = std::getenv(variable.name);
		std::string problem;
		if (!path || !*path)
			problem = std::string(variable.name) + " is not set (" + variable.meaning + ")";
		else if (access(path, R_OK) != 0)
			problem = std::string(variable.name) + "=" + path +
				  ": cannot read the file: " + errno_name(errno);
		if (!problem.empty()) {
			std::printf("Bail out! kvmpp-module-tests: %s\n", problem.c_str());
			std::fflush(stdout);
			std::fprintf(stderr, "kvmpp-module-tests: %s\n", problem.c_str());
			return 2;
		}
		*variable.module = KernelModule::from_path(path);
	}
	return 0;
}

// Leaves core + backend loaded for the suite that runs next, and every CPU
// that was online at the start online again (a test killed by its timeout
// cannot run its own cleanup).
void restore_machine()
{
	for (int cpu : g_cpus_online_at_start)
		if (cpu != 0 && set_cpu_online(cpu, true) != 0)
			note("after tests: could not bring CPU %d online: %s", cpu,
			     errno_name(errno).c_str());
	for (const KernelModule *module : {&g_modules.core, &g_modules.backend}) {
		if (module_is_loaded(*module))
			continue;
		if (load_module(*module) == 0)
			note("after tests: loaded %s", module->name.c_str());
		else
			note("after tests: could not load %s: %s", module->path.c_str(),
			     errno_name(errno).c_str());
	}
}

} // namespace

const KvmModules &kvmpp::test::kvm_modules()
{
	return g_modules;
}

int main(int argc, char **argv)
{
	return run(argc, argv,
		   {.program = "kvmpp-module-tests",
		    .description = "Module lifecycle tests: load, refuse, pin, unload. Needs root, "
				   "modules not loaded,\nand KVM_CORE_KO, KVM_BACKEND_KO, "
				   "KVM_OTHER_BACKEND_KO set to the .ko files.",
		    .before_all =
			    [] {
				    int status = read_environment();
				    if (status == 0)
					    g_cpus_online_at_start = online_cpus();
				    return status;
			    },
		    .after_all = restore_machine});
}
