// SPDX-License-Identifier: GPL-2.0-only
/*
 * EPT entries (Intel SDM vol. 3, 29.3.2): read/write/execute bits instead of
 * present/RW, and the memory type in the leaf (write-back for guest RAM).
 */
#include <asm/mtrr.h>
#include <asm/pgtable_types.h>
#include <asm/vmx.h>

#include "vmx.h"

const struct kvmpp_tdp_format vmx_ept_format = {
	.present_mask = VMX_EPT_RWX_MASK,
	.table_bits = VMX_EPT_READABLE_MASK | VMX_EPT_WRITABLE_MASK | VMX_EPT_EXECUTABLE_MASK,
	/* Accessed and dirty preset (bits 8, 9): the CPU need not write them back. */
	.leaf_bits = VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK |
		     (MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT) |
		     VMX_EPT_ACCESS_BIT | VMX_EPT_DIRTY_BIT,
	.writable_bit = VMX_EPT_WRITABLE_MASK,
	.large_bit = _PAGE_PSE,	/* bit 7, as in ordinary page tables */
};
