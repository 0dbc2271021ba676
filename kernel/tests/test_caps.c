// SPDX-License-Identifier: GPL-2.0-only
/* Unit tests of kernel/core/caps.c: KVM_CHECK_EXTENSION answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/kvm.h>

#include "core/caps.h"

static const struct kvmpp_caps_env with_vcpus = { .online_cpus = 2, .backend_has_vcpus = true };
static const struct kvmpp_caps_env without_vcpus = { .online_cpus = 2, .backend_has_vcpus = false };

static void implemented_capabilities_are_announced(void **state)
{
	(void)state;
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_CHECK_EXTENSION_VM), 1);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_USER_MEMORY), 1);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_NR_MEMSLOTS), 32764);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_SYNC_MMU), 1);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_MAX_VCPUS), 1024);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_MAX_VCPU_ID), 4096);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_EXT_CPUID), 1);
	/* The ring's page in the vCPU mmap area, as KVM answers. */
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_COALESCED_MMIO),
			 KVM_COALESCED_MMIO_PAGE_OFFSET);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_COALESCED_PIO), 1);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_READONLY_MEM), 1);
}

static void nr_vcpus_follows_online_cpus_up_to_the_maximum(void **state)
{
	const struct kvmpp_caps_env big = { .online_cpus = 5000, .backend_has_vcpus = true };

	(void)state;
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_NR_VCPUS), 2);
	assert_int_equal(kvmpp_check_extension(&big, KVM_CAP_NR_VCPUS), 1024);
}

static void vcpu_capabilities_need_a_backend_with_vcpus(void **state)
{
	(void)state;
	assert_int_equal(kvmpp_check_extension(&without_vcpus, KVM_CAP_NR_VCPUS), 0);
	assert_int_equal(kvmpp_check_extension(&without_vcpus, KVM_CAP_MAX_VCPUS), 0);
	assert_int_equal(kvmpp_check_extension(&without_vcpus, KVM_CAP_IMMEDIATE_EXIT), 0);
	/* Memory capabilities do not depend on vCPUs. */
	assert_int_equal(kvmpp_check_extension(&without_vcpus, KVM_CAP_USER_MEMORY), 1);
}

static void unimplemented_capabilities_answer_zero(void **state)
{
	(void)state;
	/* Real capabilities kvmpp does not implement yet: 0, as KVM answers unknown ones. */
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_IRQCHIP), 0);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, KVM_CAP_DIRTY_LOG_RING), 0);
}

static void numbers_no_kernel_defines_answer_zero(void **state)
{
	(void)state;
	assert_int_equal(kvmpp_check_extension(&with_vcpus, -1), 0);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, 0x7fffffffL), 0);
	assert_int_equal(kvmpp_check_extension(&with_vcpus, 100000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(implemented_capabilities_are_announced),
		cmocka_unit_test(nr_vcpus_follows_online_cpus_up_to_the_maximum),
		cmocka_unit_test(vcpu_capabilities_need_a_backend_with_vcpus),
		cmocka_unit_test(unimplemented_capabilities_answer_zero),
		cmocka_unit_test(numbers_no_kernel_defines_answer_zero),
	};

	return cmocka_run_group_tests_name("caps", tests, NULL, NULL);
}
