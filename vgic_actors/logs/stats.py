"""``logs stats``: counts over a whole log in one streaming pass.

Events by kind and by CPU lane, guest exits by reason, traps, maintenance
interrupts, kicks and broadcasts, messages by kind, lock contention, and per
vCPU the virtual time spent in the guest and how much of it with
ICH_HCR_EL2.TDIR set (the HCR a vCPU enters with is the one its last
``HcrConfigured`` computed). The hot path reads kind and actor from the raw
bytes and decodes only the few kinds whose fields it needs.
"""

from __future__ import annotations

import re
import typing
from collections import Counter
from collections.abc import Callable

import msgspec

from vgic_actors.events import (
    AnyEvent,
    DirEmulated,
    GuestDeactivated,
    GuestEntered,
    GuestEoied,
    GuestExited,
    HcrConfigured,
    IrqfdResampled,
    IrqQueued,
    KickSent,
    MessageSent,
    RunEnded,
)
from vgic_actors.logs.describe import lane_of, lane_order
from vgic_actors.logs.reader import LogReader, has_long_number

_DECODE = frozenset({b"GuestExited", b"GuestEntered", b"HcrConfigured", b"IrqQueued",
                     b"KickSent", b"MessageSent", b"RunEnded", b"DirEmulated",
                     b"GuestDeactivated", b"GuestEoied", b"IrqfdResampled"})
"""The kinds whose fields are needed. A lock acquisition is only counted, contended or
not, from its raw bytes (`_CONTENDED`): the most frequent of them is never decoded."""
_LOCK = b"LockAcquired"
_CONTENDED_FIELD = b'"contended":true'


_KNOWN = frozenset(t.__name__.encode() for t in typing.get_args(AnyEvent))
"""Every event kind: a line of another kind is decoded, so that it is reported."""


class VcpuTime(msgspec.Struct, kw_only=True):
    """One vCPU's virtual time in the guest, and with TDIR set."""

    guest_vt: int = 0
    tdir_vt: int = 0
    entries: int = 0
    tdir_entries: int = 0


class Stats(msgspec.Struct, kw_only=True):
    """Everything ``logs stats`` prints (``--json`` is this Struct)."""

    file: str
    scenario: str = ""
    variant: str = ""
    seed: int = 0
    outcome: str = ""
    events: int = 0
    steps: int = 0
    vt: int = 0
    by_kind: dict[str, int] = msgspec.field(default_factory=dict)
    by_lane: dict[str, int] = msgspec.field(default_factory=dict)
    exits: dict[str, int] = msgspec.field(default_factory=dict)
    exits_by_vcpu: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    traps: int = 0
    dir_emulated: dict[str, int] = msgspec.field(default_factory=dict)
    guest_deactivations: dict[str, int] = msgspec.field(default_factory=dict)
    maintenance_interrupts: int = 0
    resamples: int = 0  # irqfd_resampler_ack runs (IrqfdResampled)
    kicks: dict[str, int] = msgspec.field(default_factory=dict)
    broadcasts: int = 0
    broadcast_legs: int = 0
    messages: dict[str, int] = msgspec.field(default_factory=dict)
    contended_locks: int = 0
    vcpus: dict[str, VcpuTime] = msgspec.field(default_factory=dict)
    problems: int = 0


