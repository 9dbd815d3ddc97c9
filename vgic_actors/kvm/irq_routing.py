"""GSI routing, irqfds, eventfds and irq ack notifiers: the state, and kvm_notify_acked_irq.

virt/kvm/irqchip.c (the routing table), virt/kvm/eventfd.c (irqfds, resamplers,
ack notifiers) and fs/eventfd.c (the counter a device reads). The ioctls that
change this state live in ``userspace.py``; this module imports nothing that
imports the VM, so that ``vm.py`` can own a ``KvmIrqRouting`` and the fold in
``vgic.py`` can call ``kvm_notify_acked_irq`` (the notifiers themselves are
closures ``userspace.py`` registers).

Concurrency: the kernel reads routing and notifier lists under SRCU and updates
them under mutexes; here updates are made by one actor between points, and
every read a notifier or an injection makes starts with a point.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from vgic_actors.runtime import SpinLock, WaitQueue, point

RANK_EVENTFD_WQH = 18
"""eventfd_ctx.wqh.lock: taken before any vgic lock (irqfd_wakeup runs under it)."""

KVM_IRQ_ROUTING_IRQCHIP = 1  # uapi kvm.h: kvm_irq_routing_entry.type
KVM_IRQ_ROUTING_MSI = 2
KVM_MSI_VALID_DEVID = 1 << 0  # kvm_irq_routing_entry.flags / kvm_msi.flags
KVM_MAX_IRQ_ROUTES = 4096  # kvm_host.h (arm64 does not override it)
KVM_NR_IRQCHIPS = 1  # arm64 asm/kvm_host.h
KVM_IRQCHIP_NUM_PINS = 1020 - 32  # arm_vgic.h: one pin per possible SPI

RouteType = Literal["irqchip", "msi"]


@dataclass(frozen=True, slots=True)
class RoutingEntry:
    """struct kvm_irq_routing_entry as userspace passes it (KVM_SET_GSI_ROUTING).

    ``irqchip``: ``pin`` is the SPI number minus 32 (vgic-irqfd.c). ``msi``: the ITS
    DeviceID (``devid``, needs KVM_MSI_VALID_DEVID in ``flags``) and the EventID
    (``data``); the doorbell address is not modelled (one ITS).
    """

    gsi: int
    type: RouteType = "irqchip"
    irqchip: int = 0
    pin: int = 0
    devid: int = 0
    data: int = 0
    flags: int = 0


class EventFd:
    """An eventfd: a counter written by one side and read (and reset) by the other.

    ``signals`` counts every eventfd_signal ever made (for tests and checks). A reader
    blocks on ``wait`` until the count is non-zero (an idle wait: a run may end
    quiescent with a device waiting for a resample that never comes).
    """

    __slots__ = ("count", "name", "signals", "wait", "wqh_lock")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self.signals = 0
        self.wait = WaitQueue(f"eventfd.{name}")
        # ctx->wqh.lock: spin_lock_irqsave in eventfd_signal, spin_lock_irq in write(2);
        # the wait-queue callbacks (irqfd_wakeup) run under it, with IRQs off
        self.wqh_lock = SpinLock(f"eventfd.{name}.wqh", RANK_EVENTFD_WQH,
                                 flavour="raw_spin_lock_irqsave")

    async def eventfd_signal(self) -> None:
        """fs/eventfd.c: eventfd_signal: under the wqh lock (IRQs off), add one and wake
        the reader."""
        async with self.wqh_lock:
            self.count += 1
            self.signals += 1
            self.wait.wake_nowait()

    async def eventfd_read(self) -> int:
        """read(2) on a blocking eventfd: wait for a non-zero count, return it and reset."""
        await self.wait.kvm_vcpu_block(lambda: self.count > 0)
        value, self.count = self.count, 0
        return value


@dataclass(eq=False, slots=True)
class IrqAckNotifier:
    """struct kvm_irq_ack_notifier: ``irq_acked`` runs when the guest deactivates ``gsi``."""

    gsi: int
    irq_acked: Callable[[], Awaitable[None]]


@dataclass(eq=False, slots=True)
class IrqfdResampler:
    """struct kvm_kernel_irqfd_resampler: one per GSI, shared by its resampling irqfds."""

    gsi: int
    irqfds: list[Irqfd] = field(default_factory=list)
    notifier: IrqAckNotifier | None = None


@dataclass(eq=False, slots=True)
class Irqfd:
    """struct kvm_kernel_irqfd: ``eventfd`` raises ``gsi``; ``resamplefd`` (resampling
    irqfds only) is signalled when the guest deactivates it."""

    gsi: int
    eventfd: EventFd
    resampler: IrqfdResampler | None = None
    resamplefd: EventFd | None = None


@dataclass(eq=False, slots=True)
class KvmIrqRouting:
    """kvm->irq_routing, kvm->irqfds and kvm->irq_ack_notifier_list.

    ``routes``: GSI -> its entries (kvm_irq_routing_table.map); ``chip``: pin -> GSI
    (kvm_irq_routing_table.chip, for kvm_notify_acked_irq). ``None`` until KVM sets up
    the default routing (kvm_vgic_setup_default_irq_routing, at vGIC init).
    ``eventfds``: every eventfd the VMM created, by name (its file descriptors).
    """

    routes: dict[int, list[RoutingEntry]] | None = None
    chip: dict[int, int] = field(default_factory=dict)
    irqfds: list[Irqfd] = field(default_factory=list)
    resamplers: list[IrqfdResampler] = field(default_factory=list)
    ack_notifiers: list[IrqAckNotifier] = field(default_factory=list)
    eventfds: dict[str, EventFd] = field(default_factory=dict)

    def eventfd(self, name: str) -> EventFd:
        """The eventfd called ``name``, created on first use (eventfd(2))."""
        fd = self.eventfds.get(name)
        if fd is None:
            fd = self.eventfds[name] = EventFd(name)
        return fd

    def kvm_irq_map_chip_pin(self, irqchip: int, pin: int) -> int:
        """irqchip.c: kvm_irq_map_chip_pin: the GSI routed to (irqchip, pin), or -1."""
        if irqchip != 0:
            return -1
        return self.chip.get(pin, -1)


async def kvm_notify_acked_irq(routing: KvmIrqRouting, irqchip: int, pin: int) -> None:
    """eventfd.c: kvm_notify_acked_irq: run the ack notifiers of the GSI routed to ``pin``.

    Called by the fold (vgic-v3.c: vgic_v3_fold_lr) on the vCPU's thread when a level,
    non-HW SPI whose LR carried the EOI bit was deactivated, with ``pin`` = INTID - 32.
    The notifier list is read under SRCU: one point, then each matching notifier runs
    (the irqfd resampler: irqfd_resampler_ack).
    """
    await point(f"kvm_notify_acked_irq.{pin}")
    gsi = routing.kvm_irq_map_chip_pin(irqchip, pin)
    if gsi == -1:
        return
    for kian in list(routing.ack_notifiers):
        if kian.gsi == gsi:
            await kian.irq_acked()
