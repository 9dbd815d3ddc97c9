"""Read a run log line by line: bounded memory, located problems, a cheap raw pre-filter.

A log is JSON lines (``vgic_actors.events``), the first a ``RunStarted`` header. The
reader never holds more than one line. A line that does not decode (corrupt, cut
off, an unknown event kind) is a `Problem` located by file and line: with
``strict`` the first one raises `InputError`; otherwise it goes to ``on_problem``
and the line is skipped. Every line starts ``{"ev":"Kind"`` (the tag is encoded
first), so `kind_of` reads an event's kind from the raw bytes without decoding
it, and callers skip most lines before msgspec ever sees them.

The reader is the boundary for untrusted bytes: a line that is not UTF-8, an event
whose ``step`` or ``vt`` is negative or beyond 64 bits, any integer field beyond 64
bits, or an actor name of another shape than the runtime's (``pcpu1``, ``cpu1.ipi``,
``distributor``; not ``vcpu1.`` or ``vcpu``) is a problem like any other, so no view meets
a value it cannot handle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from vgic_actors.errors import InputError
from vgic_actors.events import DECODER, AnyEvent, RunStarted

_PREFIX = b'{"ev":"'
_ACTOR = b'"actor":"'

CHUNK = 1 << 20
"""Bytes read at a time."""
MAX_LINE = 16 << 20
"""A longer line is a problem, skipped without being held (memory stays bounded)."""

INT_MAX = (1 << 63) - 1
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_DIGIT_MAP = bytes(48 if 48 <= c <= 57 else 32 for c in range(256))
_LONG_RUN = b"0" * 19


def has_long_number(data: bytes) -> bool:
    """``data`` holds a run of 19 or more digits (an integer that may not fit 64 bits):
    digits mapped to ``0``, the rest to spaces, then one substring search, far cheaper
    than the regular expression on a whole block."""
    return _LONG_RUN in data.translate(_DIGIT_MAP)

_ACTOR_NAME = re.compile(r"(?:vcpu[0-9]{1,6}|(?:p?cpu[0-9]{1,6}|(?!p?cpu|vcpu)[A-Za-z_]"
                         r"[A-Za-z0-9_-]*)(?:\.[A-Za-z0-9_-]+)*)\Z")
"""What the views assume of an actor: ``vcpuN``; ``pcpuN`` or ``cpuN`` and its mailboxes
(``cpu1.ipi``); else words joined by dots, not starting like a CPU's name."""
MAX_ACTOR = 64
_EXPECTED_GOT = re.compile(r"Expected `([^`]+)`, got `([^`]+)`\Z")
_JSON_TYPES = {"object": "a JSON object", "array": "a JSON array", "int": "an integer",
               "str": "a string", "bool": "true or false", "null": "null", "float": "a float"}

_ARRAY_DECODER: msgspec.json.Decoder[list[AnyEvent | None]] = msgspec.json.Decoder(
    list[AnyEvent])

RawFilter = Callable[[bytes], bool]
"""A necessary condition on a raw line: False means the line can be skipped undecoded."""


def kind_of(line: bytes) -> bytes:
    """The event kind of a raw log line (``b""`` if the line does not start like one)."""
    if line.startswith(_PREFIX):
        end = line.find(b'"', 7)
        if end > 7:
            return line[7:end]
    return b""


def actor_of(line: bytes) -> str:
    """The actor of a raw log line (the last field, so found from the end)."""
    at = line.rfind(_ACTOR)
    if at < 0:
        return ""
    start = at + len(_ACTOR)
    return line[start:line.find(b'"', start)].decode()


@dataclass(frozen=True, slots=True)
class Problem:
    """One line of a log that could not be read, and why."""

    file: str
    line: int
    path: str
    expected: str
    got: str
    column: int = 1

    def error(self) -> InputError:
        """This problem as the error the CLI prints (exit 2)."""
        return InputError(self.file, self.path, self.expected, self.got, line=self.line,
                          column=self.column)

    def message(self) -> str:
        """One line: ``FILE:LINE:COL: $.path: expected ..., got ...``."""
        return self.error().format_message()


ProblemSink = Callable[[Problem], None]


def _ignore(_p: Problem) -> None:
    return None


