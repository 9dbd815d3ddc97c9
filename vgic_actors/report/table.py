"""The interleaving table: the steps of a run that matter, one column per CPU.

From a run's events, `interleaving` keeps those that touch the studied interrupt's
state (queue, flush into an LR, fold, the guest's IAR/EOIR/DIR, vgic_v3_deactivate,
vgic_mmio_change_active, prune) and, between the guest's deactivation and the step
where it is lost, the kicks, requests, mode changes and entries/exits around them.
Each row names the kernel function and the state it reads or writes (irq->active,
on_lr, vcpu->mode, LR state, active_spis, TDIR). `mark_loss` finds the step where
the guest's deactivation (or, for F3/F4-like findings, the resampler's notification
or the legal broadcast context) is lost; the table is cut to at most `MAX_ROWS` rows
around it.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from vgic_actors.events import (
    ActiveChanged,
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
    IrqPruned,
    IrqQueued,
    KickSent,
    LockAcquired,
    LockReleased,
    LrFolded,
    MessageDelivered,
    MessageSent,
    ModeChanged,
    RequestMade,
)
from vgic_actors.kvm.vm import KVM_REQ_SLEEP
from vgic_actors.logs.describe import lane_of, lane_order, request_name
from vgic_actors.runtime import KVM_REQUEST_MASK

MAX_ROWS = 25
MODES = {0: "OUTSIDE_GUEST_MODE", 1: "IN_GUEST_MODE", 2: "EXITING_GUEST_MODE",
         3: "READING_SHADOW_PAGE_TABLES"}
_INTID = re.compile(r"\b(?:SPI|PPI|SGI|LPI|INTID) (\d+)")


@dataclass(frozen=True)
class Row:
    """One step: where it ran (a lane: ``pcpuN``, a device or the VMM), what it did."""

    step: int
    lane: str
    text: str
    mark: str = ""  # non-empty on the loss step: what was lost


@dataclass(frozen=True)
class Table:
    """The rows kept, the lanes they use (columns, in order) and the loss row."""

    rows: list[Row]
    lanes: list[str]
    intid: int
    cut: int  # rows left out to stay within MAX_ROWS
    loss: Row | None


def studied_intid(messages: Iterable[str], events: Sequence[AnyEvent]) -> int:
    """The interrupt the finding is about: the first one a violation message names, else
    the first one the guest acknowledged, else the first one queued (-1: none)."""
    for message in messages:
        m = _INTID.search(message)
        if m:
            return int(m.group(1))
    for cls in (GuestAcked, IrqQueued):
        first = next((e for e in events if isinstance(e, cls)), None)
        if first is not None:
            return first.intid
    return -1


def _touches(event: AnyEvent, intid: int) -> bool:
    if isinstance(event, HcrConfigured):
        return intid in event.lrs
    if isinstance(event, (IrqQueued, LrFolded, EoicountReplayed, DirEmulated, ActiveChanged,
                          IrqPruned, GuestAcked, GuestEoied, GuestDeactivated)):
        return event.intid == intid
    return False


def _context(event: AnyEvent) -> bool:
    """The kicks, requests, mode changes and entries/exits shown inside the window."""
    if isinstance(event, RequestMade):
        return event.req & KVM_REQUEST_MASK == KVM_REQ_SLEEP & KVM_REQUEST_MASK
    return isinstance(event, (KickSent, ModeChanged, EntryAborted, GuestEntered, GuestExited))


def _atomic_region(events: Sequence[AnyEvent], loss: int) -> tuple[int, int] | None:
    """For a broadcast in atomic context: from the acquisition of the oldest lock the
    broadcasting actor holds at the loss step to that lock's release."""
    if loss < 0:
        return None
    actor = events[loss].actor
    held: dict[str, int] = {}
    for i in range(loss):
        e = events[i]
        if e.actor != actor:
            continue
        if isinstance(e, LockAcquired):
            held.setdefault(e.lock, i)
        elif isinstance(e, LockReleased):
            held.pop(e.lock, None)
    if not held:
        return None
    lock, start = min(held.items(), key=lambda kv: kv[1])
    for i in range(loss, len(events)):
        e = events[i]
        if e.actor == actor and isinstance(e, LockReleased) and e.lock == lock:
            return start, i
    return start, len(events) - 1


