"""The delivery oracle: nothing is delivered that no one made pending.

An edge interrupt becomes pending once per edge: a guest or VMM GICD_ISPENDR write, a
KVM_IRQ_LINE edge, an irqfd signal or MSI routed to it, an SGI sent to the vCPU, an ITS
INT. Pending states merge, so the guest may take it fewer times, never more: more
acknowledges than edges is `phantom-ack` (an interrupt handed to the guest that no one
raised, e.g. a pending state written back by a fold after the guest took it).

The bound comes from the programs, not from the kernel model: every injecting operation
of a guest's main program and of the VMM's script runs at most once (programs are
straight-line once `repeat`/`for` are expanded). An interrupt is not judged when the bound
is not known: an injection inside an IRQ handler (it runs per interrupt), a level or
HW-mapped interrupt (its pending state follows a line, and a level ISPENDR latch survives
an acknowledge in KVM: findings O1), an ITS mapping changed (DISCARD, MOVI, CLEAR, a
second MAPTI), or GSI routing the script sets more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from vgic_actors.checks.violation import Violation, violation
from vgic_actors.guest.host import (
    Host,
    InjectEdge,
    IrqfdAssign,
    IrqfdSignal,
    SetGsiRouting,
    SignalMsi,
    WriteIspendr,
)
from vgic_actors.guest.its import ItsCommand
from vgic_actors.guest.ledger import GuestLedger, IrqKey
from vgic_actors.guest.program import Mmio
from vgic_actors.guest.sgi import SendSgi
from vgic_actors.kvm.irq import IrqConfig
from vgic_actors.kvm.vm import Kvm

UNSTEADY_ITS = frozenset({"DISCARD", "MOVI", "CLEAR"})
"""ITS commands after which an LPI's edges cannot be counted from the programs."""


class _Budget:
    """Edges per interrupt from the programs; ``unknown`` when they cannot be bounded."""

    def __init__(self, nr_vcpus: int) -> None:
        self.nr_vcpus = nr_vcpus
        self.edges: Counter[IrqKey] = Counter()
        self.unbounded: set[IrqKey] = set()
        self.unknown = False
        self.lpi_map: dict[tuple[int, int], int] = {}
        self.routes: dict[int, tuple[str, int, int]] = {}  # gsi -> (type, pin|devid, data)
        self.irqfds: dict[str, int] = {}  # eventfd -> gsi
        self.routings = 0
        self.lpis_unsteady = False

    def key(self, vcpu: int, intid: int) -> IrqKey:
        return (vcpu if intid < 32 else None, intid)

    def injection(self, vcpu: int, op: Any, in_handler: bool) -> None:
        """Count (or, in a handler, give up on) what ``op`` makes pending."""
        hits: list[IrqKey] = []
        if isinstance(op, Mmio) and op.write and op.reg == "ISPENDR":
            hits = [self.key(vcpu, op.intid)]
        elif isinstance(op, SendSgi):
            targets = ([t for t in range(self.nr_vcpus) if t != vcpu] if op.irm
                       else list(op.targets))
            hits = [self.key(t, op.intid) for t in targets]
        elif isinstance(op, ItsCommand):
            if op.cmd in ("MAPTI", "MAPI"):
                ident = (op.device_id, op.event_id)
                lpi = op.intid if op.cmd == "MAPTI" else op.event_id
                if self.lpi_map.get(ident, lpi) != lpi:
                    self.lpis_unsteady = True
                self.lpi_map[ident] = lpi
            elif op.cmd in UNSTEADY_ITS:
                self.lpis_unsteady = True
            elif op.cmd == "INT":
                hits = self._lpi(op.device_id, op.event_id)
        elif isinstance(op, Host):
            self.host(op.action, in_handler)
            return
        for key in hits:
            if in_handler:
                self.unbounded.add(key)
            self.edges[key] += 1

    def _lpi(self, device: int, event: int) -> list[IrqKey]:
        lpi = self.lpi_map.get((device, event))
        if lpi is None:
            self.unknown = True  # an INT before its mapping: do not judge LPIs at all
            return []
        return [(None, lpi)]

    def host(self, action: Any, in_handler: bool = False) -> None:
        """A VMM action."""
        hits: list[IrqKey] = []
        if isinstance(action, InjectEdge | WriteIspendr):
            hits = [self.key(action.vcpu, action.intid)]
        elif isinstance(action, SetGsiRouting):
            self.routings += 1
            for e in action.entries:
                self.routes[e.gsi] = (e.type, e.pin if e.type == "irqchip" else e.devid,
                                      e.data)
        elif isinstance(action, IrqfdAssign):
            self.irqfds[action.eventfd] = action.gsi
        elif isinstance(action, IrqfdSignal):
            gsi = self.irqfds.get(action.eventfd)
            if gsi is None:
                self.unknown = True
                return
            kind, a, b = self.routes.get(gsi, ("irqchip", gsi, 0))
            hits = [(None, a + 32)] if kind == "irqchip" else self._lpi(a, b)
        elif isinstance(action, SignalMsi):
            hits = self._lpi(action.devid, action.eventid)
        else:
            for field in ("intid", "vintid"):
                intid = getattr(action, field, None)
                if intid is not None:
                    self.unbounded.add(self.key(getattr(action, "vcpu", 0) or 0, intid))
            return
        for key in hits:
            if in_handler:
                self.unbounded.add(key)
            self.edges[key] += 1


def delivery_violations(kvm: Kvm, guests: Sequence[Any], vmm: Iterable[Any],
                        ledger: GuestLedger) -> list[Violation]:
    """`phantom-ack` for every edge interrupt the guests took more often than anyone made
    it pending (module docstring)."""
    budget = _Budget(len(kvm.vcpus))
    for vid, prog in enumerate(guests):
        # A run cut short inside a handler: the main program is the outermost frame.
        for op in prog.frames[0][0] if prog.frames else prog.ops:
            budget.injection(vid, op, False)
        for op in prog.handler or []:
            budget.injection(vid, op, True)
    for p in vmm:
        for step in p.steps:
            budget.host(getattr(step, "action", step))
    if budget.unknown or budget.routings > 1:
        return []
    out = []
    for key, acks in sorted(ledger.acks.items(), key=lambda kv: (kv[0][1], kv[0][0] or 0)):
        vcpu, intid = key
        if key in budget.unbounded or (intid >= 8192 and budget.lpis_unsteady):
            continue
        irq = kvm.vgic_get_irq(kvm.vcpus[vcpu or 0], intid)
        if irq is None or irq.config is not IrqConfig.EDGE or irq.hw:
            continue
        if acks > budget.edges[key]:
            where = f"vcpu{vcpu} " if vcpu is not None else ""
            out.append(violation(
                "phantom-ack", f"{where}INTID {intid} was acknowledged {acks} times but made "
                f"pending at most {budget.edges[key]} times"))
    return out
