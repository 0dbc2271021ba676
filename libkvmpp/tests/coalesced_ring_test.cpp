// SPDX-License-Identifier: GPL-2.0
//
// Host test of kvmpp::CoalescedRing on a fake ring page (no /dev/kvm
// needed): the kernel's layout (first, last, then 24-byte entries at offset
// 8), size() across the wrap, entry(i) from `first`, pop(). Exit status 0 if
// every check holds.
#include <kvmpp/coalesced.hpp>

#include <cstdio>
#include "check.hpp"

#include <cstring>

namespace {

alignas(4096) unsigned char g_page[4096];

void put(std::uint32_t slot, std::uint64_t address, std::uint32_t len)
{
	kvm_coalesced_mmio entry{};
	entry.phys_addr = address;
	entry.len = len;
	std::memcpy(g_page + 8 + slot * sizeof(kvm_coalesced_mmio), &entry, sizeof(entry));
}

void set_first_last(std::uint32_t first, std::uint32_t last)
{
	std::memcpy(g_page, &first, 4);
	std::memcpy(g_page + 4, &last, 4);
}

} // namespace

int main()
{
	static_assert(sizeof(kvm_coalesced_mmio) == 24);
	kvmpp::CoalescedRing empty;
	CHECK(!empty);

	kvmpp::CoalescedRing ring(g_page, sizeof(g_page));
	CHECK(static_cast<bool>(ring));
	CHECK(ring.capacity() == 170); // KVM_COALESCED_MMIO_MAX with 4 KiB pages
	set_first_last(0, 0);
	CHECK(ring.empty());
	CHECK(ring.size() == 0);

	put(0, 0x1000, 1);
	put(1, 0x2000, 2);
	set_first_last(0, 2);
	CHECK(ring.size() == 2);
	CHECK(ring.front().phys_addr == 0x1000);
	CHECK(ring.entry(1).phys_addr == 0x2000 && ring.entry(1).len == 2);
	ring.pop();
	CHECK(ring.first() == 1);
	CHECK(ring.front().phys_addr == 0x2000);

	// Across the end: entries in slots 168, 169, 0.
	put(168, 0xa, 4);
	put(169, 0xb, 4);
	put(0, 0xc, 8);
	set_first_last(168, 1);
	CHECK(ring.size() == 3);
	CHECK(ring.entry(0).phys_addr == 0xa);
	CHECK(ring.entry(1).phys_addr == 0xb);
	CHECK(ring.entry(2).phys_addr == 0xc && ring.entry(2).len == 8);
	ring.pop(2);
	CHECK(ring.first() == 0);
	ring.pop();
	CHECK(ring.empty());

	const int failed = kvmpp::test::failures();
	std::printf("%s: coalesced ring view, %d failed checks\n", failed ? "FAIL" : "ok", failed);
	return kvmpp::test::failures() ? 1 : 0;
}
