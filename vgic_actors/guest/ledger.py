"""What the guests did to interrupts, across vCPUs: the record end-of-run checks read.

A deactivation may happen on another vCPU than the acknowledge (EOImode 1 with
the DIR deferred), so the ledger is shared by every guest of a VM. Private
interrupts (SGIs, PPIs) are banked per vCPU; SPIs and LPIs are global.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from vgic_actors.events import AnyEvent, DirEmulated

IrqKey = tuple[int | None, int]
"""(vcpu for SGIs/PPIs else None, INTID): one interrupt of the VM."""


def irq_key(vcpu: int, value: int) -> IrqKey:
    """The key of the interrupt an IAR/EOIR/DIR ``value`` names, as seen from ``vcpu``
    (private interrupts are banked; a GICv2 SGI value carries its source in bits [12:10])."""
    intid = value if value >= 8192 else value & 0x3FF
    return (vcpu if intid < 32 else None, intid)


@dataclass
class GuestLedger:
    """Acknowledges, deactivations and the interrupts a guest still holds (acked, not
    yet deactivated), with where the last deactivation of each came from.

    ``last_kind``: how the last deactivation was made (EOIR, DIR-trapped, DIR-untrapped,
    ICACTIVER); ``last_outcome``: for a trapped DIR, the branch vgic_v3_deactivate took
    (the DirEmulated outcome: icactiver, pseudo-lr, not-queued, ...), which the ledger
    hears as a kernel-event sink (``kernel_event``); for an untrapped DIR, where the
    SPI-tracking broadcast stood for that vCPU, from ``untrapped_probe`` (the runner wires
    kvm/vgic.py's `broadcast_phase` in; the guest layer knows nothing of the kernel)."""

    acks: Counter[IrqKey] = field(default_factory=Counter)
    deactivations: Counter[IrqKey] = field(default_factory=Counter)
    # deactivations of an interrupt the guest held (acknowledged, not yet deactivated):
    # an EOIR or DIR of an interrupt it never acknowledged changes no state
    completed: Counter[IrqKey] = field(default_factory=Counter)
    held: Counter[IrqKey] = field(default_factory=Counter)
    last_deactivation: dict[IrqKey, str] = field(default_factory=dict)
    last_kind: dict[IrqKey, str] = field(default_factory=dict)
    last_outcome: dict[IrqKey, str] = field(default_factory=dict)
    untrapped_probe: Callable[[int, int], str] | None = None

    def acked(self, vcpu: int, intid: int) -> None:
        """vCPU ``vcpu`` acknowledged ``intid`` (it is now Active for the guest)."""
        key = irq_key(vcpu, intid)
        self.acks[key] += 1
        self.held[key] += 1

    def deactivated(self, vcpu: int, intid: int, how: str, kind: str) -> None:
        """vCPU ``vcpu`` deactivated ``intid`` (``kind``: EOIR in EOImode 0, DIR-trapped,
        DIR-untrapped, ICACTIVER; ``how``: the same with the program counter)."""
        key = irq_key(vcpu, intid)
        self.deactivations[key] += 1
        if self.held[key] > 0:
            self.held[key] -= 1
            self.completed[key] += 1
        self.last_deactivation[key] = f"vcpu{vcpu} {how}"
        self.last_kind[key] = kind
        self.last_outcome.pop(key, None)
        if kind == "DIR-untrapped" and self.untrapped_probe is not None:
            self.last_outcome[key] = self.untrapped_probe(vcpu, intid)

    def kernel_event(self, event: AnyEvent) -> None:
        """Kernel-event sink: the outcome of the trapped DIR just recorded."""
        if isinstance(event, DirEmulated):
            key = irq_key(event.vcpu, event.intid)
            if self.last_kind.get(key) == "DIR-trapped":
                self.last_outcome[key] = event.outcome

    def acks_of(self, intid: int) -> int:
        """Acknowledges of ``intid`` summed over every vCPU's copy."""
        return sum(n for (_, i), n in self.acks.items() if i == intid)