def problem_of(file: str, number: int, line: bytes, exc: Exception, last: bool) -> Problem:
    """Explain why ``line`` did not decode, in the InputError's terms."""
    text = str(exc)
    if last:
        return Problem(file, number, "$", "a complete event line",
                       "a truncated line (no newline at the end of the file)")
    if isinstance(exc, msgspec.ValidationError):
        what, _, at = text.partition(" - at `")
        path = at.rstrip("`") or "$"
        if path == "$.ev":
            return Problem(file, number, path, "a known event kind",
                           f"{kind_of(line).decode(errors='replace') or what}")
        if "Integer value out of range" in what:
            return Problem(file, number, path, "an integer within 64 bits", "a larger one")
        typed = _EXPECTED_GOT.match(what)
        if typed:
            return Problem(file, number, path, _JSON_TYPES.get(typed[1], typed[1]),
                           _JSON_TYPES.get(typed[2], typed[2]))
        return Problem(file, number, path, "an event as events.py defines it", what)
    column = 1
    if "(byte " in text:
        try:
            column = int(text.rsplit("(byte ", 1)[1].rstrip(")")) + 1
        except ValueError:
            column = 1
    return Problem(file, number, "$", "a JSON object", text, column)


def event_problem(file: str, number: int, line: bytes, event: AnyEvent) -> Problem | None:
    """Why a decoded ``event`` is unfit for the views (None if it is fine)."""
    for name in ("step", "vt"):
        value = getattr(event, name)
        if not 0 <= value <= INT_MAX:
            return Problem(file, number, f"$.{name}", "an integer in 0..2^63-1",
                           _number(value))
    if _LONG_NUMBER.search(line):
        for name in event.__struct_fields__:
            value = getattr(event, name)
            if isinstance(value, int) and not -INT_MAX <= value <= INT_MAX:
                return Problem(file, number, f"$.{name}", "an integer within 64 bits",
                               _number(value))
    actor = event.actor
    if len(actor) > MAX_ACTOR or not _ACTOR_NAME.match(actor):
        return Problem(file, number, "$.actor", "an actor name (vcpuN, pcpuN, cpuN.mailbox or "
                       f"other words joined by dots; at most {MAX_ACTOR} characters)",
                       repr(actor[:MAX_ACTOR]))
    return None


def _number(value: int) -> str:
    if abs(value) < 10**20:
        return str(value)
    if value.bit_length() > 13_000:  # str() refuses beyond 4300 digits
        return "an integer of more than 3900 digits"
    return f"an integer of {len(str(abs(value)))} digits"


