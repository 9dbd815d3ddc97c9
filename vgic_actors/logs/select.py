"""``logs filter``: keep the events a question is about, stream them on unchanged.

A `Selector` is built once from the options (vCPU, pCPU, INTID, kinds, step and
virtual-time ranges, ``FIELD OP VALUE`` predicates) and is then two functions:
`Selector.raw`, a necessary condition on the raw line (substring tests, no
decoding), and `Selector.match`, the exact test on the decoded event. A vCPU, pCPU or
INTID criterion also gives `Selector.anchor`, the substring as a pattern the reader
searches whole blocks for, so only the lines holding it are looked at in Python. Kept lines
are written back byte for byte, so the output is a valid log for ``jq`` or any
other subcommand.
"""

from __future__ import annotations

import operator
import re
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from vgic_actors.errors import UsageError
from vgic_actors.events import (
    AnyEvent,
    HcrConfigured,
    IpisHandled,
    MessageDelivered,
    RunStarted,
)
from vgic_actors.logs.describe import ROW_HEADER, lane_of, row
from vgic_actors.logs.reader import LogReader, kind_of

EVENT_TYPES: dict[str, type[msgspec.Struct]] = {t.__name__: t for t in typing.get_args(AnyEvent)}
"""Every event class by its tag."""

FIELDS: frozenset[str] = frozenset(
    f for t in EVENT_TYPES.values() for f in t.__struct_fields__)
"""Every field name any event has."""

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "!=": operator.ne, ">=": operator.ge, "<=": operator.le,
    "=": operator.eq, ">": operator.gt, "<": operator.lt,
}


@dataclass(frozen=True, slots=True)
class Predicate:
    """``FIELD OP VALUE``: an event without FIELD does not match."""

    field: str
    op: str
    value: object

    def __call__(self, event: AnyEvent) -> bool:
        got = getattr(event, self.field, _MISSING)
        if got is _MISSING:
            return False
        try:
            return bool(_OPS[self.op](got, self.value))
        except TypeError:
            return False


_MISSING = object()


def parse_predicate(text: str) -> Predicate:
    """``intid=32``, ``vt>=100``, ``how!=none``, ``tdir=true``; the value is JSON if it
    parses (numbers, true/false), else a string."""
    for op in ("!=", ">=", "<=", "=", ">", "<"):
        name, sep, value = text.partition(op)
        if sep and name:
            name = name.strip()
            if name not in FIELDS:
                raise UsageError(f"--where {text}: no event has a field {name!r} "
                                 f"(fields: {', '.join(sorted(FIELDS))})")
            try:
                parsed: object = msgspec.json.decode(value.strip())
            except msgspec.DecodeError:
                parsed = value.strip()
            return Predicate(name, op, parsed)
    raise UsageError(f"--where {text}: expected FIELD=VALUE (or !=, >=, <=, >, <)")


def parse_range(text: str, what: str) -> tuple[int | None, int | None]:
    """``A:B`` (inclusive; either side may be empty) or a single ``N``."""
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            return int(lo), int(lo)
        return (int(lo) if lo.strip() else None, int(hi) if hi.strip() else None)
    except ValueError:
        raise UsageError(f"--{what} {text}: expected A:B, A:, :B or N (integers)") from None


def parse_kinds(specs: Iterable[str]) -> frozenset[str]:
    """Event kinds, comma separated and repeatable; each must exist."""
    kinds = frozenset(k.strip() for s in specs for k in s.split(",") if k.strip())
    unknown = sorted(kinds - EVENT_TYPES.keys())
    if unknown:
        raise UsageError(f"--kind: unknown event kind {', '.join(unknown)} "
                         f"(kinds: {', '.join(sorted(EVENT_TYPES))})")
    return kinds


