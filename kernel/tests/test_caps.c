// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of kernel/core/caps.c: KVM_CHECK_EXTENSION answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/kvm.h>

#include "core/caps.h"

static void implemented_capability_is_announced(void **state)
{
	(void)state;
	assert_int_equal(kvmpp_check_extension(KVM_CAP_CHECK_EXTENSION_VM), 1);
}

static void unimplemented_capabilities_answer_zero(void **state)
{
	(void)state;
	/* Real capabilities kvmpp does not implement yet: 0, as KVM answers unknown ones. */
	assert_int_equal(kvmpp_check_extension(KVM_CAP_IRQCHIP), 0);
	assert_int_equal(kvmpp_check_extension(KVM_CAP_USER_MEMORY), 0);
}

static void numbers_no_kernel_defines_answer_zero(void **state)
{
	(void)state;
	assert_int_equal(kvmpp_check_extension(-1), 0);
	assert_int_equal(kvmpp_check_extension(0x7fffffffL), 0);
	assert_int_equal(kvmpp_check_extension(100000), 0);
	assert_int_equal(kvmpp_check_extension(0), 0);	/* KVM_CAP_IRQCHIP is 0 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(implemented_capability_is_announced),
		cmocka_unit_test(unimplemented_capabilities_answer_zero),
		cmocka_unit_test(numbers_no_kernel_defines_answer_zero),
	};

	return cmocka_run_group_tests_name("caps", tests, NULL, NULL);
}
