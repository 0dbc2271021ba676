// SPDX-License-Identifier: GPL-2.0
//
// kvmpp selftest framework: test registration, assertions and the TAP runner.
//
// A test is a function registered with KVMPP_TEST(group, name). Its id is
// "group.name". The runner forks one child process per test, so a test that
// crashes, hangs or leaks file descriptors cannot disturb the next one, and
// every kernel object a test creates (VMs, vCPUs, mappings) is released when
// its process exits.
//
//     KVMPP_TEST(system, api_version) {
//         UniqueFd kvm = open_kvm();                      // framework/kvm.h
//         ASSERT_EQ(ioctl(kvm.get(), KVM_GET_API_VERSION, 0), KVM_API_VERSION);
//         ASSERT_ERRNO(ioctl(kvm.get(), KVM_GET_API_VERSION, 1), EINVAL);
//     }
//
//     KVMPP_TEST(vm, create_many, .timeout_s = 120) { ... }
//
// Assertions are fatal: the first failing one prints a diagnostic (expression,
// values, errno names, file:line), runs the registered cleanups and ends the
// test process. SKIP("reason") ends the test as skipped; it is only for a
// hardware fact the machine cannot provide ("needs SVM", "needs 2 online CPUs").
//
// Inside a test, stdout and stderr are captured by the runner and relayed as
// TAP diagnostic lines ("# ...").
#pragma once

#include <cerrno>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kvmpp::test {

// Per-test options, set with designated initializers after the test name.
struct Options {
	int timeout_s = 30; // the runner kills the test after this many seconds
	// The test runs vCPUs. On a hypervisor that offers none (KVM_CAP_MAX_VCPUS
	// reads 0: kvmpp's VMX backend until it has vCPUs) it is skipped, saying so.
	bool needs_vcpus = false;
};

struct TestCase {
	std::string id; // "group.name"
	void (*body)();
	Options options;
	const char *file;
	int line;
};

// All registered tests of this binary, in registration order (source order
// within a file, link order across files).
std::vector<TestCase> &registry();

struct Registrar {
	Registrar(const char *group, const char *name, void (*body)(), Options options,
		  const char *file, int line);
};

// A test binary: its main() calls run(argc, argv, suite).
struct Suite {
	const char *program;     // for usage messages
	const char *description; // one line, shown by --help
	// Runs in the runner after option parsing, before the TAP header, only when
	// tests are going to run (not for --list/--help). A non-zero result is the
	// exit status: the suite does not run.
	std::function<int()> before_all;
	// Runs in the runner after the last test, before the summary line. Anything
	// it prints must go through note().
	std::function<void()> after_all;
};
int run(int argc, char **argv, const Suite &suite);

// Prints one diagnostic line (printf format). Inside a test it is captured and
// relayed as "# ..."; in before_all/after_all it is printed as "# ..." directly.
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Ends the running test as skipped, with the reason on its TAP line.
[[noreturn]] void skip(const std::string &reason);

// Ends the running test as failed (after the caller printed why).
[[noreturn]] void fail();

// A cleanup that runs when its scope ends normally, and also when the test ends
// early through a failed assertion or skip (which do not unwind the stack).
// Use it to restore machine state a later test depends on (e.g. put a CPU back
// online); process exit already releases fds and memory.
class Cleanup {
public:
	explicit Cleanup(std::function<void()> fn);
	~Cleanup();
	Cleanup(const Cleanup &) = delete;
	Cleanup &operator=(const Cleanup &) = delete;

private:
	std::function<void()> fn_;
};

// Adds a line of context to the diagnostic of any assertion that fails while
// it is in scope (printed only then), e.g. which loop iteration was running:
//     for (long cap : caps) {
//         CONTEXT("capability %ld", cap);
//         ASSERT_OK(ioctl(kvm, KVM_CHECK_EXTENSION, cap));
//     }
class Context {
public:
	explicit Context(const char *fmt, ...) __attribute__((format(printf, 2, 3)));
	~Context();
	Context(const Context &) = delete;
	Context &operator=(const Context &) = delete;
};

// errno as its symbolic name ("EINVAL"), or the number if it has none.
std::string errno_name(int err);

