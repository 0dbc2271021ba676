// SPDX-License-Identifier: GPL-2.0
//
// kvmpp-selftests: the ABI suite. Every test here must pass on Linux's own KVM
// (the reference) as well as on kvmpp: a test that fails on the reference
// asserts a guess, not KVM's behaviour.
#include "test.h"

int main(int argc, char **argv)
{
	return kvmpp::test::run(argc, argv,
				{.program = "kvmpp-selftests",
				 .description = "The /dev/kvm ABI selftests (run on any /dev/kvm).",
				 .before_all = {},
				 .after_all = {}});
}
