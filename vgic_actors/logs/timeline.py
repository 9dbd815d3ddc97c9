"""``logs timeline``: a text timeline, one column per CPU, the distributor and the VMM,
with the messages in flight (IPIs, kicks, MMIO requests and replies) at the right.

Two streaming passes: the first finds the columns, the second prints a row per
event worth reading (scheduling steps, lock traffic and plain counter reads are
left out unless ``everything``). A CPU's mailboxes (``pcpu0.reply``, ``cpu0.ipi``)
share its column. The in-flight column lists the messages sent and not yet
delivered after the row's event: ``#6 ipi distributor>pcpu1``.
"""

from __future__ import annotations

from collections.abc import Iterator

from vgic_actors.events import (
    ActorBlocked,
    ActorStepped,
    AnyEvent,
    CellAccessed,
    LockAcquired,
    LockReleased,
    MessageDelivered,
    MessageSent,
    RequestChecked,
    RunStarted,
)
from vgic_actors.logs.describe import describe, lane_of, lane_order
from vgic_actors.logs.reader import LogReader

_MARGIN = frozenset({"runner", "scheduler", "timer"})


def worth_showing(event: AnyEvent) -> bool:
    """The events the default timeline shows (kernel work, guest actions, messages)."""
    match event:
        case ActorStepped() | LockAcquired(contended=False) | LockReleased(to=""):
            return False
        case CellAccessed(old=a, new=b) if a == b:
            return False
        case RequestChecked(found=False) | ActorBlocked(idle=True):
            return False
    return True


def lanes(reader: LogReader) -> list[str]:
    """The columns: every lane with an event, pCPUs first, then the distributor."""
    seen = {lane_of(e.actor) for _, _, e in reader.events()} - _MARGIN
    return sorted(seen, key=lane_order)


def rows(reader: LogReader, *, everything: bool = False, width: int = 34,
         steps: tuple[int | None, int | None] = (None, None)) -> Iterator[str]:
    """The timeline's lines, header first."""
    cols = lanes(reader)
    index = {lane: i for i, lane in enumerate(cols)}
    blank = " " * width
    yield f"{'step':>6} {'vt':>6} | " + " | ".join(c[:width].ljust(width) for c in cols) \
        + " | in flight"
    yield "-" * (16 + (width + 3) * len(cols) + 10)
    flight: dict[int, str] = {}
    lo, hi = steps
    for _number, _line, event in reader.events():
        if isinstance(event, MessageSent):
            flight[event.msg] = f"#{event.msg} {event.kind} {_short(event.actor)}>" \
                                f"{_short(event.dst)}"
        elif isinstance(event, MessageDelivered):
            flight.pop(event.msg, None)
        if (lo is not None and event.step < lo) or (hi is not None and event.step > hi):
            continue
        if isinstance(event, RunStarted) or not (everything or worth_showing(event)):
            continue
        lane = lane_of(event.actor)
        cells = [blank] * len(cols)
        text = describe(event)
        if lane in index:
            cells[index[lane]] = _fit(text, width)
        else:
            cells = [_fit(f"[{event.actor}] {text}", width), *cells[1:]] if cells else []
        inflight = list(flight.values())
        shown = ", ".join(inflight[:3]) + (f" +{len(inflight) - 3}" if len(inflight) > 3 else "")
        yield f"{event.step:>6} {event.vt:>6} | " + " | ".join(cells) + " | " + shown


def _short(actor: str) -> str:
    lane = lane_of(actor)
    return "dist" if lane == "distributor" else lane


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"