namespace detail {

// Prints a value for an assertion diagnostic.
template <typename T> std::string describe(const T &value)
{
	using V = std::remove_cvref_t<T>;
	if constexpr (std::is_same_v<V, bool>) {
		return value ? "true" : "false";
	} else if constexpr (std::is_enum_v<V>) {
		return describe(static_cast<std::underlying_type_t<V>>(value));
	} else if constexpr (std::is_integral_v<V>) {
		std::string text = std::to_string(value);
		// Large or negative numbers are easier to read in hex as well.
		if (value < 0 || static_cast<unsigned long long>(value) > 9) {
			char hex[24];
			std::snprintf(hex, sizeof(hex), " (0x%llx)",
				      static_cast<unsigned long long>(value));
			text += hex;
		}
		return text;
	} else if constexpr (std::is_convertible_v<const V &, std::string_view>) {
		return "\"" + std::string(std::string_view(value)) + "\"";
	} else if constexpr (std::is_pointer_v<V>) {
		char text[24];
		std::snprintf(text, sizeof(text), "%p", static_cast<const void *>(value));
		return text;
	} else {
		return "<value>";
	}
}

// ==, with integers compared by value whatever their signedness.
template <typename A, typename B> bool equal(const A &a, const B &b)
{
	if constexpr (std::is_integral_v<A> && std::is_integral_v<B> &&
		      !std::is_same_v<A, bool> && !std::is_same_v<B, bool>)
		return std::cmp_equal(a, b);
	else
		return a == b;
}

template <typename A, typename B> bool greater_equal(const A &a, const B &b)
{
	if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
		return std::cmp_greater_equal(a, b);
	else
		return a >= b;
}

// Prints "file:line: <what> failed" and the given detail lines, then fail().
[[noreturn]] void assertion_failed(const char *file, int line, const std::string &what,
				   const std::vector<std::string> &details);

template <typename A, typename B>
void check_binary(bool ok, const char *file, int line, const char *op, const char *a_text,
		  const char *b_text, const A &a, const B &b)
{
	if (ok)
		return;
	assertion_failed(file, line,
			 std::string(op) + "(" + a_text + ", " + b_text + ")",
			 {std::string(a_text) + " = " + describe(a),
			  std::string(b_text) + " = " + describe(b)});
}

template <typename R>
void check_errno(R result, int err, int expected, const char *file, int line,
		 const char *expr_text, const char *expected_text)
{
	if (result == -1 && err == expected)
		return;
	assertion_failed(
		file, line, std::string("ASSERT_ERRNO(") + expr_text + ", " + expected_text + ")",
		{"expected: -1 with errno " + errno_name(expected),
		 "got:      " + describe(result) +
			 (result == -1 ? " with errno " + errno_name(err)
				       : std::string(" (call did not fail)"))});
}

template <typename R>
R check_ok(R result, int err, const char *file, int line, const char *expr_text)
{
	if (result < 0)
		assertion_failed(file, line, std::string("ASSERT_OK(") + expr_text + ")",
				 {"returned " + describe(result) + ", errno " +
				  errno_name(err)});
	return result;
}

} // namespace detail
} // namespace kvmpp::test

// Defines and registers a test "group.name". Optional options follow:
// KVMPP_TEST(vm, create_many, .timeout_s = 120).
#define KVMPP_TEST(group, name, ...)                                                     \
	static void kvmpp_test_##group##__##name();                                        \
	static const ::kvmpp::test::Registrar kvmpp_registrar_##group##__##name{           \
		#group, #name, &kvmpp_test_##group##__##name,                              \
		::kvmpp::test::Options{__VA_ARGS__}, __FILE__, __LINE__};                 \
	static void kvmpp_test_##group##__##name()

#define ASSERT_EQ(a, b)                                                                 \
	do {                                                                            \
		const auto &kvmpp_a_ = (a);                                             \
		const auto &kvmpp_b_ = (b);                                             \
		::kvmpp::test::detail::check_binary(                                    \
			::kvmpp::test::detail::equal(kvmpp_a_, kvmpp_b_), __FILE__,     \
			__LINE__, "ASSERT_EQ", #a, #b, kvmpp_a_, kvmpp_b_);             \
	} while (0)

#define ASSERT_NE(a, b)                                                                 \
	do {                                                                            \
		const auto &kvmpp_a_ = (a);                                             \
		const auto &kvmpp_b_ = (b);                                             \
		::kvmpp::test::detail::check_binary(                                    \
			!::kvmpp::test::detail::equal(kvmpp_a_, kvmpp_b_), __FILE__,    \
			__LINE__, "ASSERT_NE", #a, #b, kvmpp_a_, kvmpp_b_);             \
	} while (0)

#define ASSERT_GE(a, b)                                                                 \
	do {                                                                            \
		const auto &kvmpp_a_ = (a);                                             \
		const auto &kvmpp_b_ = (b);                                             \
		::kvmpp::test::detail::check_binary(                                    \
			::kvmpp::test::detail::greater_equal(kvmpp_a_, kvmpp_b_),       \
			__FILE__, __LINE__, "ASSERT_GE", #a, #b, kvmpp_a_, kvmpp_b_);   \
	} while (0)

#define ASSERT_TRUE(cond)                                                               \
	do {                                                                            \
		if (!(cond))                                                            \
			::kvmpp::test::detail::assertion_failed(                        \
				__FILE__, __LINE__, "ASSERT_TRUE(" #cond ")",           \
				{"condition is false"});                                \
	} while (0)

// expr must return -1 and set errno to `expected` (an E* constant).
#define ASSERT_ERRNO(expr, expected)                                                    \
	do {                                                                            \
		errno = 0;                                                              \
		const auto kvmpp_r_ = (expr);                                           \
		const int kvmpp_e_ = errno;                                             \
		::kvmpp::test::detail::check_errno(kvmpp_r_, kvmpp_e_, (expected),      \
						   __FILE__, __LINE__, #expr, #expected); \
	} while (0)

// expr must return >= 0; the value is the result of the macro:
//     int fd = ASSERT_OK(open("/dev/kvm", O_RDWR));
#define ASSERT_OK(expr)                                                                 \
	([&]() {                                                                        \
		errno = 0;                                                              \
		auto kvmpp_r_ = (expr);                                                 \
		const int kvmpp_e_ = errno;                                             \
		return ::kvmpp::test::detail::check_ok(kvmpp_r_, kvmpp_e_, __FILE__,    \
						       __LINE__, #expr);                \
	}())

#define KVMPP_CONCAT_(a, b) a##b
#define KVMPP_CONCAT(a, b) KVMPP_CONCAT_(a, b)
#define CONTEXT(...) ::kvmpp::test::Context KVMPP_CONCAT(kvmpp_context_, __LINE__)(__VA_ARGS__)

// Ends the test as skipped: only for hardware facts the machine lacks.
#define SKIP(reason) ::kvmpp::test::skip(reason)
