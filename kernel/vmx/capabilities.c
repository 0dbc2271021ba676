// SPDX-License-Identifier: GPL-2.0-only
#include "capabilities.h"

int vmx_adjust_ctls(u32 required, u32 optional, u64 cap_msr, u32 *result)
{
	u32 must_be_1 = (u32)cap_msr;
	u32 may_be_1 = (u32)(cap_msr >> 32);
	u32 value = ((required | optional) & may_be_1) | must_be_1;

	if (required & ~value)
		return -EIO;
	*result = value;
	return 0;
}

bool vmx_cr_allowed(u64 cr, u64 fixed0, u64 fixed1)
{
	return (cr & fixed0) == fixed0 && (cr & ~fixed1) == 0;
}
