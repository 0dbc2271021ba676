// SPDX-License-Identifier: GPL-2.0
#include <kvmpp/exit.hpp>

#include <algorithm>
#include <cstdio>

namespace kvmpp {
namespace {

template <typename T> std::span<const T> clamp_span(const T *data, std::uint32_t count,
						     std::size_t capacity)
{
	return {data, std::min<std::size_t>(count, capacity)};
}

} // namespace

Exit decode_exit(kvm_run &run, std::size_t mapping_size) noexcept
{
	switch (run.exit_reason) {
	case KVM_EXIT_IO: {
		const auto &io = run.io;
		// Trust but verify: the data must lie inside the mapping.
		const std::uint64_t bytes = std::uint64_t(io.size) * io.count;
		std::span<std::byte> data;
		if (io.data_offset <= mapping_size && bytes <= mapping_size - io.data_offset)
			data = {reinterpret_cast<std::byte *>(&run) + io.data_offset, bytes};
		return exits::Io{.port = io.port,
				 .size = io.size,
				 .direction = static_cast<exits::Io::Direction>(io.direction),
				 .count = io.count,
				 .data_offset = io.data_offset,
				 .data = data};
	}
	case KVM_EXIT_MMIO:
		return exits::Mmio{.phys_addr = run.mmio.phys_addr,
				   .data = {run.mmio.data, std::min<std::size_t>(run.mmio.len,
									  sizeof(run.mmio.data))},
				   .is_write = run.mmio.is_write != 0};
	case KVM_EXIT_HLT:
		return exits::Hlt{};
	case KVM_EXIT_SHUTDOWN:
		return exits::Shutdown{};
	case KVM_EXIT_INTR:
		return exits::Intr{};
	case KVM_EXIT_FAIL_ENTRY:
		return exits::FailEntry{
			.hardware_entry_failure_reason = run.fail_entry.hardware_entry_failure_reason,
			.cpu = run.fail_entry.cpu};
	case KVM_EXIT_INTERNAL_ERROR:
		return exits::InternalError{
			.suberror = run.internal.suberror,
			.data = clamp_span(run.internal.data, run.internal.ndata,
					   std::size(run.internal.data))};
	case KVM_EXIT_SYSTEM_EVENT:
		return exits::SystemEvent{
			.type = run.system_event.type,
			.data = clamp_span(run.system_event.data, run.system_event.ndata,
					   std::size(run.system_event.data))};
	case KVM_EXIT_UNKNOWN:
		return exits::Unknown{.reason = run.exit_reason,
				      .hardware_exit_reason = run.hw.hardware_exit_reason};
	default:
		return exits::Unknown{.reason = run.exit_reason, .hardware_exit_reason = 0};
	}
}

const char *exit_reason_name(std::uint32_t reason) noexcept
{
	switch (reason) {
#define KVMPP_EXIT_NAME(name) \
	case name:            \
		return #name;
		KVMPP_EXIT_NAME(KVM_EXIT_UNKNOWN)
		KVMPP_EXIT_NAME(KVM_EXIT_EXCEPTION)
		KVMPP_EXIT_NAME(KVM_EXIT_IO)
		KVMPP_EXIT_NAME(KVM_EXIT_HYPERCALL)
		KVMPP_EXIT_NAME(KVM_EXIT_DEBUG)
		KVMPP_EXIT_NAME(KVM_EXIT_HLT)
		KVMPP_EXIT_NAME(KVM_EXIT_MMIO)
		KVMPP_EXIT_NAME(KVM_EXIT_IRQ_WINDOW_OPEN)
		KVMPP_EXIT_NAME(KVM_EXIT_SHUTDOWN)
		KVMPP_EXIT_NAME(KVM_EXIT_FAIL_ENTRY)
		KVMPP_EXIT_NAME(KVM_EXIT_INTR)
		KVMPP_EXIT_NAME(KVM_EXIT_SET_TPR)
		KVMPP_EXIT_NAME(KVM_EXIT_TPR_ACCESS)
		KVMPP_EXIT_NAME(KVM_EXIT_NMI)
		KVMPP_EXIT_NAME(KVM_EXIT_INTERNAL_ERROR)
		KVMPP_EXIT_NAME(KVM_EXIT_SYSTEM_EVENT)
		KVMPP_EXIT_NAME(KVM_EXIT_IOAPIC_EOI)
		KVMPP_EXIT_NAME(KVM_EXIT_HYPERV)
		KVMPP_EXIT_NAME(KVM_EXIT_DIRTY_RING_FULL)
		KVMPP_EXIT_NAME(KVM_EXIT_X86_RDMSR)
		KVMPP_EXIT_NAME(KVM_EXIT_X86_WRMSR)
		KVMPP_EXIT_NAME(KVM_EXIT_XEN)
#undef KVMPP_EXIT_NAME
	default:
		return nullptr;
	}
}

namespace {

std::string format(const char *fmt, auto... args)
{
	char text[160];
	std::snprintf(text, sizeof(text), fmt, args...);
	return text;
}

std::string hex_bytes(std::span<const std::byte> bytes, std::size_t limit = 32)
{
	std::string text;
	for (std::size_t i = 0; i < bytes.size() && i < limit; i++)
		text += format(i ? " %02x" : "%02x", static_cast<unsigned>(bytes[i]));
	if (bytes.size() > limit)
		text += " ...";
	return text;
}

std::string words(std::span<const __u64> data)
{
	std::string text;
	for (__u64 word : data)
		text += format(" %#llx", static_cast<unsigned long long>(word));
	return text;
}

} // namespace

std::string describe(const Exit &exit)
{
	return dispatch(
		exit,
		[](const exits::Io &io) {
			return format("KVM_EXIT_IO %s port %#x size %u count %u data_offset %#llx data ",
				      io.is_in() ? "in" : "out", io.port, io.size, io.count,
				      static_cast<unsigned long long>(io.data_offset)) +
			       hex_bytes(io.data);
		},
		[](const exits::Mmio &mmio) {
			return format("KVM_EXIT_MMIO %s %#llx len %zu data ",
				      mmio.is_write ? "write" : "read",
				      static_cast<unsigned long long>(mmio.phys_addr), mmio.data.size()) +
			       hex_bytes(std::as_bytes(mmio.data));
		},
		[](const exits::Hlt &) { return std::string("KVM_EXIT_HLT"); },
		[](const exits::Shutdown &) { return std::string("KVM_EXIT_SHUTDOWN"); },
		[](const exits::Intr &) { return std::string("KVM_EXIT_INTR"); },
		[](const exits::FailEntry &fail) {
			return format("KVM_EXIT_FAIL_ENTRY reason %#llx cpu %u",
				      static_cast<unsigned long long>(fail.hardware_entry_failure_reason),
				      fail.cpu);
		},
		[](const exits::InternalError &error) {
			return format("KVM_EXIT_INTERNAL_ERROR suberror %u data", error.suberror) +
			       words(error.data);
		},
		[](const exits::SystemEvent &event) {
			return format("KVM_EXIT_SYSTEM_EVENT type %u data", event.type) +
			       words(event.data);
		},
		[](const exits::Unknown &unknown) {
			const char *name = exit_reason_name(unknown.reason);
			std::string text = name ? name : format("exit reason %u", unknown.reason);
			if (unknown.reason == KVM_EXIT_UNKNOWN)
				text += format(" hardware_exit_reason %#llx",
					       static_cast<unsigned long long>(
						       unknown.hardware_exit_reason));
			return text;
		});
}

} // namespace kvmpp
