/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pure-logic files (capability tables, VMX control arithmetic, later the
 * instruction emulator and the page walker) include this instead of kernel
 * headers, so that the same source compiles into the modules and into the
 * userspace CMocka tests under kernel/tests/.
 */
#ifndef KVMPP_PURE_H
#define KVMPP_PURE_H

#ifdef __KERNEL__
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/types.h>
#else
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#endif /* KVMPP_PURE_H */
