/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Constants vmenter.S needs from <asm/vmx.h>, which assembly cannot include;
 * run.c checks at build time that they still agree.
 */
#ifndef KVMPP_VMX_VMENTER_H
#define KVMPP_VMX_VMENTER_H

#define KVMPP_VMX_HOST_RSP	0x00006c14	/* HOST_RSP field encoding */

#endif /* KVMPP_VMX_VMENTER_H */