def collect(reader: LogReader) -> Stats:
    """One pass over the log."""
    tally = _Tally(Stats(file=reader.file))
    st = tally.st
    pairs: Counter[tuple[bytes, bytes]] = Counter()  # (kind, actor) -> count: the hot path
    first = True

    def one(number: int, line: bytes, complete: bool) -> None:
        nonlocal first
        end = line.find(b'"', 7)
        kind = line[7:end] if line.startswith(b'{"ev":"') else b""
        if kind in _DECODE or kind not in _KNOWN or first or not complete:
            first_line, first = first, False
            if first_line:
                decoded = reader._header(number, line, complete)
            else:
                decoded = reader.decode(number, line, complete)
            if decoded is None:
                return
            event: AnyEvent = decoded
            kind = type(event).__name__.encode()
            tally.feed(event)
        elif kind == _LOCK and _CONTENDED_FIELD in line:
            st.contended_locks += 1
        at = line.rfind(b'"actor":"')
        pairs[kind, line[at + 9:line.find(b'"', at + 9)] if at >= 0 else b""] += 1

    bulk = _Bulk()
    for number, body, complete, newlines in reader.blocks():
        if not complete:
            if not body.isspace() and reader._utf8(number + 1, body):
                one(number + 1, body, False)
        else:
            if first and body.startswith(_START):  # the header alone, then its block's rest
                cut = body.find(b"\n")
                for at, line, _ in reader.split(number, body if cut < 0 else body[:cut]):
                    one(at, line, True)
                if cut < 0:
                    continue
                number, body, newlines = number + 1, body[cut + 1:], newlines - 1
            if first or not _bulk(reader, number, body, newlines, bulk, tally):
                for at, line, _ in reader.split(number, body):
                    one(at, line, True)
    kinds: Counter[bytes] = Counter()
    actors: Counter[str] = Counter()
    for (kind, raw_actor), n in pairs.items():
        kinds[kind] += n
        actors[raw_actor.decode()] += n
    kinds.update(bulk.kinds)
    for raw_actor, n in bulk.actors.items():
        actors[raw_actor.decode()] += n
    st.contended_locks += bulk.contended
    tally.finish()
    lanes: Counter[str] = Counter()
    for actor, n in actors.items():
        lanes[lane_of(actor)] += n
    header = reader.header
    if header is not None:
        st.scenario, st.variant, st.seed = header.scenario, header.variant, header.seed
    st.events = sum(kinds.values())
    st.by_kind = {k.decode(): n for k, n in kinds.most_common()}
    st.by_lane = {k: lanes[k] for k in sorted(lanes, key=lane_order)}
    st.problems = reader.problems
    return st


_START = b'{"ev":"'
_FIRST_KIND = re.compile(rb'\{"ev":"([A-Za-z]+)"')
_LAST_ACTOR = re.compile(rb'"actor":"([^"\n]*)"\}\Z')
_SEAM = b'"}\n{"ev":"'
_JOINED = re.compile(rb'"actor":"([^"]*' + re.escape(_SEAM) + rb'[^"]*)"')
"""A seam between two well-formed lines: the first one's actor (its last field, as
`collect` finds it from the end) and the next one's kind, captured as one string (one
object per line, not two). A block of L lines with L - 1 seams, whose first line
starts with a kind and whose last ends with an actor, is a block of well-formed lines:
each seam holds at least one of the block's newlines, so none holds two (and no actor or
kind holds one; ``[^"]`` is cheaper to match than ``[^"\n]``)."""
_DECODE_LINE = re.compile(rb'\{"ev":"(?:' + b"|".join(sorted(_DECODE)) + rb')"[^\n]*')
_CONTENDED = re.compile(rb'\{"ev":"LockAcquired"[^\n]*"contended":true')


class _Bulk:
    """What the block path adds up: kinds and actors apart (`collect` only needs each
    one's totals), and the contended lock acquisitions."""

    def __init__(self) -> None:
        self.kinds: Counter[bytes] = Counter()
        self.actors: Counter[bytes] = Counter()
        self.contended = 0


