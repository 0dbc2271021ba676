/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The VMX instructions kvmpp-intel executes outside the entry code (Intel SDM
 * vol. 3C, chapter 31), as inline functions.
 *
 * VMREAD and VMWRITE act on the VMCS current on the executing CPU: callers
 * have it loaded with vmx_vcpu_load() and keep interrupts off until they are
 * done, so that neither a VMCLEAR IPI nor VMXOFF can come in between.
 */
#ifndef KVMPP_VMX_VMCS_H
#define KVMPP_VMX_VMCS_H

#include <linux/types.h>
#include <asm/asm.h>
#include <asm/vmx.h>

#include "vmx.h"

static __always_inline unsigned long vmcs_read(unsigned long field)
{
	unsigned long value = 0;

	/* A failing VMREAD does not write its destination: the caller sees 0. */
	asm volatile("vmread %[field], %[value]"
		     : [value] "+r"(value) : [field] "r"(field) : "cc");
	return value;
}

static __always_inline void vmcs_write(unsigned long field, unsigned long value)
{
	/* VMfailInvalid sets CF, VMfailValid ZF. */
	asm goto("vmwrite %[value], %[field]\n\t"
		 "jna %l[failed]"
		 : : [field] "r"(field), [value] "rm"(value) : "cc" : failed);
	return;
failed:
	vmx_vmwrite_failed(field, value);
}

static __always_inline void vmcs_set_bits(unsigned long field, u32 bits)
{
	vmcs_write(field, vmcs_read(field) | bits);
}

static __always_inline void vmcs_clear_bits(unsigned long field, u32 bits)
{
	vmcs_write(field, vmcs_read(field) & ~bits);
}

/*
 * VMCLEAR and VMPTRLD: 0, or -EIO when the instruction failed, or faulted
 * because the CPU is not in VMX operation (after an emergency VMXOFF).
 */
static inline int vmx_vmclear(u64 pa)
{
	asm goto("1: vmclear %[pa]\n\t"
		 "jna %l[failed]\n\t"
		 _ASM_EXTABLE(1b, %l[failed])
		 : : [pa] "m"(pa) : "cc", "memory" : failed);
	return 0;
failed:
	return -EIO;
}

static inline int vmx_vmptrld(u64 pa)
{
	asm goto("1: vmptrld %[pa]\n\t"
		 "jna %l[failed]\n\t"
		 _ASM_EXTABLE(1b, %l[failed])
		 : : [pa] "m"(pa) : "cc", "memory" : failed);
	return 0;
failed:
	return -EIO;
}

/* INVEPT (SDM 31.3): @type VMX_EPT_EXTENT_CONTEXT (@eptp's mappings) or _GLOBAL. */
static inline int vmx_invept(unsigned long type, u64 eptp)
{
	struct {
		u64 eptp, reserved;
	} desc = { eptp, 0 };

	asm goto("1: invept %[desc], %[type]\n\t"
		 "jna %l[failed]\n\t"
		 _ASM_EXTABLE(1b, %l[failed])
		 : : [desc] "m"(desc), [type] "r"(type) : "cc", "memory" : failed);
	return 0;
failed:
	return -EIO;
}

/* INVVPID: @type VMX_VPID_EXTENT_SINGLE_CONTEXT (@vpid's mappings) or _ALL_CONTEXT. */
static inline int vmx_invvpid(unsigned long type, u16 vpid)
{
	struct {
		u64 vpid, address;
	} desc = { vpid, 0 };

	asm goto("1: invvpid %[desc], %[type]\n\t"
		 "jna %l[failed]\n\t"
		 _ASM_EXTABLE(1b, %l[failed])
		 : : [desc] "m"(desc), [type] "r"(type) : "cc", "memory" : failed);
	return 0;
failed:
	return -EIO;
}

#endif /* KVMPP_VMX_VMCS_H */
