// SPDX-License-Identifier: GPL-2.0
//
// Architectural x86 constants (Intel SDM / AMD APM) that VMMs and tests need
// when they build guest state: control-register and EFER bits, a few MSR
// numbers, exception vectors. Userspace has no header for these.
#pragma once

#include <cstdint>

namespace kvmpp::x86 {

// CR0
inline constexpr std::uint64_t kCr0Pe = 1ULL << 0;  // protection enable
inline constexpr std::uint64_t kCr0Mp = 1ULL << 1;
inline constexpr std::uint64_t kCr0Et = 1ULL << 4;  // extension type (always 1 on modern CPUs)
inline constexpr std::uint64_t kCr0Ne = 1ULL << 5;
inline constexpr std::uint64_t kCr0Wp = 1ULL << 16;
inline constexpr std::uint64_t kCr0Nw = 1ULL << 29; // not write-through
inline constexpr std::uint64_t kCr0Cd = 1ULL << 30; // cache disable
inline constexpr std::uint64_t kCr0Pg = 1ULL << 31; // paging

// CR4
inline constexpr std::uint64_t kCr4Pse = 1ULL << 4;
inline constexpr std::uint64_t kCr4Pae = 1ULL << 5;
inline constexpr std::uint64_t kCr4Pge = 1ULL << 7;
inline constexpr std::uint64_t kCr4Osfxsr = 1ULL << 9;
inline constexpr std::uint64_t kCr4Osxmmexcpt = 1ULL << 10;

// EFER (MSR 0xc0000080)
inline constexpr std::uint64_t kEferSce = 1ULL << 0;
inline constexpr std::uint64_t kEferLme = 1ULL << 8;  // long mode enable
inline constexpr std::uint64_t kEferLma = 1ULL << 10; // long mode active
inline constexpr std::uint64_t kEferNxe = 1ULL << 11;

// RFLAGS
inline constexpr std::uint64_t kRflagsFixed = 1ULL << 1; // reads as 1
inline constexpr std::uint64_t kRflagsIf = 1ULL << 9;

// MSRs
inline constexpr std::uint32_t kMsrSysenterCs = 0x174;
inline constexpr std::uint32_t kMsrSysenterEsp = 0x175;
inline constexpr std::uint32_t kMsrSysenterEip = 0x176;
inline constexpr std::uint32_t kMsrEfer = 0xc0000080;

// Exception vectors
inline constexpr std::uint8_t kDivideError = 0;   // #DE
inline constexpr std::uint8_t kBreakpoint = 3;    // #BP
inline constexpr std::uint8_t kInvalidOpcode = 6; // #UD
inline constexpr std::uint8_t kDoubleFault = 8;   // #DF
inline constexpr std::uint8_t kGeneralProtection = 13; // #GP
inline constexpr std::uint8_t kPageFault = 14;    // #PF

// Segment descriptor types (the 4-bit type field, S = 1 for code/data)
inline constexpr std::uint8_t kTypeDataRwAccessed = 0x3;
inline constexpr std::uint8_t kTypeCodeRxAccessed = 0xb;
inline constexpr std::uint8_t kTypeLdt = 0x2;            // S = 0
inline constexpr std::uint8_t kTypeTss32Busy = 0xb;      // S = 0 (also 64-bit TSS)

} // namespace kvmpp::x86
