// SPDX-License-Identifier: GPL-2.0
//
// What the vcpu.* and guest.* tests share on top of libkvmpp: assertions on
// kvmpp::Result and on typed exits.
//
//     System kvm = ASSERT_RESULT(System::open());
//     Machine m = ASSERT_RESULT(Machine::create(kvm, Mode::real));
//     exits::Io io = ASSERT_EXIT(exits::Io, m.vcpu);    // runs once, must be an I/O exit
//     ASSERT_RESULT_ERRNO(vm.create_vcpu(0), EEXIST);
#pragma once

#include "kvm.h"
#include "test.h"

#include <kvmpp/assembler.hpp>
#include <kvmpp/guest.hpp>
#include <kvmpp/kvmpp.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvmpp::test {

// "KVM_SET_SREGS: EINVAL (Invalid argument)" for a libkvmpp error.
inline std::string describe_error(const std::error_code &ec)
{
	return std::string(ec.category().name()) + ": " + errno_name(ec.value()) + " (" +
	       ec.message() + ")";
}

inline void check_result(const std::error_code &ec, const char *file, int line, const char *expr)
{
	if (ec)
		detail::assertion_failed(file, line, std::string("ASSERT_RESULT(") + expr + ")",
					 {"failed: " + describe_error(ec)});
}

inline void check_result_errno(bool ok, const std::error_code &ec, int expected, const char *file,
			       int line, const char *expr, const char *expected_text)
{
	if (!ok && ec.value() == expected)
		return;
	detail::assertion_failed(
		file, line, std::string("ASSERT_RESULT_ERRNO(") + expr + ", " + expected_text + ")",
		{"expected: failure with " + errno_name(expected),
		 "got:      " + (ok ? std::string("success") : describe_error(ec))});
}

// The name of the exit type E, for diagnostics.
template <typename E> const char *exit_type_name()
{
	if constexpr (std::is_same_v<E, exits::Io>) return "KVM_EXIT_IO";
	else if constexpr (std::is_same_v<E, exits::Mmio>) return "KVM_EXIT_MMIO";
	else if constexpr (std::is_same_v<E, exits::Hlt>) return "KVM_EXIT_HLT";
	else if constexpr (std::is_same_v<E, exits::Shutdown>) return "KVM_EXIT_SHUTDOWN";
	else if constexpr (std::is_same_v<E, exits::Intr>) return "KVM_EXIT_INTR";
	else if constexpr (std::is_same_v<E, exits::FailEntry>) return "KVM_EXIT_FAIL_ENTRY";
	else if constexpr (std::is_same_v<E, exits::InternalError>) return "KVM_EXIT_INTERNAL_ERROR";
	else if constexpr (std::is_same_v<E, exits::SystemEvent>) return "KVM_EXIT_SYSTEM_EVENT";
	else return "another exit";
}

// Runs the vCPU once; KVM_RUN must succeed and report an exit of type E.
template <typename E> E run_expecting(Vcpu &vcpu, const char *file, int line, const char *expr)
{
	Result<Exit> exit = vcpu.run();
	if (!exit)
		detail::assertion_failed(file, line,
					 std::string("ASSERT_EXIT(") + exit_type_name<E>() + ", " + expr + ")",
					 {"KVM_RUN failed: " + describe_error(exit.error())});
	if (const E *e = std::get_if<E>(&*exit))
		return *e;
	const kvm_regs regs = vcpu.get_regs().value_or(kvm_regs{});
	char rip[64];
	std::snprintf(rip, sizeof(rip), "guest RIP %#llx", static_cast<unsigned long long>(regs.rip));
	detail::assertion_failed(file, line,
				 std::string("ASSERT_EXIT(") + exit_type_name<E>() + ", " + expr + ")",
				 {std::string("expected: ") + exit_type_name<E>(),
				  "got:      " + describe(*exit), rip});
}

} // namespace kvmpp::test

// The value of a kvmpp::Result expression; fails the test with the failed
// operation and errno if it is an error.
#define ASSERT_RESULT(expr)                                                                    \
	([&]() -> typename std::remove_cvref_t<decltype(expr)>::value_type {                   \
		auto kvmpp_result_ = (expr);                                                   \
		::kvmpp::test::check_result(kvmpp_result_.error(), __FILE__, __LINE__, #expr); \
		return std::move(kvmpp_result_).value();                                       \
	}())

// A kvmpp::Result expression that must fail with errno `expected`.
#define ASSERT_RESULT_ERRNO(expr, expected)                                                    \
	do {                                                                                   \
		auto kvmpp_result_ = (expr);                                                   \
		::kvmpp::test::check_result_errno(kvmpp_result_.ok(), kvmpp_result_.error(),   \
						  (expected), __FILE__, __LINE__, #expr,       \
						  #expected);                                  \
	} while (0)

// Runs `vcpu` once and returns the exit, which must be of type `type` (e.g.
// kvmpp::exits::Io).
#define ASSERT_EXIT(type, vcpu) (::kvmpp::test::run_expecting<type>((vcpu), __FILE__, __LINE__, #vcpu))
