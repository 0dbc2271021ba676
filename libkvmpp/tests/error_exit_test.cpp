// SPDX-License-Identifier: GPL-2.0
//
// Host test of libkvmpp's pure parts (no /dev/kvm needed): the error model
// (categories, std::errc comparison, kvmpp::Error, Result) and the decoding
// of kvm_run into typed exits. Exit status 0 if every check holds.
#include <kvmpp/error.hpp>
#include <kvmpp/exit.hpp>

#include <cerrno>
#include <cstdio>
#include "check.hpp"

#include <cstring>
#include <memory>
#include <string>

namespace {

void test_errors()
{
	const std::error_code ec = kvmpp::make_error(kvmpp::Op::create_vcpu, EEXIST);
	CHECK(ec.value() == EEXIST);
	CHECK(std::string(ec.category().name()) == "KVM_CREATE_VCPU");
	CHECK(ec.message() == std::strerror(EEXIST));
	CHECK(ec == std::errc::file_exists);
	CHECK(ec != std::errc::invalid_argument);
	CHECK(kvmpp::failed_op(ec) == kvmpp::Op::create_vcpu);
	CHECK(!kvmpp::failed_op(std::make_error_code(std::errc::file_exists)));
	// One category per operation: same errno, different operation, not equal.
	CHECK(ec != kvmpp::make_error(kvmpp::Op::run, EEXIST));
	CHECK(&kvmpp::op_category(kvmpp::Op::run) == &kvmpp::op_category(kvmpp::Op::run));
	for (int i = 0; i < static_cast<int>(kvmpp::Op::count_); i++)
		CHECK(std::strlen(kvmpp::op_name(static_cast<kvmpp::Op>(i))) > 0);

	const kvmpp::Error error(ec);
	CHECK(std::string(error.what()) == std::string("KVM_CREATE_VCPU: ") + std::strerror(EEXIST));
	CHECK(error.code() == ec);
	CHECK(error.op() == kvmpp::Op::create_vcpu);
}

void test_result()
{
	kvmpp::Result<int> good = 5;
	CHECK(good.ok() && static_cast<bool>(good) && *good == 5 && good.value() == 5);
	CHECK(!good.error());

	kvmpp::Result<int> bad = kvmpp::make_error(kvmpp::Op::run, EINTR);
	CHECK(!bad.ok() && !bad);
	CHECK(bad.error() == std::errc::interrupted);
	CHECK(bad.value_or(7) == 7);
	bool threw = false;
	try {
		(void)bad.value();
	} catch (const kvmpp::Error &e) {
		threw = e.code().value() == EINTR && e.op() == kvmpp::Op::run;
	}
	CHECK(threw);

	// Move-only values move through.
	kvmpp::Result<std::unique_ptr<int>> owned = std::make_unique<int>(3);
	std::unique_ptr<int> taken = std::move(owned).value();
	CHECK(taken && *taken == 3);

	kvmpp::Result<void> done;
	CHECK(done.ok());
	done.value(); // does not throw
	kvmpp::Result<void> failed = kvmpp::make_error(kvmpp::Op::set_sregs, EINVAL);
	threw = false;
	try {
		failed.value();
	} catch (const kvmpp::Error &e) {
		threw = std::string(e.what()).rfind("KVM_SET_SREGS: ", 0) == 0;
	}
	CHECK(threw);
}

// A vCPU mapping of three pages, as KVM lays it out on x86.
struct FakeMapping {
	alignas(4096) unsigned char bytes[3 * 4096] = {};
	kvm_run &run() { return *reinterpret_cast<kvm_run *>(bytes); }
};

void test_decode()
{
	auto mapping = std::make_unique<FakeMapping>();
	kvm_run &run = mapping->run();

	run.exit_reason = KVM_EXIT_IO;
	run.io.direction = KVM_EXIT_IO_OUT;
	run.io.size = 2;
	run.io.port = 0x1234;
	run.io.count = 3;
	run.io.data_offset = 4096;
	const unsigned char data[] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66};
	std::memcpy(mapping->bytes + 4096, data, sizeof(data));
	kvmpp::Exit exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	const auto *io = std::get_if<kvmpp::exits::Io>(&exit);
	CHECK(io && io->is_out() && io->port == 0x1234 && io->size == 2 && io->count == 3);
	CHECK(io && io->data.size() == 6 && io->data.data() == reinterpret_cast<std::byte *>(mapping->bytes + 4096));
	CHECK(io && io->value(0) == 0x2211 && io->value(2) == 0x6655 && io->value(3) == 0);
	if (io) {
		io->set_value(0xbeef, 1);
		CHECK(mapping->bytes[4096 + 2] == 0xef && mapping->bytes[4096 + 3] == 0xbe);
	}