@dataclass(frozen=True)
class Selector:
    """What to keep. Every given criterion must hold (AND)."""

    vcpu: int | None = None
    pcpu: int | None = None
    intid: int | None = None
    kinds: frozenset[str] = frozenset()
    steps: tuple[int | None, int | None] = (None, None)
    vts: tuple[int | None, int | None] = (None, None)
    where: tuple[Predicate, ...] = ()
    _needles: tuple[tuple[bytes, ...], ...] = field(init=False, default=())
    _kinds: frozenset[bytes] = field(init=False, default=frozenset())
    anchor: re.Pattern[bytes] | None = field(init=False, default=None)
    """The first substring criterion as a pattern (`LogReader.lines`), if any."""

    def __post_init__(self) -> None:
        needles: list[tuple[bytes, ...]] = []
        if self.vcpu is not None:
            needles.append((b'"vcpu":%d' % self.vcpu,))
        if self.intid is not None:
            needles.append((b'"intid":%d' % self.intid, b"HcrConfigured"))
        if self.pcpu is not None:
            needles.append((b"cpu%d" % self.pcpu,))
        object.__setattr__(self, "_needles", tuple(needles))
        object.__setattr__(self, "_kinds", frozenset(k.encode() for k in self.kinds))
        if needles:
            object.__setattr__(self, "anchor", re.compile(
                b"|".join(re.escape(n) for n in needles[0])))

    @property
    def everything(self) -> bool:
        """No criterion at all: every line is kept."""
        return (self.vcpu is None and self.pcpu is None and self.intid is None
                and not self.kinds and self.steps == (None, None)
                and self.vts == (None, None) and not self.where)

    def raw(self, line: bytes) -> bool:
        """A necessary condition on the undecoded line (cheap substring tests)."""
        if self._kinds and kind_of(line) not in self._kinds:
            return False
        return all(any(n in line for n in alts) for alts in self._needles)

    def match(self, event: AnyEvent) -> bool:
        """The exact test on the decoded event."""
        if self.kinds and type(event).__name__ not in self.kinds:
            return False
        if self.vcpu is not None and getattr(event, "vcpu", None) != self.vcpu:
            return False
        if self.intid is not None and getattr(event, "intid", None) != self.intid and not (
                isinstance(event, HcrConfigured) and self.intid in event.lrs):
            return False
        if self.pcpu is not None and not self._on_pcpu(event):
            return False
        lo, hi = self.steps
        if (lo is not None and event.step < lo) or (hi is not None and event.step > hi):
            return False
        lo, hi = self.vts
        if (lo is not None and event.vt < lo) or (hi is not None and event.vt > hi):
            return False
        return all(p(event) for p in self.where)

    def _on_pcpu(self, event: AnyEvent) -> bool:
        me = f"pcpu{self.pcpu}"
        if lane_of(event.actor) == me:
            return True
        if isinstance(event, IpisHandled):
            return event.cpu == self.pcpu
        return isinstance(event, MessageDelivered) and lane_of(event.dst) == me


def select(reader: LogReader, selector: Selector, *, keep_header: bool = False
           ) -> Iterator[tuple[int, bytes, AnyEvent]]:
    """The events ``selector`` keeps, with their line numbers and raw lines
    (``keep_header``: and the ``RunStarted`` line, whatever the selector says)."""
    if selector.everything:
        yield from reader.events()
        return
    match, raw = selector.match, selector.raw
    if keep_header:
        def keep(line: bytes) -> bool:
            return line.startswith(_HEADER) or raw(line)
    else:
        keep = raw
    for number, line, event in reader.events(keep, anchor=selector.anchor):
        if match(event) or (keep_header and isinstance(event, RunStarted)):
            yield number, line, event


_HEADER = b'{"ev":"RunStarted"'


def write_filtered(reader: LogReader, selector: Selector, write: Callable[[bytes], object],
                   *, pretty: bool = False, header: bool = True) -> int:
    """Write the kept events (raw JSON lines, or a table with ``pretty``); return how many
    were kept. ``header``: JSON lines start with the log's ``RunStarted`` line whatever
    the selector says, so the output is itself a log the other subcommands read."""
    n = 0
    if pretty:
        write(ROW_HEADER.encode() + b"\n")
    out: list[bytes] = []
    for number, line, event in select(reader, selector, keep_header=header and not pretty):
        if not isinstance(event, RunStarted) or selector.match(event):
            n += 1
        out.append((row(number, event) + "\n").encode() if pretty else line + b"\n")
        if len(out) >= 1024:
            write(b"".join(out))
            out.clear()
    if out:
        write(b"".join(out))
    return n