def _atomic_context(event: AnyEvent) -> bool:
    """What the broadcasting actor does inside its atomic region."""
    if isinstance(event, MessageSent):
        return event.kind == "ipi"
    if isinstance(event, CellAccessed):
        return event.cell.endswith("active_spis")
    return isinstance(event, (LockAcquired, LockReleased, KickSent, RequestMade, IrqQueued))


def _lock_text(lock: str, taken: bool) -> str:
    """A model lock under the kernel's primitive and name."""
    if lock.startswith("eventfd."):
        fn = "spin_lock_irqsave" if taken else "spin_unlock_irqrestore"
        return f"{fn}: {lock[8:].removesuffix('.wqh')} eventfd ctx->wqh.lock" + (
            " (IRQs off)" if taken else "")
    fn = "raw_spin_lock" if taken else "raw_spin_unlock"
    if lock.endswith("ap_list_lock"):
        return f"{fn}: {lock.split('.')[0]} ap_list_lock"
    if lock.startswith("irq"):
        return f"{fn}: INTID {lock[3:]} irq_lock"
    return f"{'lock' if taken else 'unlock'} {lock}"


def _broadcast_context(event: AnyEvent) -> bool:
    """For an untrapped DIR: every vCPU's flush (its TDIR), the requests and the IPIs in
    flight between the broadcast and the DIR."""
    if isinstance(event, (MessageSent, MessageDelivered)):
        return event.kind == "ipi"
    return isinstance(event, (HcrConfigured, RequestMade))


def cell(event: AnyEvent, intid: int) -> str:
    """The step in kernel terms: function, then the state it reads or writes."""
    match event:
        case IrqQueued(vcpu=v, bcst=b):
            return (f"vgic_queue_irq_unlock: {intid} on vcpu{v} ap_list"
                    + ("; active_spis 0->1, so kvm_make_all_cpus_request "
                       "KVM_REQ_IRQ_PENDING" if b else ""))
        case HcrConfigured(vcpu=v, tdir=t, active_spis=n, lrs=lrs):
            placed = f"{intid} into an LR, on_lr=1" if intid in lrs else f"{intid} not in its LRs"
            return f"vgic_flush_lr_state vcpu{v}: {placed}; TDIR={int(t)} (active_spis={n})"
        case LockAcquired(lock=lk):
            return _lock_text(lk, True)
        case LockReleased(lock=lk):
            return _lock_text(lk, False)
        case CellAccessed(old=a, new=b):
            return f"atomic_fetch_inc: active_spis {a} -> {b}"
        case MessageSent(dst=d):
            return f"smp_send_reschedule: IPI to {d.split('.')[0]} in flight"
        case MessageDelivered(dst=d):
            return f"IPI delivered to {d.split('.')[0]} (taken once IRQs are on)"
        case LrFolded(vcpu=v, state=st, deactivated=d, pseudo=p):
            active = "ACTIVE" in st
            what = "pseudo-LR" if p else "LR"
            return (f"vgic_v3_fold_lr vcpu{v}: {what} {st} -> irq->active={int(active)}, "
                    f"on_lr=0" + (" (deactivated)" if d else ""))
        case EoicountReplayed(vcpu=v):
            return f"vgic_v3_fold_lr_state vcpu{v}: EOIcount deactivates {intid}"
        case DirEmulated(outcome=o, owner=w):
            what = {"icactiver": "on_lr=1: big hammer, ICACTIVER write",
                    "pseudo-lr": "on_lr=0: pseudo-LR built, irq_lock dropped",
                    "not-queued": "irq->vcpu=NULL: nothing to do"}.get(o, o)
            return f"vgic_v3_deactivate {intid}: {what}" + (f" (owner vcpu{w})" if w >= 0
                                                             else "")
        case ActiveChanged(active=a, halted=h):
            return (f"vgic_mmio_change_active: irq->active={int(a)}"
                    + (" under kvm_arm_halt_guest" if h else ""))
        case IrqPruned(vcpu=v, to=t):
            return (f"vgic_prune_ap_list: {intid} off vcpu{v}" if t < 0
                    else f"vgic_prune_ap_list: {intid} vcpu{v} -> vcpu{t}")
        case GuestAcked(vcpu=v):
            return f"guest vcpu{v}: ICV_IAR1_EL1 -> {intid} (LR Active)"
        case GuestEoied(vcpu=v, deactivates=d):
            return (f"guest vcpu{v}: ICV_EOIR1_EL1 {intid}, "
                    + ("drop + deactivate" if d else "priority drop"))
        case GuestDeactivated(vcpu=v, how=h, trapped=t):
            reg = "ICV_DIR_EL1" if h == "dir" else "GICD_ICACTIVER"
            return f"guest vcpu{v}: {reg} {intid}, " + ("trapped" if t else "NOT trapped")
        case KickSent(vcpu=v, how=h, req=r):
            fn = "kvm_arm_halt_guest" if r >= 0 and r & KVM_REQUEST_MASK == (
                KVM_REQ_SLEEP & KVM_REQUEST_MASK) else "kvm_vcpu_kick"
            how = {"none": "no IPI", "ipi": "IPI", "wake": "wake"}.get(h, h)
            return f"{fn}: vcpu{v} {request_name(r) if r >= 0 else ''} {how}".replace("  ", " ")
        case RequestMade(vcpu=v, req=r):
            return f"kvm_make_request vcpu{v}: {request_name(r)}"
        case ModeChanged(vcpu=v, new=n, op=o):
            fn = "smp_store_mb" if o == "store_mb" else "WRITE_ONCE" if o == "store" else o
            return f"kvm_arch_vcpu_ioctl_run: vcpu{v}->mode = {MODES.get(n, str(n))} ({fn})"
        case EntryAborted(vcpu=v):
            return f"kvm_vcpu_exit_request vcpu{v}: entry aborted, sync"
        case GuestEntered(vcpu=v):
            return f"kvm_arm_vcpu_enter_exit vcpu{v}: guest runs"
        case GuestExited(vcpu=v, reason=r):
            return f"kvm_arch_vcpu_ioctl_run vcpu{v}: guest exit ({r})"
    return type(event).__name__


