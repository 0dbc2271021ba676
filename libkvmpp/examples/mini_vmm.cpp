// SPDX-License-Identifier: GPL-2.0
//
// A minimal VMM on libkvmpp: loads a flat real-mode binary at 0x1000:0000 and
// runs it, copying what the guest writes to the serial port (0x3f8) to stdout.
// The guest stops with HLT. Usage: mini-vmm GUEST.bin
#include <kvmpp/kvmpp.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

namespace {

constexpr std::uint64_t kLoadAddress = 0x10000; // segment 0x1000, offset 0
constexpr std::size_t kMemorySize = 1 << 20;    // the real-mode megabyte
constexpr std::uint16_t kSerialData = 0x3f8;
constexpr std::uint16_t kSerialLineStatus = 0x3fd;

int fail(const char *what, std::error_code ec)
{
	std::fprintf(stderr, "mini-vmm: %s: %s: %s\n", what, ec.category().name(),
		     ec.message().c_str());
	return 1;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: mini-vmm GUEST.bin\n");
		return 2;
	}
	std::ifstream file(argv[1], std::ios::binary);
	std::vector<std::byte> image;
	for (std::istreambuf_iterator<char> it(file), end; it != end; ++it)
		image.push_back(static_cast<std::byte>(*it));
	if (!file.is_open() || image.empty() || image.size() > kMemorySize - kLoadAddress) {
		std::fprintf(stderr, "mini-vmm: cannot load %s\n", argv[1]);
		return 1;
	}

	auto kvm = kvmpp::System::open();
	if (!kvm)
		return fail("open", kvm.error());
	auto vm = kvm->create_vm();
	auto ram = kvmpp::GuestMemory::create(kMemorySize);
	if (!vm || !ram)
		return fail("setup", vm ? ram.error() : vm.error());
	ram->write_bytes(kLoadAddress, image);
	if (auto r = vm->map_memory(0, 0, *ram); !r)
		return fail("memory", r.error());
	auto vcpu = vm->create_vcpu(0);
	if (!vcpu)
		return fail("vcpu", vcpu.error());

	// Real mode, CS:IP = 0x1000:0000, a stack below the image.
	kvm_sregs sregs = vcpu->get_sregs().value();
	sregs.cs.selector = kLoadAddress >> 4;
	sregs.cs.base = kLoadAddress;
	sregs.ds = sregs.es = sregs.ss = sregs.cs;
	sregs.ds.type = sregs.es.type = sregs.ss.type = 3; // data, read/write, accessed
	vcpu->set_sregs(sregs).value();
	kvm_regs regs{};
	regs.rflags = 2;
	regs.rsp = 0xfff0;
	vcpu->set_regs(regs).value();

	for (;;) {
		auto exit = vcpu->run();
		if (!exit)
			return fail("run", exit.error());
		bool running = kvmpp::dispatch(*exit,
			[](const kvmpp::exits::Io &io) {
				if (io.is_out() && io.port == kSerialData)
					for (std::uint32_t i = 0; i < io.count; i++)
						std::putchar(static_cast<int>(io.value(i)));
				else if (io.is_in() && io.port == kSerialLineStatus)
					io.set_value(0x20); // transmitter empty: send away
				return true;
			},
			[](const kvmpp::exits::Hlt &) { return false; },
			[&](const auto &) {
				std::fprintf(stderr, "mini-vmm: unexpected exit: %s\n",
					     kvmpp::describe(*exit).c_str());
				return false;
			});
		if (!running)
			break;
	}
	std::fflush(stdout);
	return 0;
}
