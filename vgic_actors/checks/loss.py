"""Where a lost deactivation was lost: the root cause in its signature.

A guest deactivation is lost in two steps. KVM applies it to its copy of the state (the
*clear*: vgic_mmio_change_active's ``irq->active = false`` under the halt, the ICACTIVER
big hammer of vgic_v3_deactivate, or the fold of its pseudo-LR), and then something puts
the Active state back (the *undo*: the owner's vgic_v3_fold_lr writes ``irq->active``
from an LR that still holds it, vgic-v3.c at 1c3b3cadcd69). Or the deactivation never
reaches KVM at all: an untrapped ICV_DIR_EL1 only bumps the vCPU's EOIcount, and no LR of
that vCPU holds the interrupt (the undo is the guest's own instruction), or a trapped DIR
reaches vgic_v3_deactivate and is dropped there (a branch that clears nothing: the undo is
the emulation).

`LossTracker` is a kernel-event sink that records, for every interrupt the guest
deactivates, the clear and the undo that followed it, and the kernel function each CPU
(`checks/frames.py`) was in at both moments. `site` gives the stable part, the key's
root-cause component: ``undo:FN<-CALLER,clear:FN<-CALLER`` (the undoing CPU's chain at
the undo, the deactivating CPU's at the clear), e.g. F1
``undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,clear:vgic_mmio_change_active<-vgic_v3_deactivate``
and F2 ``...,clear:vgic_v3_fold_lr<-vgic_v3_deactivate``. What the *other* CPUs were
doing at those moments varies from one schedule to the next (the owner may be in its
flush or already in the guest when the clear lands), so it goes into the violation's
message (`describe`), not into the key: one bug reached from two scenarios stays one
finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vgic_actors.checks.frames import cpu_chains, render
from vgic_actors.events import (
    ActiveChanged,
    AnyEvent,
    DirEmulated,
    GuestAcked,
    GuestDeactivated,
    GuestEoied,
    LrFolded,
)

KERNEL_NAMES = {
    "vgic_fold_lr": "vgic_v3_fold_lr",
    "vgic_fold_lr_state": "vgic_v3_fold_lr_state",
    "vgic_v3_deactivate": "vgic_v3_deactivate",  # vgic_v2_deactivate on a GICv2 host
}
"""Model functions that serve both GIC versions, by their GICv3 kernel name (a GICv2 host
swaps v3 for v2: `LossTracker.host_v2`)."""

GUEST_INSN = {"dir": "ICV_DIR_EL1", "eoir": "ICV_EOIR1_EL1", "icactiver": "GICD_ICACTIVER"}
"""The guest's own access, the undo when nothing in KVM ever applied the deactivation."""


Key = tuple[int | None, int]
"""(vCPU for an SGI/PPI else None, INTID), as guest/ledger.py's IrqKey."""


def _key(vcpu: int | None, intid: int) -> Key:
    return (vcpu if intid < 32 else None, intid)


@dataclass
class Moment:
    """One kernel event of a loss: the CPU it ran on and every CPU's kernel chain."""

    step: int
    actor: str
    chains: dict[str, list[str]]


@dataclass
class Loss:
    """The last deactivation of one interrupt and what followed it."""

    how: str
    step: int
    actor: str
    clear: Moment | None = None
    undo: Moment | None = None
    dropped: Moment | None = None  # a trapped DIR whose emulation cleared nothing


class LossTracker:
    """A kernel-event sink; `sched` is set once the VM exists (scenario/runner.py)."""

    def __init__(self, host_v2: bool = False) -> None:
        self.sched: Any = None
        self.host_v2 = host_v2
        self.losses: dict[Key, Loss] = {}
        self.clears: dict[Key, Moment] = {}  # the last clear of each since its last ack

    def _moment(self, event: AnyEvent) -> Moment:
        chains = cpu_chains(self.sched) if self.sched is not None else {}
        return Moment(step=event.step, actor=event.actor, chains=chains)

    def event(self, event: AnyEvent) -> None:
        """The event sink."""
        if isinstance(event, GuestAcked):
            key = _key(event.vcpu, event.intid)
            self.clears.pop(key, None)
            self.losses.pop(key, None)
        elif isinstance(event, GuestDeactivated) or (isinstance(event, GuestEoied)
                                                     and event.deactivates):
            key = _key(event.vcpu, event.intid)
            how = event.how if isinstance(event, GuestDeactivated) else "eoir"
            new = Loss(how=how, step=event.step, actor=event.actor)
            if how == "icactiver":  # emitted when the write completes: its clear came first
                new.clear = self.clears.get(key)
            self.losses[key] = new
        elif isinstance(event, DirEmulated):
            loss = self.losses.get(_key(event.vcpu, event.intid))
            if loss is not None and loss.how == "dir" and loss.clear is None:
                loss.dropped = self._moment(event)
        elif isinstance(event, ActiveChanged) and not event.active:
            # no vCPU in the event: a private INTID clears every vCPU's copy we track
            for key in [k for k in self.losses.keys() | self.clears.keys()
                        if k[1] == event.intid] or [(None, event.intid)]:
                self._cleared(key, event)
        elif isinstance(event, LrFolded):
            key = _key(event.vcpu, event.intid)
            if event.pseudo and event.deactivated:
                self._cleared(key, event)
            elif event.state in ("ACTIVE", "PENDING_ACTIVE"):
                loss = self.losses.get(key)
                if loss is not None and loss.undo is None and (
                        loss.clear is not None or loss.how != "dir"):
                    loss.undo = self._moment(event)

    def _cleared(self, key: Key, event: AnyEvent) -> None:
        moment = self._moment(event)
        self.clears[key] = moment
        loss = self.losses.get(key)
        if loss is not None:
            loss.clear, loss.undo = moment, None

    def _name(self, fn: str) -> str:
        name = KERNEL_NAMES.get(fn, fn)
        return name.replace("vgic_v3_", "vgic_v2_") if self.host_v2 and fn in KERNEL_NAMES \
            else name

    def _chain(self, moment: Moment, actor: str) -> str:
        return render([self._name(f) for f in moment.chains.get(actor, [])]) or "run-loop"

    def site(self, vcpu: int | None, intid: int) -> str:
        """The root-cause component of a lost deactivation's signature ("" if unknown);
        ``vcpu`` names a private interrupt's copy."""
        loss = self.losses.get(_key(vcpu, intid))
        if loss is None:
            return ""
        if loss.undo is not None:
            undo = self._chain(loss.undo, loss.undo.actor)
        elif loss.clear is None and loss.dropped is not None:
            undo = self._chain(loss.dropped, loss.dropped.actor)
        else:
            undo = GUEST_INSN.get(loss.how, loss.how)
        text = f"undo:{undo}"
        if loss.clear is not None:
            text += f",clear:{self._chain(loss.clear, loss.clear.actor)}"
        return text

    def describe(self, vcpu: int | None, intid: int) -> str:
        """Every CPU's kernel function at the clear and at the undo, for the message."""
        loss = self.losses.get(_key(vcpu, intid))
        if loss is None:
            return ""
        parts = []
        for what, moment in (("emulated", loss.dropped), ("cleared", loss.clear),
                             ("undone", loss.undo)):
            if moment is None:
                continue
            cpus = ", ".join(f"{name} in {self._chain(moment, name)}"
                             for name in sorted(moment.chains) if moment.chains[name])
            parts.append(f"{what} at step {moment.step} by {moment.actor} ({cpus})")
        return "; ".join(parts)
