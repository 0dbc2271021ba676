// SPDX-License-Identifier: GPL-2.0-only
/*
 * Coalesced MMIO and PIO (KVM_REGISTER_COALESCED_MMIO): a guest write into a
 * zone userspace registered does not exit. It is appended to a ring that
 * every vCPU maps at page KVM_COALESCED_MMIO_PAGE_OFFSET of its mmap area,
 * and the VMM drains the ring when it next gets control. Reads from a zone,
 * and writes when the ring is full, exit as usual.
 *
 * The ring is KVM's: kvmpp appends at @last, userspace consumes from
 * @first, one entry always stays free, and an entry is complete before
 * @last moves past it.
 */
#include <linux/kvm.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "kvmpp.h"

/* Zones a VM may have on each bus (MMIO, PIO): KVM's NR_IOBUS_DEVS. */
#define KVMPP_MAX_COALESCED_ZONES 1000

struct kvmpp_coalesced_zone {
	struct list_head list;
	struct kvm_coalesced_mmio_zone zone;
};

void kvmpp_coalesced_init(struct kvmpp_vm *vm)
{
	spin_lock_init(&vm->coalesced.lock);
	INIT_LIST_HEAD(&vm->coalesced.zones);
}

void kvmpp_coalesced_destroy(struct kvmpp_vm *vm)
{
	struct kvmpp_coalesced_zone *z, *tmp;

	list_for_each_entry_safe(z, tmp, &vm->coalesced.zones, list)
		kfree(z);
}

/* Whether [@addr, @addr + @len) lies within @zone (KVM's test, overflow included). */
static bool zone_contains(const struct kvm_coalesced_mmio_zone *zone, u64 addr, int len)
{
	if (len < 0 || addr + len < addr)
		return false;
	return addr >= zone->addr && addr + len <= zone->addr + zone->size;
}

static long zone_from_user(struct kvm_coalesced_mmio_zone *zone, void __user *argp)
{
	if (copy_from_user(zone, argp, sizeof(*zone)))
		return -EFAULT;
	return zone->pio == 0 || zone->pio == 1 ? 0 : -EINVAL;
}

long kvmpp_vm_register_coalesced(struct kvmpp_vm *vm, void __user *argp)
{
	struct kvmpp_coalesced_zone *z;
	long r;

	z = kzalloc(sizeof(*z), GFP_KERNEL_ACCOUNT);
	if (!z)
		return -ENOMEM;
	r = zone_from_user(&z->zone, argp);
	if (r)
		goto err;

	spin_lock(&vm->coalesced.lock);
	if (vm->coalesced.nr[z->zone.pio] >= KVMPP_MAX_COALESCED_ZONES) {
		spin_unlock(&vm->coalesced.lock);
		r = -ENOSPC;
		goto err;
	}
	vm->coalesced.nr[z->zone.pio]++;
	list_add_tail(&z->list, &vm->coalesced.zones);
	spin_unlock(&vm->coalesced.lock);
	return 0;
err:
	kfree(z);
	return r;
}

/* Removes every zone of the same kind that contains the given one, as KVM does. */
long kvmpp_vm_unregister_coalesced(struct kvmpp_vm *vm, void __user *argp)
{
	struct kvm_coalesced_mmio_zone zone;
	struct kvmpp_coalesced_zone *z, *tmp;
	LIST_HEAD(gone);
	long r;

	r = zone_from_user(&zone, argp);
	if (r)
		return r;
	spin_lock(&vm->coalesced.lock);
	list_for_each_entry_safe(z, tmp, &vm->coalesced.zones, list) {
		if (z->zone.pio == zone.pio && zone_contains(&z->zone, zone.addr, zone.size)) {
			list_move(&z->list, &gone);
			vm->coalesced.nr[zone.pio]--;
		}
	}
	spin_unlock(&vm->coalesced.lock);
	list_for_each_entry_safe(z, tmp, &gone, list)
		kfree(z);
	return 0;
}

/*
 * A guest write of @len (1..8) bytes at @addr (a guest-physical address, or a
 * port when @pio): true when it went into the ring, false when it has to
 * exit to userspace (no zone holds it, or the ring is full).
 */
bool kvmpp_coalesced_write(struct kvmpp_vm *vm, u64 addr, unsigned int len, const void *data,
			   bool pio)
{
	struct kvm_coalesced_mmio_ring *ring = page_address(vm->coalesced_mmio_ring);
	const struct kvmpp_coalesced_zone *z;
	bool found = false, stored = false;
	u32 last;

	/* Unlocked peek: a zone registered concurrently may or may not apply. */
	if (list_empty_careful(&vm->coalesced.zones))
		return false;

	spin_lock(&vm->coalesced.lock);
	list_for_each_entry(z, &vm->coalesced.zones, list) {
		if (z->zone.pio == pio && zone_contains(&z->zone, addr, len)) {
			found = true;
			break;
		}
	}
	/* Userspace owns @first and may write anything to @last: check both. */
	last = READ_ONCE(ring->last);
	if (found && last < KVM_COALESCED_MMIO_MAX &&
	    (u32)(READ_ONCE(ring->first) - last - 1) % KVM_COALESCED_MMIO_MAX) {
		struct kvm_coalesced_mmio *entry = &ring->coalesced_mmio[last];

		entry->phys_addr = addr;
		entry->len = len;
		entry->pio = pio;
		memcpy(entry->data, data, len);
		/* The entry before the index that publishes it. */
		smp_wmb();
		WRITE_ONCE(ring->last, (last + 1) % KVM_COALESCED_MMIO_MAX);
		stored = true;
	}
	spin_unlock(&vm->coalesced.lock);
	return stored;
}
