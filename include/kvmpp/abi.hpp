// SPDX-License-Identifier: GPL-2.0
//
// The /dev/kvm ioctls whose argument ends in a flexible array, with the
// kernel's (C) layout and request numbers.
//
// Why: <linux/kvm.h> declares those arrays with __DECLARE_FLEX_ARRAY, which
// in the uapi headers of Linux 6.1 (Debian 12's linux-libc-dev among them)
// wraps the array in a struct behind an empty struct. In C an empty struct
// has size 0; in C++ it has size 1. So in C++ `struct kvm_msrs` is 16 bytes
// with its entries at offset 16 (C: 8 bytes, entries at 8), kvm_cpuid2 is 12
// (C: 8), kvm_signal_mask 8 (C: 4), kvm_xsave 4100 (C: 4096) ... and since
// _IOWR() encodes sizeof(struct), KVM_GET_MSRS, KVM_SET_CPUID2,
// KVM_SET_SIGNAL_MASK, KVM_GET_XSAVE and the rest are wrong request numbers
// in C++: the kernel answers EINVAL (an unknown ioctl). (Fixed upstream by
// "uapi: stddef.h: Fix __DECLARE_FLEX_ARRAY for C++", not in every header
// a C++ program may be built against.)
//
// Use these instead of the <linux/kvm.h> macros in C++: a header struct of the
// kernel's size followed directly by the entries.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace kvmpp::abi {

// struct kvm_msrs: then nmsrs x struct kvm_msr_entry.
struct MsrsHeader {
	std::uint32_t nmsrs;
	std::uint32_t pad;
};
// struct kvm_msr_list: then nmsrs x __u32.
struct MsrListHeader {
	std::uint32_t nmsrs;
};
// struct kvm_cpuid2: then nent x struct kvm_cpuid_entry2.
struct Cpuid2Header {
	std::uint32_t nent;
	std::uint32_t padding;
};
// struct kvm_signal_mask: then len bytes of the kernel's sigset_t.
struct SignalMaskHeader {
	std::uint32_t len;
};
// struct kvm_irq_routing: then nr x struct kvm_irq_routing_entry.
struct IrqRoutingHeader {
	std::uint32_t nr;
	std::uint32_t flags;
};
// struct kvm_xsave: 4096 bytes (KVM_GET_XSAVE2 may use more).
struct Xsave {
	std::uint32_t region[1024];
};

static_assert(sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4 &&
	      sizeof(Cpuid2Header) == 8 && sizeof(SignalMaskHeader) == 4 &&
	      sizeof(IrqRoutingHeader) == 8 && sizeof(Xsave) == 4096);

// The kernel's sigset_t on x86-64: KVM_SET_SIGNAL_MASK wants exactly this size.
inline constexpr std::uint32_t kKernelSigsetSize = 8;

// The request numbers as the kernel computes them.
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kGetEmulatedCpuid = _IOWR(KVMIO, 0x09, Cpuid2Header);
inline constexpr unsigned long kGetMsrFeatureIndexList = _IOWR(KVMIO, 0x0a, MsrListHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetSignalMask = _IOW(KVMIO, 0x8b, SignalMaskHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, Cpuid2Header);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, Xsave);

// True if this translation unit's <linux/kvm.h> has the C++ layout problem.
inline constexpr bool kSystemHeaderFlexArraysBroken = sizeof(kvm_msrs) != sizeof(MsrsHeader);

} // namespace kvmpp::abi
