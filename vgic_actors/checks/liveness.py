"""Hot/cold liveness monitors, as Coyote's (P#): each is *hot* while something is owed and
*cold* once it is paid; a run that ends (quiet, deadlocked, out of budget) with one hot
breaks it, and the violation says how long it had been hot in virtual time.

- ``stuck-active``: the guest deactivated an interrupt, and it is still Active in the
  distributor (KVM's copy or a List Register) after every vCPU has been through the kernel
  since (each re-entered, or sits outside the guest with its LRs folded). Judged only
  when the run did not end quiet: a quiet end is `deactivation-lost`'s (checks/final.py).
  Legal latency: an untrapped EOI or an EOIcount deactivation reaches KVM's copy only at
  the owner's next exit (vgic_v3_fold_lr_state), and a trapped DIR only once its
  emulation has run; both are covered by the "every vCPU has been through" rule.
- ``undelivered``: an interrupt is pending and deliverable to a vCPU whose guest waits for
  one (an ``Ack``/``IarSpin`` poll, or a WFI with its handler unmasked) and it is never
  taken. Deliverable means what the architecture needs for the CPU interface to signal
  it (gic-arch.md 3): enabled, not active, its group enabled and waited for, priority below
  the PMR, nothing active on that vCPU (idle running priority: no priority-drop or
  binary-point question arises), the distributor enabled, and the highest-priority such
  interrupt of either group (the HPPVI: a higher Group-0 one signals vFIQ, and a guest
  polling Group 1 waits on); HW-mapped interrupts are not judged (their pending state is
  the physical line). Legal latency: an interrupt made
  pending while the vCPU runs may be unseen until the next exit, so a run cut short is
  judged only when the vCPU has entered the guest twice since it was queued (a full
  guest slice with it in the LRs); a quiet or deadlocked end is always judged (the vCPU
  sleeps, and kvm_vgic_vcpu_pending_irq would have woken it). Equal priorities: which
  one the CPU interface signals is IMPLEMENTATION DEFINED, so a run cut short while the
  guest keeps taking one of them (a level line never lowered: F3's storm) judges none.
- ``level-unacked``: the same for a level interrupt whose line is held high: while the
  device holds the line, the interrupt enabled and the guest idle and polling, it must
  be acknowledged before the run ends.
- ``mi-storm``: a vCPU took `MI_STORM` maintenance-interrupt exits in a row with no guest
  operation completing in between (vgic_v3_configure_hcr enabling an MI whose condition
  holds at entry: each entry exits at once).

Kernel functions named here are read at 1c3b3cadcd69 (vgic.c: vgic_flush_lr_state,
kvm_vgic_vcpu_pending_irq; vgic-v3.c: vgic_v3_fold_lr_state, vgic_v3_configure_hcr).
`LivenessMonitors` is a kernel-event sink (scenario/runner.py wires it beside the step
monitor); `violations` judges the end of the run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from vgic_actors.arch.priority import IDLE_PRIORITY
from vgic_actors.checks.catalogue import INVARIANTS
from vgic_actors.checks.final import all_irqs, irq_name, is_active
from vgic_actors.checks.loss import LossTracker
from vgic_actors.checks.violation import Violation
from vgic_actors.events import (
    AnyEvent,
    GuestAcked,
    GuestDeactivated,
    GuestEoied,
    GuestExited,
    HcrConfigured,
    IrqPruned,
    IrqQueued,
)
from vgic_actors.guest.cpuif_ops import Wfi, WfiUntil
from vgic_actors.guest.ledger import GuestLedger, irq_key
from vgic_actors.guest.program import Ack, guest_group
from vgic_actors.guest.sysreg import IarSpin
from vgic_actors.kvm.irq import IrqConfig, VgicIrq, irq_is_pending
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import Outcome

MI_STORM = 32
"""Maintenance-interrupt exits of one vCPU in a row, with no guest operation completing,
that make a storm (a guest slice is a few instructions: 32 MIs with nothing done is no
latency but an MI whose condition KVM cannot clear)."""

SETTLE_ENTRIES = 2
"""Guest entries of a vCPU after an interrupt was queued for it before a run cut short
judges it undelivered (the first may have raced the queueing: the next exit is the
architecture's bound; the second entry had it in the LRs for a whole slice)."""

Key = tuple[int | None, int]


@dataclass
class _Streak:
    """Maintenance-interrupt exits of one vCPU since its guest last progressed."""

    count: int = 0
    since_vt: int = 0
    progress: int = -1  # the guest's last_progress when the streak started


class LivenessMonitors:
    """The hot/cold monitors of the module docstring, fed by kernel events."""

    def __init__(self, guests: Sequence[Any]) -> None:
        self.guests = guests
        self.entries: Counter[int] = Counter()  # guest entries (HcrConfigured) per vCPU
        self.queued: dict[tuple[int, int], tuple[int, int]] = {}  # (vcpu, intid) -> (entries, vt)
        self.deactivated: dict[Key, tuple[int, tuple[int, ...]]] = {}  # vt, entries per vCPU
        self.streaks: dict[int, _Streak] = {}
        self.vt = 0

    def event(self, event: AnyEvent) -> None:
        """The event sink."""
        self.vt = event.vt
        if isinstance(event, HcrConfigured):
            self.entries[event.vcpu] += 1
        elif isinstance(event, IrqQueued):
            self.queued[(event.vcpu, event.intid)] = (self.entries[event.vcpu], event.vt)
        elif isinstance(event, IrqPruned) and event.to >= 0:
            self.queued[(event.to, event.intid)] = (self.entries[event.to], event.vt)
        elif isinstance(event, GuestDeactivated) or (isinstance(event, GuestEoied)
                                                     and event.deactivates):
            snapshot = tuple(self.entries[v] for v in range(len(self.guests)))
            self.deactivated[irq_key(event.vcpu, event.intid)] = (event.vt, snapshot)
        elif isinstance(event, GuestAcked):
            self.queued.pop((event.vcpu, event.intid), None)
        elif isinstance(event, GuestExited) and event.reason == "maintenance":
            self._maintenance(event)

    def _maintenance(self, event: GuestExited) -> None:
        progress = self.guests[event.vcpu].last_progress
        streak = self.streaks.get(event.vcpu)
        if streak is None or streak.progress != progress:
            streak = self.streaks[event.vcpu] = _Streak(since_vt=event.vt, progress=progress)
        streak.count += 1

    def violations(self, kvm: Kvm, ledger: GuestLedger, outcome: Outcome,
                   end_vt: int, loss: LossTracker | None = None) -> list[Violation]:
        """Every monitor still hot at the end of the run (``loss`` names where a stuck
        deactivation was lost, as for deactivation-lost)."""
        self.vt = max(self.vt, end_vt)
        out: list[Violation] = []
        if outcome is not Outcome.QUIESCENT:
            out += self._stuck_active(kvm, ledger, loss)
        out += self._undelivered(kvm, outcome)
        out += self._storms()
        return out

    def _hot(self, name: str, since: int | None, text: str) -> Violation:
        hot = (f"hot for {self.vt - since} vt (since vt {since})" if since is not None
               else f"hot since before vt {self.vt}")
        return Violation(invariant=name, kind=INVARIANTS[name].kind, message=f"{text}; {hot}")

    def _settled(self, kvm: Kvm, entries: tuple[int, ...]) -> bool:
        """Every vCPU has been through the kernel since ``entries``: re-entered, or holds no
        loaded LRs (folded, or entered with none)."""
        return all(self.entries[v.vcpu_id] > entries[v.vcpu_id]
                   or v.used_lrs == 0
                   for v in kvm.vcpus if v.vcpu_id < len(entries))

    def _stuck_active(self, kvm: Kvm, ledger: GuestLedger,
                      loss: LossTracker | None) -> list[Violation]:
        out = []
        for irq in all_irqs(kvm):
            owner = irq.target_vcpu if irq.is_private else 0
            key = irq_key(owner if owner is not None else 0, irq.intid)
            seen = self.deactivated.get(key)
            if (seen is None or ledger.held[key] > 0 or not is_active(kvm, irq)
                    or not self._settled(kvm, seen[1])):
                continue
            hot = self._hot("stuck-active", seen[0],
                            f"{irq_name(irq)} is still Active after its last "
                            f"deactivation ({ledger.last_deactivation.get(key, '?')}) "
                            "and every vCPU has been through the kernel since")
            out.append(msgspec.structs.replace(
                hot, how=ledger.last_kind.get(key, ""), outcome=ledger.last_outcome.get(key, ""),
                where="in-lr" if irq.on_lr else "on-ap-list" if irq.vcpu is not None
                else "off-ap-list", site=loss.site(key[0], irq.intid) if loss else ""))
        return out

    def _undelivered(self, kvm: Kvm, outcome: Outcome) -> list[Violation]:
        out = []
        settled_end = outcome in (Outcome.QUIESCENT, Outcome.DEADLOCK)
        for vcpu in kvm.vcpus:
            group = self._waiting_group(vcpu.vcpu_id, vcpu)
            if group is None:
                continue
            # the highest-priority pending interrupt of either enabled group (HPPVI): one of
            # the other group masks the one waited for (it signals vFIQ instead of vIRQ)
            ready = [irq for irq in all_irqs(kvm) if self._signallable(kvm, vcpu, irq)]
            best = min(ready, key=lambda irq: (irq.priority, irq.intid), default=None)
            if best is None or best.hw or best.group != group:
                continue
            # Among equal priorities the choice is IMPLEMENTATION DEFINED (gic-arch.md 3),
            # so one taken again and again may starve the rest: a run cut short is judged
            # only when every tied one has waited its settle entries unacknowledged.
            tied = [irq for irq in ready if irq.priority == best.priority]
            if not settled_end and not all(self._unserved(vcpu.vcpu_id, irq.intid)
                                           for irq in tied):
                continue
            queued = self.queued.get((vcpu.vcpu_id, best.intid))
            level = best.config is IrqConfig.LEVEL and best.line_level
            name = "level-unacked" if level else "undelivered"
            what = "its line held high" if level else "pending"
            out.append(self._hot(name, queued[1] if queued else None,
                                 f"{irq_name(best)} is {what} and deliverable to vcpu"
                                 f"{vcpu.vcpu_id} (enabled, priority {best.priority:#x} "
                                 f"below PMR {vcpu.cpuif.state.vmcr.vpmr:#x}, nothing "
                                 "active), whose guest waits for an interrupt, and was "
                                 "never acknowledged"))
        return out

    def _unserved(self, vid: int, intid: int) -> bool:
        """Queued for vCPU ``vid`` and not acknowledged since, over `SETTLE_ENTRIES` guest
        entries (not queued since its last acknowledgement: the guest is taking it)."""
        queued = self.queued.get((vid, intid))
        return queued is not None and self.entries[vid] >= queued[0] + SETTLE_ENTRIES

    def _waiting_group(self, vid: int, vcpu: Any) -> int | None:
        """The interrupt group vCPU ``vid``'s guest is waiting for, or None when it is not
        idle and polling (running, masked in a WFI, holding an active interrupt, done)."""
        if vid >= len(self.guests):
            return None
        prog = self.guests[vid]
        if prog.done or prog.pc >= len(prog.ops):
            return None
        op = prog.ops[prog.pc]
        cpuif = vcpu.cpuif
        if isinstance(op, Ack):
            group = guest_group(cpuif) if op.group is None else op.group
        elif isinstance(op, IarSpin):
            group = op.group
        elif isinstance(op, Wfi | WfiUntil) and prog.handler is not None and not prog.masked:
            group = guest_group(cpuif)
        else:
            return None
        return group if cpuif.running_priority() == IDLE_PRIORITY else None

    @staticmethod
    def _signallable(kvm: Kvm, vcpu: Any, irq: VgicIrq) -> bool:
        """Pending for ``vcpu`` as the CPU interface could signal it: enabled, not active,
        its group enabled, below the PMR (HW-mapped ones too: they may mask others)."""
        vmcr = vcpu.cpuif.state.vmcr
        return (irq.target_vcpu == vcpu.vcpu_id and irq.enabled and irq_is_pending(irq)
                and not irq.active and kvm.dist.enabled
                and (vmcr.veng1 if irq.group else vmcr.veng0) and irq.priority < vmcr.vpmr)

    def _storms(self) -> list[Violation]:
        out = []
        for vid, streak in sorted(self.streaks.items()):
            if streak.count >= MI_STORM and self.guests[vid].last_progress == streak.progress:
                out.append(self._hot("mi-storm", streak.since_vt,
                                     f"vcpu{vid} took {streak.count} maintenance-interrupt "
                                     "exits with no guest operation completing"))
        return out
