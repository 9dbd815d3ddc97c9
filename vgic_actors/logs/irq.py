"""``logs irq INTID``: one interrupt's life across the CPUs.

Every event naming the INTID (queueing and on which ap_list, LR placements from
``HcrConfigured``, folds, the guest's acknowledges, priority drops and
deactivations with the vCPU and whether they trapped, DIR emulation, active
changes, prunes), plus what it caused: the ``active_spis`` change its queueing or
fold made (the same actor's counter access next to it) and the kicks, IPIs and
broadcast legs its queueing, DIR emulation or active change sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from vgic_actors.events import (
    ActiveChanged,
    ActorBlocked,
    AnyEvent,
    CellAccessed,
    DirEmulated,
    GuestAcked,
    GuestDeactivated,
    GuestEntered,
    GuestEoied,
    HcrConfigured,
    IrqQueued,
    KickSent,
    LrFolded,
    MessageSent,
)
from vgic_actors.logs.check import ACTIVE_SPIS, SPI_MIN
from vgic_actors.logs.describe import describe, lane_of
from vgic_actors.logs.reader import LogReader

_CAUSES = (IrqQueued, DirEmulated, ActiveChanged, LrFolded)
"""Kernel steps whose counter changes and kicks right after belong to the interrupt."""


class LifeEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the life: where in the log, who, what; ``caused``: attributed, not named."""

    line: int
    step: int
    vt: int
    actor: str
    kind: str
    what: str
    caused: bool = False


class IrqSummary(msgspec.Struct, kw_only=True):
    """Counts over the life."""

    queued: dict[str, int] = msgspec.field(default_factory=dict)
    lr_placements: dict[str, int] = msgspec.field(default_factory=dict)
    acks: dict[str, int] = msgspec.field(default_factory=dict)
    priority_drops: dict[str, int] = msgspec.field(default_factory=dict)
    deactivations: dict[str, int] = msgspec.field(default_factory=dict)
    dir_emulated: dict[str, int] = msgspec.field(default_factory=dict)
    active_spis_changes: int = 0
    kicks: int = 0


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1


def _names(event: AnyEvent, intid: int, vcpu: int | None) -> bool:
    if isinstance(event, HcrConfigured):
        return intid in event.lrs and (vcpu is None or intid >= SPI_MIN or event.vcpu == vcpu)
    if getattr(event, "intid", None) != intid:
        return False
    if vcpu is None or intid >= SPI_MIN:
        return True
    return getattr(event, "vcpu", vcpu) == vcpu


def life(reader: LogReader, intid: int, *, vcpu: int | None = None,
         summary: IrqSummary | None = None) -> Iterator[LifeEntry]:
    """The rows of ``intid``'s life (``vcpu``: that vCPU's copy of an SGI/PPI)."""
    needle = b"%d" % intid
    cause: dict[str, bool] = {}      # actor -> its recent work was about this INTID
    pending: dict[str, tuple[int, AnyEvent]] = {}  # actor -> active_spis change not yet placed
    sm = summary if summary is not None else IrqSummary()

    def entry(number: int, event: AnyEvent, caused: bool = False) -> LifeEntry:
        return LifeEntry(line=number, step=event.step, vt=event.vt, actor=event.actor,
                         kind=type(event).__name__, what=describe(event), caused=caused)

    def keep(line: bytes) -> bool:
        return needle in line or b"Kick" in line or b"active_spis" in line \
            or b"MessageSent" in line or b"GuestEntered" in line or b"ActorBlocked" in line

    for number, _line, event in reader.events(keep):
        actor = event.actor
        if _names(event, intid, vcpu):
            held = pending.pop(actor, None)
            if held is not None and isinstance(event, IrqQueued):
                sm.active_spis_changes += 1
                yield entry(held[0], held[1], caused=True)
            _tally(sm, event)
            yield entry(number, event)
            cause[actor] = isinstance(event, _CAUSES)
            continue
        if isinstance(event, CellAccessed):
            if event.cell == ACTIVE_SPIS and event.old != event.new:
                if cause.get(actor):
                    sm.active_spis_changes += 1
                    yield entry(number, event, caused=True)
                else:
                    pending[actor] = (number, event)
            continue
        if isinstance(event, KickSent | MessageSent) and cause.get(actor):
            if isinstance(event, MessageSent) and event.kind != "ipi":
                cause[actor] = False
                continue
            sm.kicks += isinstance(event, KickSent)
            yield entry(number, event, caused=True)
            continue
        if isinstance(event, GuestEntered | ActorBlocked) or getattr(event, "intid", None) \
                is not None:
            cause.pop(actor, None)
            pending.pop(actor, None)


def _tally(sm: IrqSummary, event: AnyEvent) -> None:
    match event:
        case IrqQueued(vcpu=v):
            _bump(sm.queued, f"vcpu{v}")
        case HcrConfigured(vcpu=v):
            _bump(sm.lr_placements, f"vcpu{v}")
        case GuestAcked(vcpu=v):
            _bump(sm.acks, f"vcpu{v}")
        case GuestEoied(vcpu=v, deactivates=d, trapped=t):
            _bump(sm.priority_drops, f"vcpu{v}")
            if d:
                _bump(sm.deactivations, f"vcpu{v} EOIR {'trapped' if t else 'not trapped'}")
        case GuestDeactivated(vcpu=v, how=h, trapped=t):
            name = "DIR" if h == "dir" else "ICACTIVER" if h == "icactiver" else h
            _bump(sm.deactivations, f"vcpu{v} {name} {'trapped' if t else 'not trapped'}")
        case DirEmulated(outcome=o):
            _bump(sm.dir_emulated, o)


def render(reader: LogReader, intid: int, *, vcpu: int | None = None) -> str:
    """The life as a table and a summary."""
    sm = IrqSummary()
    rows = [f"{e.line:>7} {e.step:>7} {e.vt:>7}  {lane_of(e.actor):<12} "
            f"{'  ~ ' if e.caused else ''}{e.what}"
            for e in life(reader, intid, vcpu=vcpu, summary=sm)]
    who = f"INTID {intid}" + (f" on vcpu{vcpu}" if vcpu is not None and intid < SPI_MIN else "")
    if not rows:
        return f"{reader.file}: no event names {who}"

    def fmt(counts: dict[str, int]) -> str:
        return ", ".join(f"{k} x{n}" for k, n in counts.items()) or "none"

    out = [f"{reader.file}: the life of {who} ('~': caused by it, not naming it)",
           f"{'line':>7} {'step':>7} {'vt':>7}  {'cpu':<12} what", *rows, "",
           f"queued on: {fmt(sm.queued)}; LR placements: {fmt(sm.lr_placements)}",
           f"acks: {fmt(sm.acks)}; priority drops: {fmt(sm.priority_drops)}",
           f"deactivations: {fmt(sm.deactivations)}; DIR emulated: {fmt(sm.dir_emulated)}",
           f"active_spis changes: {sm.active_spis_changes}; kicks it caused: {sm.kicks}"]
    return "\n".join(out)
