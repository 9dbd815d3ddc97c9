"""Events in words: one short phrase per event, and the lane (CPU column) it belongs to.

Shared by every human-facing view (``filter --pretty``, the timeline, one
interrupt's life, ``check``'s context, ``diff``, the HTML report). A new event
kind gets its phrase here; an unknown one falls back to its fields.
"""

from __future__ import annotations

import re

import msgspec

from vgic_actors.events import (
    ActiveChanged,
    ActorBlocked,
    ActorStepped,
    AnyEvent,
    CellAccessed,
    DirEmulated,
    EntryAborted,
    EoicountReplayed,
    GuestAcked,
    GuestDeactivated,
    GuestEntered,
    GuestEoied,
    GuestExited,
    HcrConfigured,
    IpisHandled,
    IrqfdResampled,
    IrqPruned,
    IrqQueued,
    KickSent,
    LockAcquired,
    LockReleased,
    LrFolded,
    MessageDelivered,
    MessageSent,
    ModeChanged,
    RequestChecked,
    RequestMade,
    RunEnded,
    RunStarted,
    VcpuWoken,
)
from vgic_actors.kvm import vm as _vm  # noqa: F401  (registers the request names)
from vgic_actors.runtime import KVM_REQUEST_MASK, REQUEST_NAMES

_CPU_ACTOR = re.compile(r"^p?cpu(\d+)(?:\..*)?$")
_MODES = {0: "OUTSIDE", 1: "IN_GUEST", 2: "EXITING", 3: "READING_SHADOW"}


def request_name(req: int, name: str = "") -> str:
    """A vcpu->requests bit under the kernel's name (kvm_host.h): ``KVM_REQ_IRQ_PENDING``.
    ``name`` is the event's own ``req_name`` (logs written before it existed have none:
    the model's table names the number); a number nobody names stays ``request N``."""
    return name or REQUEST_NAMES.get(req & KVM_REQUEST_MASK, f"request {req}")


def lane_of(actor: str) -> str:
    """The column an actor's events go in: ``pcpuN`` for a CPU and its mailboxes
    (``pcpu1.reply``, ``cpu1.ipi``, ``cpu1.gic``), ``distributor``, else the actor."""
    m = _CPU_ACTOR.match(actor)
    if m:
        return f"pcpu{m.group(1)}"
    return actor


def lane_order(lane: str) -> tuple[int, int, str]:
    """Sort key for lanes: pCPUs by number, then the distributor, then the rest."""
    m = _CPU_ACTOR.match(lane)
    if m:
        return (0, int(m.group(1)), lane)
    if lane == "distributor":
        return (1, 0, lane)
    return (2, 0, lane)


def _fields(event: AnyEvent) -> str:
    skip = {"step", "vt", "actor"}
    raw = msgspec.structs.asdict(event)
    return " ".join(f"{k}={v}" for k, v in raw.items() if k not in skip)