class LogReader:
    """One pass (or several) over a log file; iterate `lines` or `events`.

    ``header`` is the ``RunStarted`` line once the first pass has read it (None if
    the log has none: reported as a problem). ``problems`` counts skipped lines.
    """

    def __init__(self, path: str | Path, *, strict: bool = False,
                 on_problem: ProblemSink | None = None) -> None:
        self.path = Path(path)
        self.file = str(path)
        self.strict = strict
        self.on_problem = on_problem or _ignore
        self.header: RunStarted | None = None
        self.problems = 0
        self._reported: set[int] = set()
        self._actors: set[str] = set()

    def report(self, problem: Problem) -> None:
        """Raise it (strict) or hand it on once (the same line on a later pass is quiet)."""
        if self.strict:
            raise problem.error()
        self.problems += problem.line not in self._reported
        if problem.line not in self._reported:
            self._reported.add(problem.line)
            self.on_problem(problem)

    def decode(self, number: int, line: bytes, complete: bool, *, short: bool = False
               ) -> AnyEvent | None:
        """The event on ``line``, or None after reporting why it cannot be used
        (``short``: the caller checked that the line has no 19-digit run)."""
        try:
            event: AnyEvent = DECODER.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.report(problem_of(self.file, number, line, exc, not complete))
            return None
        if event.actor in self._actors and 0 <= event.step <= INT_MAX \
                and 0 <= event.vt <= INT_MAX and (short or not has_long_number(line)):
            return event
        problem = event_problem(self.file, number, line, event)
        if problem is not None:
            self.report(problem)
            return None
        self._actors.add(event.actor)
        return event

    def try_decode(self, line: bytes) -> AnyEvent | None:
        """The event on ``line`` when it decodes and passes the cheap checks (an actor
        already seen, step and vt in range; the caller checked that no 19-digit run is
        there); else None, reporting nothing: then `decode` it for the verdict."""
        try:
            event: AnyEvent = DECODER.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if event.actor in self._actors and 0 <= event.step <= INT_MAX \
                and 0 <= event.vt <= INT_MAX:
            return event
        return None

    def try_decode_all(self, joined: bytes, count: int) -> list[AnyEvent | None] | None:
        """`try_decode` of ``count`` lines joined by commas (the caller checked that no
        19-digit run is there), in one decoder call, reporting nothing: None unless they
        decode to ``count`` events, else each line's event, or None for one that fails
        the cheap checks."""
        try:
            events: list[AnyEvent | None] = _ARRAY_DECODER.decode(b"[" + joined + b"]")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
        if len(events) != count:  # a line held more than one value
            return None
        if b":-" not in joined and {e.actor for e in events if e is not None} <= self._actors:
            return events  # no negative number, none of 19 digits: step and vt in range
        for index, event in enumerate(events):
            if event is not None and (event.actor not in self._actors or not (
                    0 <= event.step <= INT_MAX and 0 <= event.vt <= INT_MAX)):
                events[index] = None
        return events

    def lines(self, keep: RawFilter | None = None, *, anchor: re.Pattern[bytes] | None = None
              ) -> Iterator[tuple[int, bytes, bool]]:
        """``(line number, raw line without its newline, complete)`` for each non-blank
        line (the first always; the others only if ``keep`` accepts them); ``complete`` is
        False only for a last line with no newline. Reads 1 MiB blocks (`blocks`).

        ``anchor``: a pattern every kept line other than the first contains (a necessary
        condition, like ``keep``): each block is searched for it and only the lines it
        hits are looked at, so a selective filter costs a scan in C per block instead of
        Python work per line."""
        first = True
        for number, body, complete, _ in self.blocks():
            if not complete:
                if not body.isspace() and (first or (
                        (anchor is None or anchor.search(body))
                        and (keep is None or keep(body)))) and self._utf8(number + 1, body):
                    yield number + 1, body, False
            elif anchor is not None:
                if first:  # the header line by line, then the rest of its block anchored
                    cut = body.find(b"\n")
                    first = yield from self.split(number, body if cut < 0 else body[:cut],
                                                  keep, first)
                    if cut < 0:
                        continue
                    number, body = number + 1, body[cut + 1:]
                    if first:  # a blank first line: the header is still to come
                        first = yield from self.split(number, body, keep, first)
                        continue
                for at, line in self._anchored(anchor, body, len(body), number, keep):
                    yield at, line, True
            else:
                first = yield from self.split(number, body, keep, first)

    def blocks(self) -> Iterator[tuple[int, bytes, bool, int]]:
        """``(lines before it, body, complete, newlines in body)``: the file in blocks of
        about `CHUNK` bytes, each body a run of whole lines without its last newline
        (``complete``), and at the end a last line with no newline (not complete). Memory
        is one block plus the longest line, at most `MAX_LINE` (a longer one is reported
        and skipped)."""
        try:
            fh = self.path.open("rb")
        except OSError as exc:
            raise InputError(self.file, "$", "a readable log file",
                             exc.strerror or type(exc).__name__) from None
        with fh:
            number = 0
            rest = b""
            skipping = False  # inside a line longer than MAX_LINE, already reported
            for block in iter(lambda: fh.read(CHUNK), b""):
                if skipping:
                    end = block.find(b"\n")
                    if end < 0:
                        continue
                    block, skipping, number = block[end + 1:], False, number + 1
                cut = block.rfind(b"\n")
                if cut < 0:
                    rest += block
                else:  # one copy: the line carried over, then the block up to its last newline
                    body = b"".join((rest, memoryview(block)[:cut])) if rest else block[:cut]
                    rest = block[cut + 1:]
                    newlines = body.count(b"\n")
                    yield number, body, True, newlines
                    number += newlines + 1
                if len(rest) > MAX_LINE:
                    self.report(Problem(self.file, number + 1, "$",
                                        f"a line of at most {MAX_LINE} bytes", "a longer one"))
                    rest, skipping = b"", True
            if rest:
                yield number, rest, False, 0

    def split(self, number: int, body: bytes, keep: RawFilter | None = None,
              first: bool = False) -> Generator[tuple[int, bytes, bool], None, bool]:
        """The non-blank UTF-8 lines of a `blocks` body that follows line ``number`` and
        pass ``keep`` (the first non-blank one whatever ``keep`` says, if ``first``); a
        trailing CR is dropped. Returns whether ``first`` still holds."""
        for line in body.split(b"\n"):
            number += 1
            if first or keep is None or keep(line):
                if line[-1:] == b"\r":
                    line = line[:-1]
                if line and not line.isspace() and self._utf8(number, line):
                    first = False
                    yield number, line, True
        return first

    def _anchored(self, anchor: re.Pattern[bytes], data: bytes, cut: int, number: int,
                  keep: RawFilter | None) -> Iterator[tuple[int, bytes]]:
        """The lines of ``data[:cut]`` (whole lines that follow line ``number``) that
        contain a hit of ``anchor`` and pass ``keep``, with their numbers."""
        pos = 0  # start of the line ``number + 1``
        done = -1  # end of the last line looked at (one hit per line)
        for m in anchor.finditer(data, 0, cut):
            hit = m.start()
            if hit < done:
                continue
            start = data.rfind(b"\n", 0, hit) + 1
            end = data.find(b"\n", hit, cut)
            if end < 0:
                end = cut
            done = end
            number += data.count(b"\n", pos, start)
            pos = start
            line = data[start:end]
            if line[-1:] == b"\r":
                line = line[:-1]
            if (keep is None or keep(line)) and line and not line.isspace() \
                    and self._utf8(number + 1, line):
                yield number + 1, line

    def _utf8(self, number: int, line: bytes) -> bool:
        """True if ``line`` is UTF-8 text; else its first bad byte is reported."""
        if line.isascii():
            return True
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.report(Problem(self.file, number, "$", "UTF-8 text",
                                f"byte 0x{line[exc.start]:02x}", exc.start + 1))
            return False
        return True

    def events(self, keep: RawFilter | None = None, *, anchor: re.Pattern[bytes] | None = None
               ) -> Iterator[tuple[int, bytes, AnyEvent]]:
        """``(line number, raw line, event)`` for each line that decodes and passes ``keep``
        (and contains ``anchor``: see `lines`).

        The header is always decoded and checked, whatever ``keep`` says, and is
        yielded only if ``keep`` accepts it. A final line without its newline is a
        truncated write (a run killed mid-line) unless it still decodes.
        """
        first = True
        for number, line, complete in self.lines(keep, anchor=anchor):
            if first:
                first = False
                header = self._header(number, line, complete)
                if header is not None and (keep is None or keep(line)):
                    yield number, line, header
                continue
            event = self.decode(number, line, complete)
            if event is not None:
                yield number, line, event

    def _header(self, number: int, line: bytes, complete: bool) -> AnyEvent | None:
        event = self.decode(number, line, complete)
        if event is None:
            return None
        if isinstance(event, RunStarted):
            self.header = event
        else:
            self.report(Problem(self.file, number, "$.ev", "a RunStarted header line",
                                type(event).__name__))
        return event

    def require_header(self) -> RunStarted:
        """The header, or `InputError` (exit 2) when the file is not a run log at all: empty,
        or its first line is not a ``RunStarted`` event (a soak's results.jsonl, say)."""
        expected = "a run log (a RunStarted header line first)"
        for number, line, complete in self.lines():
            try:
                event = DECODER.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                problem = problem_of(self.file, number, line, exc, not complete)
                raise InputError(self.file, problem.path, expected, problem.got,
                                 line=number, column=problem.column) from None
            if not isinstance(event, RunStarted):
                raise InputError(self.file, "$.ev", expected, type(event).__name__,
                                 line=number)
            self.header = event
            return event
        raise InputError(self.file, "$", expected, "an empty file")

    def read_header(self) -> RunStarted | None:
        """Read just the header line (and report it if missing or bad)."""
        for number, line, complete in self.lines():
            self._header(number, line, complete)
            break
        return self.header
