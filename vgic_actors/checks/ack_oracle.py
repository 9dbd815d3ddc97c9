"""The acknowledge oracle: the guest takes the highest-priority interrupt it may see.

An independent reference model of the distributor and the CPU interface, built from what
the scenario says (each interrupt's priority, each vCPU's PMR, written once by the guest
programs) and from what happened to each interrupt (forwarded to a vCPU, moved, dropped,
acknowledged, deactivated), never from the kernel model's vgic_irq state. At each guest
acknowledge (IAR returning X on vCPU v) it asks: was some other interrupt Y, of a
strictly higher priority (lower value, below v's PMR), pending for v since before v's
last entry, and not taken? The guest should then have seen Y: the IAR returns the
highest-priority pending interrupt (gic-arch.md 4.2, hppvi), and KVM presents the
highest-priority pending interrupts in the List Registers at every entry (vgic.c:
vgic_flush_lr_state sorts the ap_list by vgic_irq_cmp when it overflows, at
1c3b3cadcd69). Anything made pending after that entry may legitimately be unseen (the
architecture gives no bound on when a new pending interrupt reaches the CPU interface),
so it is not judged.

What "pending for v since before the entry" means, from the events: an IrqQueued for v
(or an IrqPruned migrating it to v) emitted before v's HcrConfigured. Both are emitted
after their ap_list_lock is dropped, and the flush emits HcrConfigured with v's
ap_list_lock held, so the insertion came before the flush read the list.

Interrupts whose pending state may change without an acknowledge are not judged (no
false alarms): level-configured and HW-mapped ones, any the VMM drives other than by an
edge, and any the guests disable, clear, (de)activate by GICD write, regroup or
re-route or re-prioritise after configuring them; nor vCPUs whose PMR or group enable
changes more than once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.checks.violation import Violation
from vgic_actors.events import (
    AnyEvent,
    GuestAcked,
    GuestDeactivated,
    GuestEoied,
    HcrConfigured,
    IrqPruned,
    IrqQueued,
)
from vgic_actors.guest.its import ItsCommand, SetLpiConfig
from vgic_actors.guest.program import Mmio, SetGroupEnable, SetPmr

Key = tuple[int | None, int]
"""(vCPU for an SGI/PPI else None, INTID)."""

VOLATILE_REGS = frozenset({"ICPENDR", "ICENABLER", "ISACTIVER", "ICACTIVER", "IGROUPR",
                           "ICFGR"})
"""GICD writes after which an interrupt's pending state or deliverability may change
without an acknowledge."""
ONCE_REGS = frozenset({"IPRIORITYR", "IROUTER", "ITARGETSR"})
"""Registers a judged interrupt may be configured by once (a second write: re-routed or
re-prioritised)."""


STEADY_ITS = frozenset({"MAPD", "MAPC", "MAPTI", "MAPI", "INT", "SYNC", "INV", "INVALL"})
"""ITS commands that leave a mapped LPI's pending state alone (DISCARD, MOVI, CLEAR and
re-mappings make every LPI unjudged)."""


def _key(vcpu: int, intid: int) -> Key:
    return (vcpu if intid < 32 else None, intid)


class AckOracle:
    """A kernel-event sink (runtime/eventlog.py ``kernel_sinks``) judging every guest
    acknowledge; `violations` gives the first wrong-priority acknowledge, if any."""

    def __init__(self, guests: Iterable[tuple[list[Any], list[Any] | None]],
                 irqs: Iterable[Any] = (), host: Iterable[Any] = ()) -> None:
        self.priority: dict[Key, int] = {}
        self.pmr: dict[int, int] = {}
        self.volatile: set[Key] = set()
        self.skip_vcpus: set[int] = set()
        self.lpis_volatile = False
        self._static(list(guests), irqs, host)
        self.seq = 0
        self.pending: dict[Key, tuple[int, int]] = {}  # key -> (vCPU, seq it got there)
        self.held: Counter[Key] = Counter()
        self.entry: dict[int, int] = {}  # vCPU -> seq of its last HcrConfigured
        self.acks_judged = 0
        self.first: Violation | None = None

    def _static(self, guests: list[tuple[list[Any], list[Any] | None]], irqs: Iterable[Any],
                host: Iterable[Any]) -> None:
        writes: Counter[tuple[Key, str]] = Counter()
        for vid, (ops, handler) in enumerate(guests):
            pmrs = set()
            enables = 0
            for op in list(ops) + list(handler or []):
                if isinstance(op, Mmio) and op.write:
                    key = _key(vid, op.intid)
                    writes[(key, op.reg)] += 1
                    if op.reg in VOLATILE_REGS:
                        self.volatile.add(key)
                    if op.reg == "IPRIORITYR":
                        self.priority[key] = op.value & 0xF8
                elif isinstance(op, SetLpiConfig):
                    writes[((None, op.intid), "IPRIORITYR")] += 1
                    self.priority[(None, op.intid)] = op.priority & 0xF8
                    if not op.enable:
                        self.volatile.add((None, op.intid))
                elif isinstance(op, SetPmr):
                    pmrs.add(op.value & 0xF8)
                elif isinstance(op, SetGroupEnable):
                    enables += 1
                elif isinstance(op, ItsCommand) and op.cmd not in STEADY_ITS:
                    self.lpis_volatile = True
                elif hasattr(op, "action"):  # a GUEST_SYNC host action
                    self._host_action(op.action)
            if len(pmrs) == 1 and enables <= 1:
                self.pmr[vid] = pmrs.pop()
            else:
                self.skip_vcpus.add(vid)
        for (key, reg), n in writes.items():
            if reg in ONCE_REGS and n > 1:
                self.volatile.add(key)
        for irq in irqs:
            key = _key(irq.vcpu or 0, irq.intid)
            if irq.trigger == "level" or irq.hw is not None or irq.enabled is False:
                self.volatile.add(key)
            if irq.priority is not None and key not in self.priority:
                self.priority[key] = irq.priority & 0xF8
        for step in host:
            self._host_action(getattr(step, "action", step))

    def _host_action(self, action: Any) -> None:
        """The VMM's actions: an edge (KVM_IRQ_LINE 1 then 0) or an ISPENDR write makes an
        interrupt pending as a guest write would; anything else on an INTID is volatile."""
        name = type(action).__name__
        for field in ("intid", "vintid"):
            intid = getattr(action, field, None)
            if intid is not None and name not in ("InjectEdge", "WriteIspendr"):
                self.volatile.add(_key(getattr(action, "vcpu", 0) or 0, intid))

    def event(self, event: AnyEvent) -> None:
        """The event sink."""
        self.seq += 1
        if isinstance(event, IrqQueued):
            key = _key(event.vcpu, event.intid)
            if not self.held[key]:
                self.pending.setdefault(key, (event.vcpu, self.seq))
        elif isinstance(event, IrqPruned):
            key = _key(event.vcpu, event.intid)
            if event.to < 0:
                self.pending.pop(key, None)
            elif key in self.pending:
                self.pending[key] = (event.to, self.seq)
        elif isinstance(event, HcrConfigured):
            self.entry[event.vcpu] = self.seq
        elif isinstance(event, GuestAcked):
            key = _key(event.vcpu, event.intid)
            if self.first is None:
                self._judge(event.vcpu, key, event.step)
            self.pending.pop(key, None)
            self.held[key] += 1
        elif isinstance(event, GuestEoied | GuestDeactivated):
            key = _key(event.vcpu, event.intid)
            if (not isinstance(event, GuestEoied) or event.deactivates) and self.held[key]:
                self.held[key] -= 1

    def _judge(self, vcpu: int, key: Key, step: int) -> None:
        prio = self.priority.get(key)
        entry = self.entry.get(vcpu)
        if (prio is None or entry is None or self._volatile(key)
                or vcpu in self.skip_vcpus):
            return
        self.acks_judged += 1
        pmr = self.pmr[vcpu]
        for other, (owner, since) in self.pending.items():
            theirs = self.priority.get(other)
            if (other == key or owner != vcpu or since > entry or self._volatile(other)
                    or theirs is None or theirs >= prio or theirs >= pmr or self.held[other]):
                continue
            self.first = Violation(
                invariant="ack-priority", kind=INVARIANTS["ack-priority"].kind,
                message=f"vcpu{vcpu} acknowledged INTID {key[1]} (priority {prio:#x}) at step "
                f"{step} while INTID {other[1]} (priority {theirs:#x}), pending for it since "
                "before its last entry, was not taken")
            return

    def _volatile(self, key: Key) -> bool:
        return key in self.volatile or (self.lpis_volatile and key[1] >= 8192)

    def violations(self) -> list[Violation]:
        """The first wrong-priority acknowledge (the rest follow from it)."""
        return [self.first] if self.first is not None else []
