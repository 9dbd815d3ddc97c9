"""``logs perfetto``: a Chrome trace-event JSON file that ui.perfetto.dev opens.

Layout (race-hunting.md s.5): one process, the VM; a track per pCPU, per vCPU,
the distributor and each other actor (the VMM, the host IRQ handler), named and
ordered by ``M`` events. Virtual time is the clock: one tick is 1 us, and the
k-th event within a tick sits 4k ns later (a message's endpoint slice takes the
2 ns after its send or delivery), so every event has its own timestamp, every
timestamp and duration is a whole number of nanoseconds (Perfetto drops sub-ns
slices), and slices nest by construction.

- vCPU tracks: ``guest`` slices (``B``/``E``) from entry to exit, with the exit
  reason; the guest's IAR/EOIR/DIR as instants.
- pCPU tracks: the host's work after each exit as a slice named after the exit
  (``handle_exit: trap``, ``...: ipi``) until the next entry; kernel steps
  (queue, flush, fold, DIR emulation, prune) as instants.
- distributor: one slice per request from delivery to its reply.
- every message as a flow (``s`` -> ``f``, id = the message number) between short
  endpoint slices; an IPI that is a kick is named ``kick``, one leg of
  kvm_make_all_cpus_request ``broadcast leg (KVM_REQ_...)``.
- counters: ``active_spis`` and ``TDIR vcpuN`` (the TDIR bit each flush computes).

Streaming: the writer holds only open slices and messages in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

import msgspec

from vgic_actors.events import (
    ActiveChanged,
    ActorBlocked,
    ActorFinished,
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
    LrFolded,
    MessageDelivered,
    MessageSent,
)
from vgic_actors.logs.check import ACTIVE_SPIS
from vgic_actors.logs.describe import describe, lane_of, lane_order, request_name
from vgic_actors.logs.reader import LogReader

PID = 1
_ENCODER = msgspec.json.Encoder()
_INSTANTS = (IrqQueued, HcrConfigured, LrFolded, EoicountReplayed, DirEmulated, ActiveChanged,
             IrqPruned, KickSent)
_GUEST_OPS = (GuestAcked, GuestEoied, GuestDeactivated)
_STEP_NS = 4  # ns between two events of one tick (250 events fit in a 1 us tick)
_ENDPOINT = 0.002  # us: a message's endpoint slice, 2 ns, 1 ns after its event
_MARGIN = frozenset({"runner", "scheduler", "timer"})


def _us(ts: float) -> float:
    """A timestamp in us rounded to a whole nanosecond."""
    return round(ts, 3)


class TraceWriter:
    """Turns events into trace events and writes them as they come."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.count = 0
        self.tids: dict[str, int] = {}
        self.open: dict[int, list[str]] = {}  # tid -> stack of open B slice names
        self.pending_ipi: dict[str, tuple[MessageSent, float]] = {}
        self.flow_names: dict[int, str] = {}
        self.tdir: dict[int, bool] = {}
        self.dist_request: str | None = None
        self.last_vt = -1
        self.sub = 0
        self.ts = 0.0

    # --- output -------------------------------------------------------------------------

    def emit(self, ev: dict[str, Any]) -> None:
        """Write one trace event."""
        self.out.write((b",\n" if self.count else b"") + _ENCODER.encode(ev))
        self.count += 1

    def tid(self, track: str) -> int:
        """The track's thread id, announcing it (name, sort order) the first time."""
        tid = self.tids.get(track)
        if tid is None:
            kind, num, _ = lane_order(track)
            if track.startswith("vcpu") and track[4:].isdigit():
                tid = 200 + int(track[4:])
            elif kind == 0:
                tid = 100 + num
            elif kind == 1:
                tid = 300
            else:
                tid = 400 + len([t for t in self.tids.values() if t >= 400])
            self.tids[track] = tid
            self.emit({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid,
                       "args": {"name": track}})
            self.emit({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid,
                       "args": {"sort_index": tid}})
        return tid

    def begin(self, track: str, name: str, ts: float, args: dict[str, Any] | None = None
              ) -> None:
        """Open a ``B`` slice on ``track``."""
        tid = self.tid(track)
        self.open.setdefault(tid, []).append(name)
        self.emit({"ph": "B", "name": name, "cat": "run", "pid": PID, "tid": tid, "ts": ts,
                   "args": args or {}})

    def end(self, track: str, ts: float, args: dict[str, Any] | None = None) -> None:
        """Close the innermost open slice on ``track`` (nothing if none is open)."""
        tid = self.tid(track)
        stack = self.open.get(tid)
        if not stack:
            return
        stack.pop()
        self.emit({"ph": "E", "pid": PID, "tid": tid, "ts": ts, "args": args or {}})

    def instant(self, track: str, name: str, ts: float, args: dict[str, Any]) -> None:
        """An ``i`` event on ``track``."""
        self.emit({"ph": "i", "s": "t", "name": name, "cat": "kernel", "pid": PID,
                   "tid": self.tid(track), "ts": ts, "args": args})

    def counter(self, name: str, ts: float, value: int) -> None:
        """A ``C`` event: one numeric series named ``name``."""
        self.emit({"ph": "C", "name": name, "pid": PID, "ts": ts, "args": {"value": value}})

    def flow(self, phase: str, track: str, name: str, msg: int, ts: float) -> None:
        """A message's endpoint slice on ``track`` and its flow event (``s`` or ``f``)."""
        tid = self.tid(track)
        at = _us(ts + 0.001)
        self.emit({"ph": "X", "name": name, "cat": "msg", "pid": PID, "tid": tid, "ts": at,
                   "dur": _ENDPOINT, "args": {"msg": msg}})
        ev: dict[str, Any] = {"ph": phase, "name": name, "cat": "msg", "id": msg, "pid": PID,
                              "tid": tid, "ts": at}
        if phase == "f":
            ev["bp"] = "e"
        self.emit(ev)

    # --- events -------------------------------------------------------------------------

    def stamp(self, vt: int) -> float:
        """The event's timestamp in us: its tick, plus 4 ns per earlier event in that tick."""
        if vt != self.last_vt:
            self.last_vt, self.sub = vt, 0
        else:
            self.sub = min(self.sub + 1, 1000 // _STEP_NS - 1)
        self.ts = _us(vt + self.sub * _STEP_NS / 1000)
        return self.ts

    def feed(self, event: AnyEvent) -> None:
        """Translate one log event."""
        ts = self.stamp(event.vt)
        lane = lane_of(event.actor)
        held = self.pending_ipi.pop(event.actor, None)
        if held is not None:
            sent, sent_ts = held
            name = "ipi"
            if isinstance(event, KickSent) and event.how == "ipi":
                name = "kick" if event.req < 0 else \
                    f"broadcast leg ({request_name(event.req)})"
            self._send(sent, sent_ts, name)
        match event:
            case GuestEntered(vcpu=v):
                self.end(lane, ts)  # the host's handling of the previous exit
                self.begin(f"vcpu{v}", "guest", ts, {"tdir": self.tdir.get(v, False)})
            case GuestExited(vcpu=v, reason=r):
                self.end(f"vcpu{v}", ts, {"reason": r, "instructions": event.instructions})
                self.begin(lane, f"handle_exit: {r}", ts, {"vcpu": v})
            case EntryAborted() | ActorFinished():
                self.end(lane, ts)
            case MessageSent(kind="ipi"):
                self.pending_ipi[event.actor] = (event, ts)
            case MessageSent():
                if lane == "distributor" and self.dist_request is not None \
                        and event.kind == self.dist_request + ".reply":
                    self.end(lane, ts)
                    self.dist_request = None
                self._send(event, ts, event.kind)
            case MessageDelivered(msg=m, dst=d):
                dst = lane_of(d)
                if dst == "distributor":
                    if self.dist_request is not None:
                        self.end(dst, ts)
                    self.begin(dst, event.kind, ts, {"from": event.src})
                    self.dist_request = event.kind
                name = self.flow_names.pop(m, event.kind)
                self.flow("f", dst, name, m, ts)
            case ActorBlocked(idle=True) if lane == "distributor" and self.dist_request:
                self.end(lane, ts)
                self.dist_request = None
            case CellAccessed(cell=c, old=a, new=b) if c == ACTIVE_SPIS and a != b:
                self.counter("active_spis", ts, b)
            case HcrConfigured(vcpu=v, tdir=t):
                if self.tdir.get(v) != t:
                    self.tdir[v] = t
                    self.counter(f"TDIR vcpu{v}", ts, int(t))
                self.instant(lane, describe(event), ts, {"vcpu": v, "lrs": event.lrs})
            case _ if isinstance(event, _GUEST_OPS):
                self.instant(f"vcpu{event.vcpu}", describe(event), ts, {"intid": event.intid})
            case _ if isinstance(event, _INSTANTS):
                self.instant(lane, describe(event), ts, {"step": event.step})

    def _send(self, sent: MessageSent, ts: float, name: str) -> None:
        self.flow_names[sent.msg] = name
        self.flow("s", lane_of(sent.actor), name, sent.msg, ts)

    def finish(self) -> None:
        """Send buffered IPIs and close every open slice after the last event."""
        for sent, ts in list(self.pending_ipi.values()):
            self._send(sent, ts, "ipi")
        self.pending_ipi.clear()
        ts = _us(self.ts + 0.003)
        for tid, stack in self.open.items():
            while stack:
                stack.pop()
                self.emit({"ph": "E", "pid": PID, "tid": tid, "ts": ts})


def export(reader: LogReader, out: BinaryIO,
           on_event: Callable[[AnyEvent], None] | None = None) -> int:
    """Write the trace for ``reader``'s log to ``out``; return how many trace events."""
    header = reader.read_header()
    out.write(b'{"displayTimeUnit":"ns","traceEvents":[\n')
    writer = TraceWriter(out)
    name = "VM"
    if header is not None:
        name = f"VM {header.scenario or '?'} ({header.variant or '?'}, seed {header.seed})"
    writer.emit({"ph": "M", "name": "process_name", "pid": PID, "args": {"name": name}})
    writer.counter("active_spis", 0.0, 0)
    for _n, _line, event in reader.events():
        if lane_of(event.actor) in _MARGIN:
            continue
        writer.feed(event)
        if on_event is not None:
            on_event(event)
    writer.finish()
    other: dict[str, Any] = {"source": reader.file}
    if header is not None:
        other.update(msgspec.structs.asdict(header))
        other.pop("ev", None)
    out.write(b'\n],"otherData":' + _ENCODER.encode(other) + b"}\n")
    return writer.count
