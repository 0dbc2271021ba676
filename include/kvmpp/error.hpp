// SPDX-License-Identifier: GPL-2.0
//
// libkvmpp's error model.
//
// Every call that can fail returns a Result<T>: the value, or a std::error_code
// whose value() is the errno the kernel gave and whose category names the
// operation that failed ("KVM_CREATE_VCPU", "mmap(vCPU)", ...):
//
//     kvmpp::Result<kvmpp::Vcpu> vcpu = vm.create_vcpu(0);
//     if (!vcpu) {
//         std::error_code ec = vcpu.error();
//         // ec.category().name() == "KVM_CREATE_VCPU", ec.value() == EEXIST,
//         // ec == std::errc::file_exists, ec.message() == "File exists"
//     }
//
// Exceptions are thrown only when the caller asks for the value of a failed
// Result (value()): kvmpp::Error, a std::system_error whose what() is
// "KVM_CREATE_VCPU: File exists". Preconditions (a read outside a memory
// region, an instruction the assembler cannot encode) are logic errors and
// throw std::out_of_range / std::invalid_argument.
//
// Thread safety: Result is a value type (like std::optional); error categories
// are immutable and may be used from any thread.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvmpp {

// The operations whose failures libkvmpp reports: the ioctls it issues, and
// the few system calls around them. Each has its own error category.
enum class Op : std::uint8_t {
	open_device,        // open("/dev/kvm")
	mmap_vcpu,          // mmap of a vCPU fd (kvm_run)
	mmap_memory,        // mmap of anonymous guest memory
	get_api_version,    // KVM_GET_API_VERSION
	check_extension,    // KVM_CHECK_EXTENSION
	get_vcpu_mmap_size, // KVM_GET_VCPU_MMAP_SIZE
	create_vm,          // KVM_CREATE_VM
	get_supported_cpuid, // KVM_GET_SUPPORTED_CPUID
	create_vcpu,        // KVM_CREATE_VCPU
	set_user_memory_region, // KVM_SET_USER_MEMORY_REGION
	run,                // KVM_RUN
	get_regs,           // KVM_GET_REGS
	set_regs,           // KVM_SET_REGS
	get_sregs,          // KVM_GET_SREGS
	set_sregs,          // KVM_SET_SREGS
	get_fpu,            // KVM_GET_FPU
	set_fpu,            // KVM_SET_FPU
	get_msrs,           // KVM_GET_MSRS
	set_msrs,           // KVM_SET_MSRS
	get_cpuid2,         // KVM_GET_CPUID2
	set_cpuid2,         // KVM_SET_CPUID2
	set_signal_mask,    // KVM_SET_SIGNAL_MASK
	translate,          // KVM_TRANSLATE
	register_coalesced_mmio,   // KVM_REGISTER_COALESCED_MMIO
	unregister_coalesced_mmio, // KVM_UNREGISTER_COALESCED_MMIO
	count_              // not an operation: the number of them
};

// "KVM_RUN", "open(/dev/kvm)", ...: the name the category of `op` reports.
const char *op_name(Op op) noexcept;

// The error category of `op`: name() is op_name(op), message(e) is
// strerror(e), and its codes compare equal to the std::errc of the same errno.
const std::error_category &op_category(Op op) noexcept;

// The error_code for `op` failing with errno `err` (err > 0).
inline std::error_code make_error(Op op, int err) noexcept
{
	return {err, op_category(op)};
}

// Which libkvmpp operation an error_code comes from, if it comes from one.
std::optional<Op> failed_op(const std::error_code &ec) noexcept;

// What Result::value() throws for a failed Result: a std::system_error with
// the error_code, whose what() reads "KVM_SET_SREGS: Invalid argument".
class Error : public std::system_error {
public:
	explicit Error(std::error_code ec);
	// The failed operation, or nullopt for an error_code of another category.
	std::optional<Op> op() const noexcept { return failed_op(code()); }
};

// Either a T or the error_code of the operation that failed. [[nodiscard]]:
// an ignored failure is a bug.
template <typename T> class [[nodiscard]] Result {
	static_assert(!std::is_reference_v<T>, "Result<T&> is not supported");
	static_assert(!std::is_same_v<std::remove_cv_t<T>, std::error_code>,
		      "a Result cannot hold an error_code as its value");

public:
	using value_type = T;

	// A successful result.
	template <typename U = T>
		requires std::constructible_from<T, U &&> &&
			 (!std::same_as<std::remove_cvref_t<U>, Result>) &&
			 (!std::same_as<std::remove_cvref_t<U>, std::error_code>)
	Result(U &&value) noexcept(std::is_nothrow_constructible_v<T, U &&>)
		: storage_(std::in_place_index<0>, std::forward<U>(value))
	{
	}

	// A failed result; `error` must be an error (non-zero value).
	Result(std::error_code error) noexcept : storage_(std::in_place_index<1>, error) {}

	bool ok() const noexcept { return storage_.index() == 0; }
	explicit operator bool() const noexcept { return ok(); }

	// The error, or a default (success) error_code if the result is ok.
	std::error_code error() const noexcept
	{
		const std::error_code *error = std::get_if<1>(&storage_);
		return error ? *error : std::error_code();
	}

	// The value; throws kvmpp::Error if the result is an error.
	T &value() &
	{
		throw_if_error();
		return *std::get_if<0>(&storage_);
	}
	const T &value() const &
	{
		throw_if_error();
		return *std::get_if<0>(&storage_);
	}
	T &&value() &&
	{
		throw_if_error();
		return std::move(*std::get_if<0>(&storage_));
	}

	// The value or `fallback` if the result is an error (never throws Error).
	template <typename U> T value_or(U &&fallback) const &
	{
		return ok() ? *std::get_if<0>(&storage_) : static_cast<T>(std::forward<U>(fallback));
	}
	template <typename U> T value_or(U &&fallback) &&
	{
		return ok() ? std::move(*std::get_if<0>(&storage_))
			    : static_cast<T>(std::forward<U>(fallback));
	}

	// Unchecked access: the result must be ok().
	T &operator*() & noexcept { return *std::get_if<0>(&storage_); }
	const T &operator*() const & noexcept { return *std::get_if<0>(&storage_); }
	T &&operator*() && noexcept { return std::move(*std::get_if<0>(&storage_)); }
	T *operator->() noexcept { return std::get_if<0>(&storage_); }
	const T *operator->() const noexcept { return std::get_if<0>(&storage_); }

private:
	void throw_if_error() const
	{
		if (const std::error_code *error = std::get_if<1>(&storage_))
			throw Error(*error);
	}

	std::variant<T, std::error_code> storage_;
};

// The result of an operation that returns nothing but can fail.
template <> class [[nodiscard]] Result<void> {
public:
	using value_type = void;

	Result() noexcept = default; // success
	Result(std::error_code error) noexcept : error_(error) {}

	bool ok() const noexcept { return !error_; }
	explicit operator bool() const noexcept { return ok(); }
	std::error_code error() const noexcept { return error_; }

	// Throws kvmpp::Error if the result is an error.
	void value() const
	{
		if (error_)
			throw Error(error_);
	}

private:
	std::error_code error_;
};

} // namespace kvmpp