def _bulk(reader: LogReader, number: int, body: bytes, newlines: int, bulk: _Bulk,
          tally: _Tally) -> bool:
    """Count a `LogReader.blocks` body that follows line ``number`` and holds ``newlines``
    in C (kinds and actors from the seams between lines) and decode only its lines of the
    `_DECODE` kinds;
    False, having done nothing, unless every line is a well-formed ASCII line of a known
    kind (then the caller takes the block line by line)."""
    if not body.isascii() or b"\r" in body:
        return False
    head = _FIRST_KIND.match(body)
    last = _LAST_ACTOR.search(body, body.rfind(b"\n") + 1)
    seams = _JOINED.findall(body)
    if head is None or last is None or len(seams) != newlines:
        return False
    kinds: Counter[bytes] = Counter({head[1]: 1})
    counts: Counter[bytes] = Counter({last[1]: 1})
    for seam, n in Counter(seams).items():
        actor, _, kind = seam.partition(_SEAM)
        kinds[kind] += n
        counts[actor] += n
    if not kinds.keys() <= _KNOWN:
        return False
    found = _DECODE_LINE.findall(body)
    joined = b",".join(found)
    events = None if has_long_number(joined) else reader.try_decode_all(joined, len(found))
    if events is not None and None not in events:
        tally.feed_all(typing.cast(list[AnyEvent], events))
    else:  # line by line, each doubtful line decoded again for its verdict
        at, counted = number + 1, 0
        starts = (m.start() for m in _DECODE_LINE.finditer(body))
        for index, (line, start) in enumerate(zip(found, starts, strict=True)):
            event = events[index] if events is not None else None
            if event is None:
                at += body.count(b"\n", counted, start)
                counted = start
                event = reader.decode(at, line, True)
            if event is None:  # reported: not counted, as on the line-by-line path
                kind = line[7:line.find(b'"', 7)]
                cut = line.rfind(b'"actor":"')
                kinds[kind] -= 1
                counts[line[cut + 9:line.find(b'"', cut + 9)]] -= 1
                continue
            tally.feed(event)
    bulk.kinds.update(kinds)
    bulk.actors.update(counts)
    if _CONTENDED_FIELD in body:
        bulk.contended += len(_CONTENDED.findall(body))
    return True


class _Tally:
    """The figures that need an event's fields, fed the decoded events in log order; each
    kind has its own method (a dict lookup per event, not a chain of class patterns)."""

    def __init__(self, st: Stats) -> None:
        self.st = st
        self.exits: Counter[str] = Counter()
        self.exits_by: dict[int, Counter[str]] = {}
        self.dirs: Counter[str] = Counter()
        self.deacts: Counter[str] = Counter()
        self.kicks: Counter[str] = Counter()
        self.msgs: Counter[str] = Counter()
        self.tdir_now: dict[int, bool] = {}
        self.entered: dict[int, tuple[int, bool]] = {}  # vCPU -> (vt it entered, TDIR)
        self.times: dict[int, VcpuTime] = {}
        self.last_vt = self.last_step = 0
        self._by_type: dict[type, Callable[[typing.Any], None]] = {
            GuestExited: self._exited, GuestEntered: self._entered,
            HcrConfigured: self._hcr, IrqQueued: self._queued, KickSent: self._kick,
            MessageSent: self._message, DirEmulated: self._dir,
            GuestDeactivated: self._deactivated, GuestEoied: self._eoied,
            IrqfdResampled: self._resampled, RunEnded: self._ended}

    def feed(self, event: AnyEvent) -> None:
        """Count one decoded event."""
        self.feed_all([event])

    def feed_all(self, events: list[AnyEvent]) -> None:
        """Count each of ``events``, in order (one loop for a whole block)."""
        by_type = self._by_type
        for event in events:
            handle = by_type.get(type(event))
            if handle is not None:
                handle(event)
        if events:
            self.last_vt, self.last_step = events[-1].vt, events[-1].step

    def finish(self) -> None:
        """Close the guest time of a vCPU still in its guest, and fill the Stats."""
        st = self.st
        for vid, (since, tdir) in self.entered.items():
            self._leave(vid, since, tdir, self.last_vt)
        st.steps = max(st.steps, self.last_step)
        st.vt = max(st.vt, self.last_vt)
        st.exits = dict(self.exits.most_common())
        st.exits_by_vcpu = {f"vcpu{v}": dict(c.most_common())
                            for v, c in sorted(self.exits_by.items())}
        st.dir_emulated = dict(self.dirs.most_common())
        st.guest_deactivations = dict(self.deacts.most_common())
        st.kicks = dict(self.kicks.most_common())
        st.messages = dict(self.msgs.most_common())
        st.vcpus = {f"vcpu{v}": t for v, t in sorted(self.times.items())}

    def _leave(self, vid: int, since: int, tdir: bool, vt: int) -> None:
        t = self.times.setdefault(vid, VcpuTime())
        t.guest_vt += vt - since
        if tdir:
            t.tdir_vt += vt - since

    def _exited(self, event: GuestExited) -> None:
        v, r = event.vcpu, event.reason
        self.exits[r] += 1
        by_vcpu = self.exits_by.get(v)
        if by_vcpu is None:
            by_vcpu = self.exits_by[v] = Counter()
        by_vcpu[r] += 1
        if r == "trap":
            self.st.traps += 1
        if v in self.entered:
            since, tdir = self.entered.pop(v)
            self._leave(v, since, tdir, event.vt)

    def _entered(self, event: GuestEntered) -> None:
        v = event.vcpu
        tdir = self.tdir_now.get(v, False)
        self.entered[v] = (event.vt, tdir)
        t = self.times.setdefault(v, VcpuTime())
        t.entries += 1
        t.tdir_entries += tdir

    def _hcr(self, event: HcrConfigured) -> None:
        self.tdir_now[event.vcpu] = event.tdir

    def _queued(self, event: IrqQueued) -> None:
        self.st.broadcasts += event.bcst

    def _kick(self, event: KickSent) -> None:
        self.kicks[event.how] += 1
        self.st.broadcast_legs += event.req >= 0

    def _message(self, event: MessageSent) -> None:
        self.msgs[event.kind] += 1
        self.st.maintenance_interrupts += event.kind == "maintenance"

    def _dir(self, event: DirEmulated) -> None:
        self.dirs[event.outcome] += 1

    def _deactivated(self, event: GuestDeactivated) -> None:
        self.deacts[f"{event.how} {'trapped' if event.trapped else 'not trapped'}"] += 1

    def _eoied(self, event: GuestEoied) -> None:
        if event.deactivates:  # EOImode 0: EOIR deactivates too
            self.deacts[f"eoir {'trapped' if event.trapped else 'not trapped'}"] += 1

    def _resampled(self, _event: IrqfdResampled) -> None:
        self.st.resamples += 1

    def _ended(self, event: RunEnded) -> None:
        self.st.outcome = event.outcome
        self.st.steps, self.st.vt = event.step, event.vt


