"""The distributor actor: guest GICD_* accesses, served from its mailbox (vgic-mmio.c).

A vCPU whose guest touches the distributor exits with an ``MmioAccess``; its
run loop sends it here as a request (a message in flight) and waits for the
reply. Handlers work one interrupt's bit at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vgic_actors.kvm.guest_api import MmioAccess
from vgic_actors.kvm.irq import irq_is_pending
from vgic_actors.kvm.vgic import (
    vgic_mmio_change_active,
    vgic_mmio_read_active,
    vgic_queue_irq_unlock,
)
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import Message


async def vgic_mmio_access(kvm: Kvm, access: MmioAccess) -> int:
    """Dispatch one GICD_* access (vgic-mmio.c handlers); returns the bit read (0 for writes)."""
    vcpu = kvm.vcpus[access.vcpu_id]
    irq = kvm.vgic_get_irq(vcpu, access.intid)
    if irq is None:
        return 0
    reg = access.reg
    if reg in ("ISACTIVER", "ICACTIVER"):
        if not access.write:
            return int(await vgic_mmio_read_active(kvm, vcpu, access.intid))
        await vgic_mmio_change_active(kvm, vcpu, access.intid, reg == "ISACTIVER")
        return 0
    await irq.lock.acquire()
    if reg == "IPRIORITYR":  # vgic_mmio_read/write_priority: VGIC_PRI_BITS (5) kept
        if access.write:
            irq.priority = access.value & 0xF8
        value = irq.priority
        irq.lock.release()
        return value if not access.write else 0
    if not access.write:
        if reg in ("ISPENDR", "ICPENDR"):
            value = int(irq_is_pending(irq))
        else:
            value = int(irq.enabled)
        irq.lock.release()
        return value
    if reg == "ISPENDR":  # vgic_mmio_write_spending
        irq.pending_latch = True
        await vgic_queue_irq_unlock(kvm, irq)
    elif reg == "ICPENDR":  # vgic_mmio_write_cpending
        irq.pending_latch = False
        irq.lock.release()
    elif reg == "ISENABLER":  # vgic_mmio_write_senable
        irq.enabled = True
        await vgic_queue_irq_unlock(kvm, irq)
    else:  # ICENABLER: vgic_mmio_write_cenable
        irq.enabled = False
        irq.lock.release()
    return 0


def distributor_handler(kvm: Kvm) -> Callable[[Message], Awaitable[object]]:
    """The handler the runtime's ``serve`` shell calls for each message."""

    async def handle(msg: Message) -> object:
        if isinstance(msg.payload, MmioAccess):
            return await vgic_mmio_access(kvm, msg.payload)
        raise TypeError(f"distributor: unexpected message {msg.describe()}")

    return handle
