"""``logs diff A B``: align two runs event by event and report the first divergence.

The headers are compared field by field (a different variant or seed is stated,
not a divergence). The events after them are walked in lockstep, both files
streaming; two events match when their lines are equal byte for byte, or, with
``ignore_fields``, equal without those fields. ``ignore_kinds`` drops kinds from
both sides before aligning (``ActorStepped`` to compare only what the kernel did).
Memory: the ``context`` events before the divergence and after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import msgspec

from vgic_actors.events import AnyEvent, RunStarted
from vgic_actors.logs.describe import row
from vgic_actors.logs.reader import LogReader, kind_of

_HEADER_FIELDS = ("tool_version", "scenario", "digest", "variant", "seed", "strategy")


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """Where two runs part: the index of the first differing event (after the header,
    counting only compared kinds), its lines in each file, and rows to show."""

    index: int
    line_a: int
    line_b: int
    step: int
    before: list[str]
    after_a: list[str]
    after_b: list[str]
    reason: str


class DiffResult(msgspec.Struct, frozen=True, kw_only=True):
    """Header differences and the first divergence (None: the runs are the same)."""

    a: str
    b: str
    header: dict[str, list[str]]
    compared: int
    divergence: Divergence | None

    @property
    def same(self) -> bool:
        """The event streams match (headers may still differ)."""
        return self.divergence is None


def _stream(reader: LogReader, ignore_kinds: frozenset[str]
            ) -> Iterator[tuple[int, bytes, AnyEvent]]:
    skip = {k.encode() for k in ignore_kinds}

    def keep(line: bytes) -> bool:
        return kind_of(line) not in skip

    for number, line, event in reader.events(keep if skip else None):
        if not isinstance(event, RunStarted):
            yield number, line, event


def _key(line: bytes, event: AnyEvent, ignore: frozenset[str]) -> object:
    if not ignore:
        return line
    raw = msgspec.structs.asdict(event)
    return (type(event).__name__,
            tuple((k, repr(v)) for k, v in raw.items() if k not in ignore))


def diff(a: LogReader, b: LogReader, *, context: int = 5,
         ignore_kinds: frozenset[str] = frozenset(),
         ignore_fields: frozenset[str] = frozenset()) -> DiffResult:
    """Compare the two logs; stops reading at the divergence plus ``context`` events."""
    sa, sb = _stream(a, ignore_kinds), _stream(b, ignore_kinds)
    before: deque[str] = deque(maxlen=context)
    index = 0
    divergence: Divergence | None = None
    while True:
        ea, eb = next(sa, None), next(sb, None)
        if ea is None and eb is None:
            break
        if ea is not None and eb is not None and \
                _key(ea[1], ea[2], ignore_fields) == _key(eb[1], eb[2], ignore_fields):
            before.append(row(ea[0], ea[2]))
            index += 1
            continue
        after_a = [row(n, e) for n, _l, e in _take(ea, sa, context)]
        after_b = [row(n, e) for n, _l, e in _take(eb, sb, context)]
        if ea is None or eb is None:
            reason = f"{a.file if ea is None else b.file} ends here"
        else:
            reason = _why(ea[2], eb[2])
        divergence = Divergence(
            index=index, line_a=ea[0] if ea else 0, line_b=eb[0] if eb else 0,
            step=(ea or eb)[2].step if (ea or eb) else 0,  # type: ignore[index]
            before=list(before), after_a=after_a, after_b=after_b, reason=reason)
        break
    return DiffResult(a=a.file, b=b.file, header=_header_diff(a.header, b.header),
                      compared=index, divergence=divergence)


def _take(first: tuple[int, bytes, AnyEvent] | None,
          rest: Iterator[tuple[int, bytes, AnyEvent]], n: int
          ) -> Iterator[tuple[int, bytes, AnyEvent]]:
    if first is None:
        return
    yield first
    for _ in range(n - 1):
        nxt = next(rest, None)
        if nxt is None:
            return
        yield nxt


def _why(ea: AnyEvent, eb: AnyEvent) -> str:
    if type(ea) is not type(eb):
        return f"{type(ea).__name__} in A, {type(eb).__name__} in B"
    da, db = msgspec.structs.asdict(ea), msgspec.structs.asdict(eb)
    fields = [k for k in da if da[k] != db.get(k)]
    return f"{type(ea).__name__}: " + ", ".join(f"{k} {da[k]!r} vs {db.get(k)!r}"
                                                for k in fields)


def _header_diff(ha: RunStarted | None, hb: RunStarted | None) -> dict[str, list[str]]:
    if ha is None or hb is None:
        return {} if ha is hb else {"header": [str(ha is not None), str(hb is not None)]}
    return {f: [str(getattr(ha, f)), str(getattr(hb, f))] for f in _HEADER_FIELDS
            if getattr(ha, f) != getattr(hb, f)}


def render(result: DiffResult) -> str:
    """The human report."""
    out = [f"A: {result.a}", f"B: {result.b}"]
    out += [f"header {k}: {va} vs {vb}" for k, (va, vb) in result.header.items()]
    d = result.divergence
    if d is None:
        out.append(f"same: {result.compared} events match")
        return "\n".join(out)
    out += [f"first divergence after {d.index} matching events, at step {d.step} "
            f"(A line {d.line_a}, B line {d.line_b}): {d.reason}", "", "common before:"]
    out += ["  " + r for r in d.before] or ["  (nothing)"]
    out += ["", "A then:"] + ["  " + r for r in d.after_a or ["(end of log)"]]
    out += ["", "B then:"] + ["  " + r for r in d.after_b or ["(end of log)"]]
    return "\n".join(out)