def mark_loss(events: Sequence[AnyEvent], intid: int, invariants: Sequence[str]) -> int:
    """Index in ``events`` of the step where the guest's work is lost (-1: none found).

    - deactivation-lost: after the guest's last deactivation of ``intid``, the first fold
      that writes irq->active back (an LR still Active); with no such fold, the
      deactivation itself (an untrapped DIR);
    - smp-call-in-atomic: the 0 -> 1 broadcast of ``intid``;
    - otherwise (a resampled level SPI never notified): the first fold of an LR the guest
      had EOIed that KVM did not see as a deactivation.
    """
    if "smp-call-in-atomic" in invariants:
        return next((i for i, e in enumerate(events)
                     if isinstance(e, IrqQueued) and e.intid == intid and e.bcst), -1)
    last_deact = -1
    for i, e in enumerate(events):
        if (isinstance(e, GuestDeactivated) and e.intid == intid) or (
                isinstance(e, GuestEoied) and e.intid == intid and e.deactivates):
            last_deact = i
    if "deactivation-lost" in invariants and last_deact >= 0:
        cleared = False
        for i in range(last_deact, len(events)):
            e = events[i]
            if (isinstance(e, ActiveChanged) and e.intid == intid and not e.active) or (
                    isinstance(e, LrFolded) and e.intid == intid and e.deactivated):
                cleared = True
            elif (cleared and isinstance(e, LrFolded) and e.intid == intid
                  and "ACTIVE" in e.state):
                return i
        return last_deact
    eoied = False
    for i, e in enumerate(events):
        if isinstance(e, GuestEoied) and e.intid == intid:
            eoied = True
        elif (eoied and isinstance(e, LrFolded) and e.intid == intid and e.state == "INVALID"
              and not e.deactivated):
            return i
    return -1


def _loss_text(events: Sequence[AnyEvent], invariants: Sequence[str], at: int) -> str:
    event = events[at]
    if "smp-call-in-atomic" in invariants:
        return "broadcast (smp_call_function_many) with IRQs disabled"
    if isinstance(event, LrFolded) and "ACTIVE" in event.state:
        return "irq->active written back: the guest's deactivation is LOST"
    if isinstance(event, GuestDeactivated):
        return "DIR not trapped: the guest's deactivation is LOST"
    if isinstance(event, LrFolded):
        return "EOI folded with deactivated=0: kvm_notify_acked_irq not called"
    return "lost here"


