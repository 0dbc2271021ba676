// SPDX-License-Identifier: GPL-2.0
//
// The three module files under test, given by the environment:
//   KVM_CORE_KO           kvmpp.ko, or Linux's kvm.ko
//   KVM_BACKEND_KO        the backend for this CPU: kvmpp-amd.ko / kvm-amd.ko
//                         on SVM machines, kvmpp-intel.ko / kvm-intel.ko on VMX
//   KVM_OTHER_BACKEND_KO  the other vendor's backend, which must refuse to load
#pragma once

#include "kernel_module.h"

namespace kvmpp::test {

struct KvmModules {
	KernelModule core;
	KernelModule backend;
	KernelModule other_backend;
};

// Set by main() from the environment before any test runs.
const KvmModules &kvm_modules();

} // namespace kvmpp::test
