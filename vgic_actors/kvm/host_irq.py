"""The host's handlers for forwarded physical interrupts, run by the host-interrupt actor.

arch_timer.c: kvm_arch_timer_handler (and the VFIO forwarded-IRQ handlers, which do
the same for SPIs): the host takes the physical interrupt, leaves it Active (EOImode
1: priority drop only) and injects the virtual interrupt with level 1, as the
interrupt's owner. The guest's deactivation through the LR's HW bit then deactivates
the physical interrupt (phys_gic.py).

One actor, ``hostirq``, stands for "whichever host CPU the GIC picked": physical
interrupts reach it as messages in flight (their delivery latency is a choice of
the scheduler). machine.py spawns it on the first physical interrupt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vgic_actors.kvm.vgic import kvm_vgic_inject_irq
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import Message, hardirq, point
from vgic_actors.runtime.kick import Pcpu


async def kvm_host_irq_handler(kvm: Kvm, hwintid: int) -> None:
    """arch_timer.c: kvm_arch_timer_handler, for any forwarded physical INTID.

    Acknowledge (physical Active; nothing if the line already dropped), then
    kvm_vgic_inject_irq(level 1) to the mapped vINTID with the mapping's owner. The
    whole handler runs in hard-IRQ context (irq_enter .. irq_exit).
    """
    with hardirq("kvm_arch_timer_handler"):
        await point(f"hostirq.{hwintid}.iar")
        if not kvm.phys.host_ack(hwintid):
            return
        mapping = kvm.phys.mappings.get(hwintid)
        if mapping is None:  # unmapped meanwhile: nothing to forward
            return
        kvm.coverage["hw.host-inject"] += 1
        await kvm_vgic_inject_irq(kvm, mapping.vcpu_id, mapping.vintid, True,
                                  owner=mapping.owner)


async def kvm_handle_taken_irqs(kvm: Kvm, pcpu: Pcpu | None) -> None:
    """Run the host handler, on this pCPU, of each physical interrupt it has taken and no
    other context handled yet (run_loop.py calls it with IRQs enabled before handle_exit
    and before the next entry: the window in which the CPU takes a pending interrupt)."""
    for hwintid in kvm.phys.taken_on(pcpu):
        if kvm.phys.take(hwintid):
            await kvm_host_irq_handler(kvm, hwintid)


async def phys_irq_set_line(kvm: Kvm, hwintid: int, level: bool) -> None:
    """A device drives its physical interrupt line (the timer's ISTATUS, a device's output).

    One point; a rising line on an inactive mapped INTID is signalled to the host
    (phys_gic.py). A mapping with SW resampling (VGIC_IRQ_SW_RESAMPLE) has no HW bit to
    re-sample the line at fold, so its owner also moves the virtual line, as the arch
    timer does (arch_timer.c: kvm_timer_update_irq); a HW-bit mapping leaves the virtual
    line to the fold's resampling (vgic_irq_handle_resampling).
    """
    await point(f"phys.{hwintid}.{'assert' if level else 'deassert'}")
    kvm.phys.drive(hwintid, level)
    mapping = kvm.phys.mappings.get(hwintid)
    if mapping is None or level:
        return
    vcpu = kvm.vcpus[mapping.vcpu_id] if mapping.vcpu_id is not None else None
    irq = kvm.vgic_get_irq(vcpu, mapping.vintid)
    if irq is not None and irq.needs_resampling:
        await kvm_vgic_inject_irq(kvm, mapping.vcpu_id, mapping.vintid, False,
                                  owner=mapping.owner)


def host_irq_handler(kvm: Kvm) -> Callable[[Message], Awaitable[object]]:
    """The handler the runtime's ``serve`` shell calls for each physical interrupt."""

    async def handle(msg: Message) -> object:
        if not isinstance(msg.payload, int):
            raise TypeError(f"hostirq: unexpected message {msg.describe()}")
        if kvm.phys.take(msg.payload):  # not yet handled on the pCPU that took it
            await kvm_host_irq_handler(kvm, msg.payload)
        return None

    return handle