def interleaving(events: Sequence[AnyEvent], intid: int, invariants: Sequence[str],
                 *, max_rows: int = MAX_ROWS) -> Table:
    """The table of the steps that matter, at most ``max_rows`` rows."""
    loss = mark_loss(events, intid, invariants)
    start = next((i for i, e in enumerate(events)
                  if isinstance(e, (GuestDeactivated, DirEmulated)) and e.intid == intid),
                 loss)
    untrapped = 0 <= loss < len(events) and isinstance(events[loss], GuestDeactivated)
    atomic = _atomic_region(events, loss) if "smp-call-in-atomic" in invariants else None
    if untrapped:  # the window opens at the broadcast that should have set TDIR
        start = next((i for i, e in enumerate(events)
                      if isinstance(e, IrqQueued) and e.intid == intid and e.bcst), start)
    end = loss if loss >= 0 else len(events) - 1
    keep: list[int] = []
    after = 0
    for i, e in enumerate(events):
        if loss >= 0 and i > loss and not (atomic is not None and i <= atomic[1]):
            if _touches(e, intid) and after < 2:  # what follows from the loss, briefly
                keep.append(i)
                after += 1
            continue
        if atomic is not None and atomic[0] <= i <= atomic[1] and \
                e.actor == events[loss].actor and _atomic_context(e):
            keep.append(i)
            continue
        if _touches(e, intid) or (start >= 0 and start <= i <= end and _context(e)) or (
                untrapped and start <= i <= end and _broadcast_context(e)):
            keep.append(i)
    cut = 0
    if len(keep) > max_rows:
        cut = len(keep) - max_rows
        keep = keep[:1] + keep[1 + cut:]  # the first queueing, then the end of the story
    rows = [Row(events[i].step, lane_of(events[i].actor), cell(events[i], intid),
                _loss_text(events, invariants, i) if i == loss else "") for i in keep]
    lanes = sorted({r.lane for r in rows}, key=lane_order)
    mark = next((r for r in rows if r.mark), None)
    return Table(rows, lanes, intid, cut, mark)


def lane_title(lane: str) -> str:
    """``pcpu0`` -> ``CPU0``; other lanes keep their actor name."""
    return "CPU" + lane[4:] if lane.startswith("pcpu") else lane


def render_text(table: Table, width: int = 80) -> list[str]:
    """The table in plain text, each line at most ``width`` columns: a step column, then
    one wrapped column per lane; the loss row is flagged ``>>`` and explained below."""
    step_w = 6
    n = max(len(table.lanes), 1)
    col_w = (width - step_w - 2 * (n - 1)) // n
    head = " step ".rjust(step_w) + "  ".join(lane_title(lane).ljust(col_w)
                                             for lane in table.lanes)
    lines = [head.rstrip(), ("-" * (step_w - 1)).ljust(step_w)
             + "  ".join("-" * col_w for _ in table.lanes)]
    for number, row in enumerate(table.rows):
        if number == 1 and table.cut:
            lines.append(f"{'':{step_w}}({table.cut} steps left out)")
        idx = table.lanes.index(row.lane)
        wrapped = textwrap.wrap(row.text, col_w, break_long_words=False,
                                break_on_hyphens=False) or [""]
        wrapped = [w[:col_w] for w in wrapped]
        for k, part in enumerate(wrapped):
            step = (">>" if row.mark else "") + str(row.step) if k == 0 else ""
            cells = ["".ljust(col_w)] * n
            cells[idx] = part.ljust(col_w)
            lines.append((step.rjust(step_w - 1) + " " + "  ".join(cells)).rstrip())
    if table.loss is not None:
        lines.append("")
        lines += textwrap.wrap(f">> step {table.loss.step} ({lane_title(table.loss.lane)}): "
                               f"{table.loss.mark}", width)
    return lines


def render_markdown(table: Table) -> list[str]:
    """The table as a Markdown table, the loss row in bold."""
    head = "| step | " + " | ".join(lane_title(lane) for lane in table.lanes) + " |"
    lines = [head, "|---:|" + "---|" * len(table.lanes)]
    for n, row in enumerate(table.rows):
        if n == 1 and table.cut:
            lines.append(f"| ... | ({table.cut} steps left out) |"
                         + " |" * (len(table.lanes) - 1))
        cells = [""] * len(table.lanes)
        text = row.text.replace("|", "\\|")
        cells[table.lanes.index(row.lane)] = f"**{text}** ({row.mark})" if row.mark else text
        step = f"**{row.step}**" if row.mark else str(row.step)
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines
