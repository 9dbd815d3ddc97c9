"""Safety invariants checked along the run, at every kernel event.

A `StepMonitor` is an event sink: whenever the kernel model reports a step that changes
ap_lists, List Registers or the SPI count (IrqQueued, IrqPruned, LrFolded,
EoicountReplayed, DirEmulated, HcrConfigured, ActiveChanged), it re-checks the cheap
safety invariants on the live state and keeps the first violation of each, with the
step at which it was first seen. The end-of-run checks (final.py) judge liveness.
"""

from __future__ import annotations

from vgic_actors.checks.final import (
    Violation,
    ap_list_violations,
    stale_touch_violations,
    undercount_violations,
)
from vgic_actors.events import (
    ActiveChanged,
    AnyEvent,
    DirEmulated,
    EoicountReplayed,
    HcrConfigured,
    IrqPruned,
    IrqQueued,
    LrFolded,
)
from vgic_actors.kvm.vm import Kvm

WATCHED = (IrqQueued, IrqPruned, LrFolded, EoicountReplayed, DirEmulated, HcrConfigured,
           ActiveChanged)


class StepMonitor:
    """Checks ap-list-consistency, active-spis-undercount and irq-use-after-unlink after each
    kernel event."""

    def __init__(self, kvm: Kvm | None = None) -> None:
        self.kvm = kvm
        self.checks = 0
        self.first: dict[str, tuple[int, Violation]] = {}

    def __call__(self, event: AnyEvent) -> None:
        """The event sink."""
        if self.kvm is None or not isinstance(event, WATCHED):
            return
        self.checks += 1
        kvm = self.kvm
        for v in (ap_list_violations(kvm) + undercount_violations(kvm)
                  + stale_touch_violations(kvm)):
            if v.invariant not in self.first:
                self.first[v.invariant] = (event.step, v)

    def violations(self) -> list[Violation]:
        """The first violation of each invariant, its message saying when it appeared."""
        return [Violation(invariant=v.invariant, kind=v.kind,
                          message=f"{v.message} (first at step {step})")
                for step, v in sorted(self.first.values(), key=lambda sv: sv[0])]
