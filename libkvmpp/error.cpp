// SPDX-License-Identifier: GPL-2.0
//
// One error category per operation: the category carries the name of what
// failed, so an error_code stays two words and costs nothing to return.
#include <kvmpp/error.hpp>

#include <cstring>
#include <string>
#include <utility>

namespace kvmpp {
namespace {

constexpr const char *kOpNames[] = {
	"open(/dev/kvm)",
	"mmap(vCPU)",
	"mmap(guest memory)",
	"KVM_GET_API_VERSION",
	"KVM_CHECK_EXTENSION",
	"KVM_GET_VCPU_MMAP_SIZE",
	"KVM_CREATE_VM",
	"KVM_GET_SUPPORTED_CPUID",
	"KVM_CREATE_VCPU",
	"KVM_SET_USER_MEMORY_REGION",
	"KVM_RUN",
	"KVM_GET_REGS",
	"KVM_SET_REGS",
	"KVM_GET_SREGS",
	"KVM_SET_SREGS",
	"KVM_GET_FPU",
	"KVM_SET_FPU",
	"KVM_GET_MSRS",
	"KVM_SET_MSRS",
	"KVM_GET_CPUID2",
	"KVM_SET_CPUID2",
	"KVM_SET_SIGNAL_MASK",
	"KVM_TRANSLATE",
	"KVM_REGISTER_COALESCED_MMIO",
	"KVM_UNREGISTER_COALESCED_MMIO",
};
constexpr std::size_t kOpCount = static_cast<std::size_t>(Op::count_);
static_assert(std::size(kOpNames) == kOpCount, "one name per Op");

class OpCategory final : public std::error_category {
public:
	constexpr explicit OpCategory(Op op) noexcept : op_(op) {}

	const char *name() const noexcept override { return op_name(op_); }

	std::string message(int err) const override
	{
		// The message of the generic category is strerror()'s text.
		return std::generic_category().message(err);
	}

	// The errno value is the code: compare against std::errc.
	std::error_condition default_error_condition(int err) const noexcept override
	{
		return {err, std::generic_category()};
	}

	Op op() const noexcept { return op_; }

private:
	Op op_;
};

template <std::size_t... I> struct CategoryTable {
	const OpCategory categories[sizeof...(I)] = {OpCategory(static_cast<Op>(I))...};
};

template <std::size_t... I> constexpr auto make_table(std::index_sequence<I...>)
{
	return CategoryTable<I...>{};
}

const auto &categories()
{
	static const auto table = make_table(std::make_index_sequence<kOpCount>());
	return table.categories;
}

} // namespace

const char *op_name(Op op) noexcept
{
	const auto index = static_cast<std::size_t>(op);
	return index < kOpCount ? kOpNames[index] : "unknown operation";
}

const std::error_category &op_category(Op op) noexcept
{
	const auto index = static_cast<std::size_t>(op);
	return categories()[index < kOpCount ? index : 0];
}

std::optional<Op> failed_op(const std::error_code &ec) noexcept
{
	if (const auto *category = dynamic_cast<const OpCategory *>(&ec.category()))
		return category->op();
	return std::nullopt;
}

Error::Error(std::error_code ec) : std::system_error(ec, ec.category().name()) {}

} // namespace kvmpp
