// SPDX-License-Identifier: GPL-2.0
//
// Typed vCPU exits: why KVM_RUN returned to userspace, as one small struct
// per exit reason, read straight from the vCPU's kvm_run mapping.
//
//     kvmpp::Exit exit = vcpu.run().value();
//     kvmpp::dispatch(exit,
//         [&](const kvmpp::exits::Io &io) { ... io.port, io.value() ... },
//         [&](const kvmpp::exits::Hlt &) { ... },
//         [&](const auto &other) { ... });
//
// Decoding copies a few scalars out of kvm_run; data that KVM leaves in the
// mapping (PIO data, MMIO data, error words) is referred to by spans into the
// mapping, valid until the vCPU runs again or is destroyed. Nothing allocates.
//
// Thread safety: an Exit is a value whose spans point into the vCPU mapping:
// read or write them only on the thread that runs the vCPU, between runs.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>
#include <variant>

namespace kvmpp {
namespace exits {

// KVM_EXIT_IO: the guest executed IN/OUT (or INS/OUTS) on a port no in-kernel
// device claims. `count` elements of `size` bytes each are in `data` (inside
// the vCPU mapping, at kvm_run.io.data_offset). For OUT they hold what the
// guest wrote; for IN, write the values there before the next run().
struct Io {
	enum class Direction : std::uint8_t { in = KVM_EXIT_IO_IN, out = KVM_EXIT_IO_OUT };

	std::uint16_t port;
	std::uint8_t size; // 1, 2 or 4
	Direction direction;
	std::uint32_t count;          // elements (more than 1 for a string instruction)
	std::uint64_t data_offset;    // kvm_run.io.data_offset
	std::span<std::byte> data;    // size * count bytes; empty if KVM's offset is out of bounds

	bool is_in() const noexcept { return direction == Direction::in; }
	bool is_out() const noexcept { return direction == Direction::out; }

	// Element `index` (little endian, zero-extended); 0 if out of range.
	std::uint32_t value(std::size_t index = 0) const noexcept
	{
		std::uint32_t value = 0;
		if ((index + 1) * size <= data.size())
			std::memcpy(&value, data.data() + index * size, size);
		return value;
	}
	// Sets element `index` (the low `size` bytes of `value`) for an IN.
	void set_value(std::uint32_t value, std::size_t index = 0) const noexcept
	{
		if ((index + 1) * size <= data.size())
			std::memcpy(data.data() + index * size, &value, size);
	}
};

// KVM_EXIT_MMIO: an access to guest-physical memory no slot and no in-kernel
// device backs. For a read, write the `data.size()` bytes before run().
struct Mmio {
	std::uint64_t phys_addr;
	std::span<std::uint8_t> data; // kvm_run.mmio.data[0..len)
	bool is_write;
};

struct Hlt {};      // KVM_EXIT_HLT: HLT without an in-kernel local APIC
struct Shutdown {}; // KVM_EXIT_SHUTDOWN: triple fault (or shutdown)
struct Intr {};     // KVM_EXIT_INTR: a signal interrupted KVM_RUN (it also fails with EINTR)

// KVM_EXIT_FAIL_ENTRY: the CPU refused to enter the guest.
struct FailEntry {
	std::uint64_t hardware_entry_failure_reason; // VMX exit reason / SVM exit code
	std::uint32_t cpu;                           // the host CPU that tried
};

// KVM_EXIT_INTERNAL_ERROR: KVM could not handle something (e.g. emulation).
struct InternalError {
	std::uint32_t suberror; // KVM_INTERNAL_ERROR_*
	std::span<const __u64> data; // __u64: unsigned long long
};

// KVM_EXIT_SYSTEM_EVENT: shutdown/reset/crash/... requested by the guest.
struct SystemEvent {
	std::uint32_t type; // KVM_SYSTEM_EVENT_*
	std::span<const __u64> data; // __u64: unsigned long long
};

// Any exit reason without a type of its own, and KVM_EXIT_UNKNOWN.
struct Unknown {
	std::uint32_t reason;               // kvm_run.exit_reason
	std::uint64_t hardware_exit_reason; // kvm_run.hw, for KVM_EXIT_UNKNOWN only (else 0)
};

} // namespace exits

using Exit = std::variant<exits::Io, exits::Mmio, exits::Hlt, exits::Shutdown, exits::Intr,
			  exits::FailEntry, exits::InternalError, exits::SystemEvent,
			  exits::Unknown>;

// Decodes the exit kvm_run describes. `mapping_size` is the size of the vCPU
// mapping that starts at `run` (bounds for kvm_run.io.data_offset).
Exit decode_exit(kvm_run &run, std::size_t mapping_size) noexcept;

// "KVM_EXIT_IO", ...; nullptr for a number <linux/kvm.h> does not name.
const char *exit_reason_name(std::uint32_t reason) noexcept;

// One line for diagnostics, e.g. "KVM_EXIT_IO out port 0x10 size 1 count 1
// data 2a". Allocates; not for the hot path.
std::string describe(const Exit &exit);

// Builds one callable out of several lambdas, for std::visit.
template <typename... F> struct Overloaded : F... {
	using F::operator()...;
};
template <typename... F> Overloaded(F...) -> Overloaded<F...>;

// std::visit with an overload set: one handler per exit type (or a generic
// `[](const auto &)` for the rest). Returns what the chosen handler returns.
template <typename... F> decltype(auto) dispatch(const Exit &exit, F &&...handlers)
{
	return std::visit(Overloaded<std::decay_t<F>...>{std::forward<F>(handlers)...}, exit);
}

} // namespace kvmpp
