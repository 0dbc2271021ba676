// SPDX-License-Identifier: GPL-2.0-only
/*
 * Nested page tables: ordinary x86-64 page-table entries, walked as user
 * accesses (APM 15.25.5), so every entry carries the user bit.
 */
#include <asm/pgtable_types.h>

#include "svm.h"

const struct kvmpp_tdp_format svm_npt_format = {
	.present_mask = _PAGE_PRESENT,
	.table_bits = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED,
	/* Accessed and dirty preset: the CPU need not write them back. */
	.leaf_bits = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY,
	.writable_bit = _PAGE_RW,
	.large_bit = _PAGE_PSE,
	/* The walk has as many levels as the host's own paging (5 with LA57). */
	.host_paging_depth = true,
};
