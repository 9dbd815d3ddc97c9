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
    kinds: Counter[bytes] = Counter()
    lanes: Counter[str] = Counter()
    exits: Counter[str] = Counter()
    exits_by: dict[int, Counter[str]] = {}
    dirs: Counter[str] = Counter()
    deacts: Counter[str] = Counter()
    kicks: Counter[str] = Counter()
    msgs: Counter[str] = Counter()
    tdir_now: dict[int, bool] = {}
    entered: dict[int, tuple[int, bool]] = {}
    times: dict[int, VcpuTime] = {}
    st = Stats(file=reader.file)
    last_vt = last_step = 0
    pairs: Counter[tuple[bytes, bytes]] = Counter()  # (kind, actor) -> count: the hot path
    first = True

    def one(number: int, line: bytes, complete: bool) -> None:
        nonlocal first, last_vt, last_step
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
            feed(event)
        elif kind == _LOCK and _CONTENDED_FIELD in line:
            st.contended_locks += 1
        at = line.rfind(b'"actor":"')
        pairs[kind, line[at + 9:line.find(b'"', at + 9)] if at >= 0 else b""] += 1

    def feed(event: AnyEvent) -> None:
        nonlocal last_vt, last_step
        _feed(event, st, exits, exits_by, dirs, deacts, kicks, msgs, tdir_now, entered, times)
        last_vt, last_step = event.vt, event.step

    bulk = _Bulk()
    for number, body, complete in reader.blocks():
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
                number, body = number + 1, body[cut + 1:]
            if first or not _bulk(reader, number, body, bulk, feed):
                for at, line, _ in reader.split(number, body):
                    one(at, line, True)
    actors: Counter[str] = Counter()
    for (kind, raw_actor), n in pairs.items():
        kinds[kind] += n
        actors[raw_actor.decode()] += n
    kinds.update(bulk.kinds)
    for raw_actor, n in bulk.actors.items():
        actors[raw_actor.decode()] += n
    st.contended_locks += bulk.contended
    for vid, (since, tdir) in entered.items():  # still in the guest when the log ends
        _leave(times, vid, since, tdir, last_vt)
    for actor, n in actors.items():
        lanes[lane_of(actor)] += n
    header = reader.header
    if header is not None:
        st.scenario, st.variant, st.seed = header.scenario, header.variant, header.seed
    st.events = sum(kinds.values())
    st.steps = max(st.steps, last_step)
    st.vt = max(st.vt, last_vt)
    st.by_kind = {k.decode(): n for k, n in kinds.most_common()}
    st.by_lane = {k: lanes[k] for k in sorted(lanes, key=lane_order)}
    st.exits = dict(exits.most_common())
    st.exits_by_vcpu = {f"vcpu{v}": dict(c.most_common()) for v, c in sorted(exits_by.items())}
    st.dir_emulated = dict(dirs.most_common())
    st.guest_deactivations = dict(deacts.most_common())
    st.kicks = dict(kicks.most_common())
    st.messages = dict(msgs.most_common())
    st.vcpus = {f"vcpu{v}": t for v, t in sorted(times.items())}
    st.problems = reader.problems
    return st


_START = b'{"ev":"'
_KIND = re.compile(rb'\{"ev":"([A-Za-z]+)"')
_ACTOR_LAST = re.compile(rb'"actor":"([^"\n]*)"\}$', re.M)
"""A well-formed line's actor: the last field, as `collect` finds it from the end. No
``^`` in `_KIND`: a literal start lets the regex engine jump from one hit to the next;
`_bulk` trusts the two only on a block whose every line starts with `_START` and gives
each exactly one hit (a second kind in a line would make one more)."""
_DECODE_LINE = re.compile(rb'\{"ev":"(?:' + b"|".join(sorted(_DECODE)) + rb')"[^\n]*')
_CONTENDED = re.compile(rb'\{"ev":"LockAcquired"[^\n]*"contended":true')