def describe(event: AnyEvent) -> str:
    """A short phrase in kernel terms (``IrqQueued`` -> 'queue INTID 32 on vcpu0 ap_list')."""
    match event:
        case IrqQueued(intid=i, vcpu=v, bcst=b):
            return f"queue INTID {i} on vcpu{v} ap_list" + (" (0->1: broadcast)" if b else "")
        case IrqPruned(intid=i, vcpu=v, to=t):
            return (f"prune INTID {i} off vcpu{v} ap_list" if t < 0
                    else f"migrate INTID {i} vcpu{v} -> vcpu{t} ap_list")
        case HcrConfigured(vcpu=v, lrs=lrs, tdir=t, active_spis=n):
            bits = " ".join(b for b, on in (
                ("TDIR", t), ("NPIE", event.npie), ("LRENPIE", event.lrenpie),
                ("UIE", event.uie), ("VGrp0EIE", event.vgrp0eie), ("VGrp0DIE", event.vgrp0die),
                ("VGrp1EIE", event.vgrp1eie), ("VGrp1DIE", event.vgrp1die)) if on)
            return f"flush vcpu{v}: LRs {lrs} HCR[{bits or '-'}] active_spis={n}"
        case LrFolded(intid=i, vcpu=v, state=st, deactivated=d, pseudo=p):
            return (f"fold vcpu{v} {'pseudo-' if p else ''}LR INTID {i}: {st}"
                    + (" (deactivated)" if d else ""))
        case EoicountReplayed(intid=i, vcpu=v):
            return f"EOIcount replay vcpu{v} deactivates INTID {i}"
        case DirEmulated(intid=i, vcpu=v, outcome=o, owner=w):
            return f"emulate DIR INTID {i} from vcpu{v}: {o}" + (f" (owner vcpu{w})" if w >= 0
                                                                   else "")
        case ActiveChanged(intid=i, active=a, halted=h):
            return f"{'set' if a else 'clear'} active INTID {i}" + (" (guest halted)" if h else "")
        case GuestAcked(intid=i, vcpu=v):
            return f"vcpu{v} IAR -> INTID {i}"
        case GuestEoied(intid=i, vcpu=v, deactivates=d, trapped=t):
            return (f"vcpu{v} EOIR INTID {i}: {'drop + deactivate' if d else 'priority drop'}"
                    + (" (trapped)" if t else ""))
        case GuestDeactivated(intid=i, vcpu=v, how=h, trapped=t):
            name = "DIR" if h == "dir" else "ICACTIVER" if h == "icactiver" else h
            return f"vcpu{v} {name} INTID {i} ({'trapped' if t else 'not trapped'})"
        case IrqfdResampled(gsi=g):
            return f"irqfd resample GSI {g}: line lowered, resamplefd signalled"
        case GuestEntered(vcpu=v):
            return f"enter guest vcpu{v}"
        case GuestExited(vcpu=v, reason=r, instructions=n):
            return f"exit vcpu{v}: {r} after {n} instr"
        case EntryAborted(vcpu=v):
            return f"entry aborted vcpu{v} (request pending)"
        case KickSent(vcpu=v, how=h, req=r, req_name=n):
            return f"kick vcpu{v}: {h}" + (f" ({request_name(r, n)})" if r >= 0 else "")
        case MessageSent(msg=m, kind=k, dst=d):
            return f"send #{m} {k} -> {d}"
        case MessageDelivered(msg=m, kind=k, src=s):
            return f"recv #{m} {k} from {s}"
        case CellAccessed(cell=c, op=o, old=a, new=b):
            return f"{c} {o} {a}" + (f" -> {b}" if a != b else "")
        case RequestMade(vcpu=v, req=r, req_name=n):
            return f"make request {request_name(r, n)} vcpu{v}"
        case RequestChecked(vcpu=v, req=r, found=f, req_name=n):
            return f"check request {request_name(r, n)} vcpu{v}: {'set' if f else 'clear'}"
        case ModeChanged(vcpu=v, old=a, new=b, op=o):
            return f"vcpu{v} mode {_MODES.get(a, a)} -> {_MODES.get(b, b)} ({o})"
        case VcpuWoken(vcpu=v):
            return f"wake vcpu{v}"
        case IpisHandled(cpu=c, count=n):
            return f"cpu{c} takes {n} IPI(s)"
        case LockAcquired(lock=lk, contended=c):
            return f"lock {lk}" + (" (contended)" if c else "")
        case LockReleased(lock=lk, to=t):
            return f"unlock {lk}" + (f" -> {t}" if t else "")
        case ActorStepped(label=lb, choice=c, of=n):
            return f"step {lb}" + (f" [{c}/{n}]" if n > 1 else "")
        case ActorBlocked(on=o, idle=i):
            return f"block on {o}" + (" (idle)" if i else "")
        case RunStarted():
            return (f"run {event.scenario or '?'} variant {event.variant or '?'} "
                    f"seed {event.seed} {event.strategy}")
        case RunEnded(outcome=o, choices=c):
            return f"run ended: {o} ({c} choices)"
    return f"{type(event).__name__} {_fields(event)}".rstrip()


def kind(event: AnyEvent) -> str:
    """The event's tag (its class name)."""
    return type(event).__name__


def row(number: int, event: AnyEvent) -> str:
    """One table row: line, step, vt, actor, kind, phrase."""
    return (f"{number:>7} {event.step:>7} {event.vt:>7}  {event.actor:<14} {kind(event):<17} "
            f"{describe(event)}")


ROW_HEADER = f"{'line':>7} {'step':>7} {'vt':>7}  {'actor':<14} {'kind':<17} what"
"""The header line matching `row`."""
