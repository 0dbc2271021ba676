/* SPDX-License-Identifier: GPL-2.0-only */
/* Declarations private to kvmpp-intel.ko. */
#ifndef KVMPP_VMX_H
#define KVMPP_VMX_H

#include <linux/types.h>

#include "../core/kvmpp.h"

#define KVMPP_VMX_LOG_PREFIX "kvmpp-intel: "

/* What the probe found out about the CPU; written once at module load. */
struct vmx_config {
	u32 revision_id;	/* VMCS revision identifier, IA32_VMX_BASIC[30:0] */
	u32 vmcs_size;		/* bytes, at most a page */
	bool true_ctls;		/* IA32_VMX_TRUE_*_CTLS exist */
	bool vpid;
	bool unrestricted_guest;
	bool ept_ad;		/* EPT accessed/dirty flags */
};

extern struct vmx_config vmx_config;

/* ept.c */
extern const struct kvmpp_tdp_format vmx_ept_format;

/* hardware.c: VMXON/VMXOFF and the VMXON region, per CPU. */
int vmx_hardware_setup(void);
void vmx_hardware_unsetup(void);
int vmx_hardware_enable(void);
void vmx_hardware_disable(void);

#endif /* KVMPP_VMX_H */