	// A data offset outside the mapping gives no data rather than a wild span.
	run.io.data_offset = 3 * 4096 - 2;
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	io = std::get_if<kvmpp::exits::Io>(&exit);
	CHECK(io && io->data.empty() && io->value() == 0);

	run.exit_reason = KVM_EXIT_MMIO;
	run.mmio.phys_addr = 0xfee00000;
	run.mmio.len = 4;
	run.mmio.is_write = 1;
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	const auto *mmio = std::get_if<kvmpp::exits::Mmio>(&exit);
	CHECK(mmio && mmio->phys_addr == 0xfee00000 && mmio->data.size() == 4 && mmio->is_write);
	run.mmio.len = 200; // clamped to the 8-byte buffer
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	mmio = std::get_if<kvmpp::exits::Mmio>(&exit);
	CHECK(mmio && mmio->data.size() == 8);

	run.exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run.internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run.internal.ndata = 40; // clamped to 16
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	const auto *internal = std::get_if<kvmpp::exits::InternalError>(&exit);
	CHECK(internal && internal->suberror == KVM_INTERNAL_ERROR_EMULATION && internal->data.size() == 16);

	run.exit_reason = KVM_EXIT_FAIL_ENTRY;
	run.fail_entry.hardware_entry_failure_reason = ~0ULL;
	run.fail_entry.cpu = 1;
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	const auto *fail = std::get_if<kvmpp::exits::FailEntry>(&exit);
	CHECK(fail && fail->hardware_entry_failure_reason == ~0ULL && fail->cpu == 1);

	run.exit_reason = KVM_EXIT_UNKNOWN;
	run.hw.hardware_exit_reason = 0x7b;
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	const auto *unknown = std::get_if<kvmpp::exits::Unknown>(&exit);
	CHECK(unknown && unknown->reason == KVM_EXIT_UNKNOWN && unknown->hardware_exit_reason == 0x7b);
	run.exit_reason = 12345;
	exit = kvmpp::decode_exit(run, sizeof(mapping->bytes));
	unknown = std::get_if<kvmpp::exits::Unknown>(&exit);
	CHECK(unknown && unknown->reason == 12345 && unknown->hardware_exit_reason == 0);
	CHECK(kvmpp::describe(exit) == "exit reason 12345");

	struct Simple {
		unsigned reason;
		std::size_t index;
	} simple[] = {{KVM_EXIT_HLT, 2}, {KVM_EXIT_SHUTDOWN, 3}, {KVM_EXIT_INTR, 4}};
	for (const Simple &s : simple) {
		run.exit_reason = s.reason;
		CHECK(kvmpp::decode_exit(run, sizeof(mapping->bytes)).index() == s.index);
	}

	// dispatch: the most specific handler wins, the generic one takes the rest.
	run.exit_reason = KVM_EXIT_HLT;
	const int which = kvmpp::dispatch(kvmpp::decode_exit(run, sizeof(mapping->bytes)),
					  [](const kvmpp::exits::Hlt &) { return 1; },
					  [](const auto &) { return 2; });
	CHECK(which == 1);
	run.exit_reason = KVM_EXIT_SHUTDOWN;
	const int other = kvmpp::dispatch(kvmpp::decode_exit(run, sizeof(mapping->bytes)),
					  [](const kvmpp::exits::Hlt &) { return 1; },
					  [](const auto &) { return 2; });
	CHECK(other == 2);
	CHECK(std::string(kvmpp::exit_reason_name(KVM_EXIT_IO)) == "KVM_EXIT_IO");
	CHECK(kvmpp::exit_reason_name(12345) == nullptr);
}

} // namespace

int main()
{
	test_errors();
	test_result();
	test_decode();
	std::printf("%s: error model and exit decoding, %d failed checks\n",
		    kvmpp::test::failures() ? "FAIL" : "ok", kvmpp::test::failures());
	return kvmpp::test::failures() ? 1 : 0;
}
