/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VMX capability arithmetic (Intel SDM vol. 3, appendix A): pure logic over the
 * values of the IA32_VMX_* MSRs, compiled into kvmpp-intel.ko and into the
 * CMocka tests. The caller reads the MSRs and names the bits (<asm/vmx.h>).
 */
#ifndef KVMPP_VMX_CAPABILITIES_H
#define KVMPP_VMX_CAPABILITIES_H

#include <kvmpp/pure.h>

/*
 * A VMX control field from a capability MSR, whose low half holds the
 * allowed-0 settings (bits that must be 1) and whose high half holds the
 * allowed-1 settings (bits that may be 1). Sets every @required bit, every
 * @optional bit the CPU allows and every bit it insists on. Returns 0 and the
 * value in @result, or -EIO (leaving @result alone) when a required bit is not
 * allowed.
 */
int vmx_adjust_ctls(u32 required, u32 optional, u64 cap_msr, u32 *result);

/*
 * Whether a CR0 or CR4 value is allowed in VMX operation: every bit set in
 * @fixed0 (IA32_VMX_CRn_FIXED0) must be 1, every bit clear in @fixed1
 * (IA32_VMX_CRn_FIXED1) must be 0.
 */
bool vmx_cr_allowed(u64 cr, u64 fixed0, u64 fixed1);

#endif /* KVMPP_VMX_CAPABILITIES_H */
