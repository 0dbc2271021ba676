// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of kernel/vmx/capabilities.c: VMX control and CR fixed-bit arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmx/capabilities.h"

/* A capability MSR from its allowed-0 (must be 1) and allowed-1 (may be 1) halves. */
static u64 cap(u32 must_be_1, u32 may_be_1)
{
	return (u64)may_be_1 << 32 | must_be_1;
}

static void required_and_allowed_bits_are_set(void **state)
{
	u32 v = 0xdead;

	(void)state;
	assert_int_equal(vmx_adjust_ctls(0x10, 0, cap(0, 0x30), &v), 0);
	assert_int_equal(v, 0x10);
}

static void bits_the_cpu_insists_on_are_set(void **state)
{
	u32 v = 0;

	(void)state;
	/* Bits 1 and 2 are "default1" on the CPU: they come back set though nobody asked. */
	assert_int_equal(vmx_adjust_ctls(0x10, 0, cap(0x6, 0x16), &v), 0);
	assert_int_equal(v, 0x16);
}

static void optional_bits_only_where_allowed(void **state)
{
	u32 v = 0;

	(void)state;
	/* Optional 0x300: the CPU allows 0x100, not 0x200. */
	assert_int_equal(vmx_adjust_ctls(0x1, 0x300, cap(0, 0x101), &v), 0);
	assert_int_equal(v, 0x101);
}

static void missing_required_bit_fails_and_leaves_result(void **state)
{
	u32 v = 0x1234;

	(void)state;
	/* Secondary controls (bit 31) required, CPU allows only the low bits. */
	assert_int_equal(vmx_adjust_ctls(0x80000000u, 0x1, cap(0, 0xffff), &v), -EIO);
	assert_int_equal(v, 0x1234);
}

static void high_bit_of_each_half_is_kept_apart(void **state)
{
	u32 v = 0;

	(void)state;
	/* Bit 31 of allowed-0 must not leak into allowed-1 or vice versa. */
	assert_int_equal(vmx_adjust_ctls(0, 0x80000000u, cap(0x80000000u, 0x80000000u), &v), 0);
	assert_int_equal(v, 0x80000000u);
	assert_int_equal(vmx_adjust_ctls(0x80000000u, 0, cap(0, 0x7fffffff), &v), -EIO);
}

/* A CPU whose fixed MSRs match the SDM's usual values: CR0.PE, NE, PG fixed to 1. */
#define CR0_FIXED0 0x80000021ull
#define CR0_FIXED1 0xffffffffull
#define CR4_FIXED0 0x2000ull	/* VMXE */
#define CR4_FIXED1 0x3767ffull

static void cr_fixed_bits(void **state)
{
	(void)state;
	assert_true(vmx_cr_allowed(0x80050033, CR0_FIXED0, CR0_FIXED1));
	/* Paging off: a fixed-1 bit clear. */
	assert_false(vmx_cr_allowed(0x00050033, CR0_FIXED0, CR0_FIXED1));
	/* Bit 32 of CR0 is reserved: outside FIXED1. */
	assert_false(vmx_cr_allowed(0x180050033ull, CR0_FIXED0, CR0_FIXED1));
	assert_true(vmx_cr_allowed(0x3626f0 | 0x2000, CR4_FIXED0, CR4_FIXED1));
	/* CR4 without VMXE, and CR4 with a bit the CPU does not allow (bit 23). */
	assert_false(vmx_cr_allowed(0x3606f0, CR4_FIXED0, CR4_FIXED1));
	assert_false(vmx_cr_allowed(0x3626f0 | 0x800000, CR4_FIXED0, CR4_FIXED1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(required_and_allowed_bits_are_set),
		cmocka_unit_test(bits_the_cpu_insists_on_are_set),
		cmocka_unit_test(optional_bits_only_where_allowed),
		cmocka_unit_test(missing_required_bit_fails_and_leaves_result),
		cmocka_unit_test(high_bit_of_each_half_is_kept_apart),
		cmocka_unit_test(cr_fixed_bits),
	};

	return cmocka_run_group_tests_name("vmx_capabilities", tests, NULL, NULL);
}