def render(st: Stats) -> str:
    """The human summary."""
    def line(title: str, counts: dict[str, int]) -> str:
        body = ", ".join(f"{k} {n}" for k, n in counts.items()) or "none"
        return f"{title:<22}{body}"

    out = [f"{st.file}: {st.scenario or '?'} variant {st.variant or '?'} seed {st.seed}, "
           f"outcome {st.outcome or '?'}",
           f"{'events':<22}{st.events} over {st.steps} steps, vt {st.vt}"
           + (f" ({st.problems} bad lines skipped)" if st.problems else ""),
           line("by kind", st.by_kind), line("by CPU", st.by_lane), line("exits", st.exits)]
    out += [line(f"  {v}", c) for v, c in st.exits_by_vcpu.items()]
    out += [f"{'traps':<22}{st.traps} exits; DIR emulated: "
            + (", ".join(f"{k} {n}" for k, n in st.dir_emulated.items()) or "none"),
            line("guest deactivations", st.guest_deactivations),
            f"{'maintenance IRQs':<22}{st.maintenance_interrupts}",
            f"{'irqfd resamples':<22}{st.resamples}",
            line("kicks", st.kicks),
            f"{'broadcasts':<22}{st.broadcasts} (0->1 active_spis), {st.broadcast_legs} "
            "request legs (kvm_make_all_cpus_request)",
            line("messages", st.messages),
            f"{'contended locks':<22}{st.contended_locks}"]
    for v, t in st.vcpus.items():
        share = f"{100 * t.tdir_vt / t.guest_vt:.0f}%" if t.guest_vt else "-"
        out.append(f"{'  ' + v:<22}in guest vt {t.guest_vt} over {t.entries} entries; TDIR on "
                   f"vt {t.tdir_vt} ({share}), {t.tdir_entries} entries")
    return "\n".join(out)