class _Bulk:
    """What the block path adds up: kinds and actors apart (`collect` only needs each
    one's totals), and the contended lock acquisitions."""

    def __init__(self) -> None:
        self.kinds: Counter[bytes] = Counter()
        self.actors: Counter[bytes] = Counter()
        self.contended = 0


def _bulk(reader: LogReader, number: int, body: bytes, bulk: _Bulk,
          feed: Callable[[AnyEvent], None]) -> bool:
    """Count a `LogReader.blocks` body that follows line ``number`` in C (kinds and actors
    by a pattern each) and decode only its lines of the
    `_DECODE` kinds; False, having done nothing, unless every line is a well-formed ASCII
    line of a known kind (then the caller takes the block line by line)."""
    lines = body.count(b"\n") + 1
    if not body.isascii() or b"\r" in body or not body.startswith(_START) \
            or body.count(b"\n" + _START) != lines - 1:
        return False
    found = _KIND.findall(body)
    actors = _ACTOR_LAST.findall(body)
    if len(found) != lines or len(actors) != lines:
        return False
    kinds = Counter(found)
    if not kinds.keys() <= _KNOWN:
        return False
    counts = Counter(actors)
    short = not has_long_number(body)
    for m in _DECODE_LINE.finditer(body):
        line = m.group()
        event = reader.try_decode(line) if short else None
        if event is None:
            event = reader.decode(number + body.count(b"\n", 0, m.start()) + 1, line, True)
        if event is None:  # reported: not counted, as on the line-by-line path
            kind = line[7:line.find(b'"', 7)]
            at = line.rfind(b'"actor":"')
            kinds[kind] -= 1
            counts[line[at + 9:line.find(b'"', at + 9)]] -= 1
            continue
        feed(event)
    bulk.kinds.update(kinds)
    bulk.actors.update(counts)
    if _CONTENDED_FIELD in body:
        bulk.contended += len(_CONTENDED.findall(body))
    return True


def _leave(times: dict[int, VcpuTime], vid: int, since: int, tdir: bool, vt: int) -> None:
    t = times.setdefault(vid, VcpuTime())
    t.guest_vt += vt - since
    if tdir:
        t.tdir_vt += vt - since


def _feed(event: AnyEvent, st: Stats, exits: Counter[str], exits_by: dict[int, Counter[str]],
          dirs: Counter[str], deacts: Counter[str], kicks: Counter[str], msgs: Counter[str],
          tdir_now: dict[int, bool], entered: dict[int, tuple[int, bool]],
          times: dict[int, VcpuTime]) -> None:
    match event:
        case GuestExited(vcpu=v, reason=r):
            exits[r] += 1
            exits_by.setdefault(v, Counter())[r] += 1
            if r == "trap":
                st.traps += 1
            if v in entered:
                since, tdir = entered.pop(v)
                _leave(times, v, since, tdir, event.vt)
        case GuestEntered(vcpu=v):
            tdir = tdir_now.get(v, False)
            entered[v] = (event.vt, tdir)
            t = times.setdefault(v, VcpuTime())
            t.entries += 1
            t.tdir_entries += tdir
        case HcrConfigured(vcpu=v, tdir=t):
            tdir_now[v] = t
        case IrqQueued(bcst=True):
            st.broadcasts += 1
        case KickSent(how=h, req=r):
            kicks[h] += 1
            st.broadcast_legs += r >= 0
        case MessageSent(kind=k):
            msgs[k] += 1
            st.maintenance_interrupts += k == "maintenance"
        case DirEmulated(outcome=o):
            dirs[o] += 1
        case GuestDeactivated(how=h, trapped=t):
            deacts[f"{h} {'trapped' if t else 'not trapped'}"] += 1
        case GuestEoied(deactivates=True, trapped=t):  # EOImode 0: EOIR deactivates too
            deacts[f"eoir {'trapped' if t else 'not trapped'}"] += 1
        case IrqfdResampled():
            st.resamples += 1
        case RunEnded(outcome=o):
            st.outcome = o
            st.steps, st.vt = event.step, event.vt


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
