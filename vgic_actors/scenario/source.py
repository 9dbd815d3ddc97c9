"""YAML text to plain data, remembering where every value came from: the untrusted-text boundary.

Each value is reachable by a ``$.a.b[0]`` path (the notation msgspec uses in its
errors); ``Source.where(path)`` gives the line and column of the nearest
enclosing node, so every error names file:line:column and the path. Lines are
counted by ``\\n`` only, as editors and ``grep -n`` count them: a NEL, a lone CR
or a U+2028 earlier in the file does not shift them.

The data is built straight from PyYAML's event stream (its parser is iterative,
so no input can exhaust the Python stack) under limits that bound the work any
file can ask for: ``MAX_FILE_BYTES``, ``MAX_DEPTH`` nested lists or mappings,
``MAX_VALUES`` values after alias expansion (a "billion laughs" file stops
there), integers within 64 bits. Types are exact: a plain scalar is null,
true/false, a decimal, ``0x``/``0o``/``0b`` integer in ASCII digits, a float,
or text. Nothing else is implicit (``2001-02-30`` is text, not a date) and
explicit tags (``!!int "abc"``) are refused. The YAML 1.1 boolean words
(yes/no/on/off) and leading-zero integers (octal in YAML 1.1, decimal in 1.2)
are refused as ambiguous; duplicate keys, lone surrogates and non-UTF-8 bytes
are errors too.
"""

from __future__ import annotations

import bisect
import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
)

from vgic_actors.errors import InputError

MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 64
MAX_VALUES = 100_000
INT_LIMIT = 1 << 64  # integers lie in -2^64 < n < 2^64

_YAML11_BOOL = frozenset(w for base in ("yes", "no", "on", "off")
                         for w in (base, base.capitalize(), base.upper()))
_NULL = frozenset(("", "~", "null", "Null", "NULL"))
_TRUE = frozenset(("true", "True", "TRUE"))
_FALSE = frozenset(("false", "False", "FALSE"))
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9_]*|0x_*[0-9a-fA-F][0-9a-fA-F_]*|0o_*[0-7][0-7_]*"
                  r"|0b_*[01][01_]*)\Z")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+\Z")
_FLOAT = re.compile(r"[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)?\Z"
                    r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+\Z|[-+]?\.(?:inf|Inf|INF)\Z"
                    r"|\.(?:nan|NaN|NAN)\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class Missing:
    """The value of a field that is absent (``describe`` says "nothing", not "null")."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = Missing()


def child_path(path: str, key: object) -> str:
    """The path of ``key`` under ``path``: ``$.vm.vcpus``, ``$.guests.vcpu0[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    return f"{path}.{text}" if _PLAIN_KEY.match(text) else f"{path}[{text!r}]"


def describe(value: object) -> str:
    """A short rendering of a found value for error messages."""
    if value is MISSING:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, int) and abs(value) >= 10**40:
        return "an integer of more than 40 digits"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class Source:
    """A parsed YAML file: its data and the position of every path in it."""

    file: str
    data: Any
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: str) -> tuple[int, int]:
        """(line, column), 1-based, of ``path`` or of its nearest recorded ancestor."""
        probe = path
        while probe not in self.marks and probe != "$":
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else "$"
        return self.marks.get(probe, (1, 1))

    def error(self, path: str, expected: str, got: str, *, at_key: bool = False) -> InputError:
        """An InputError located at ``path``'s value (``at_key``: at its key, if a mapping
        key: for unknown or misplaced keys)."""
        line, column = self.key_marks.get(path) or self.where(path) if at_key else self.where(path)
        return InputError(self.file, path, expected, got, line=line, column=column)


def load_source(text: str, file: str) -> Source:
    """Parse one YAML document into a Source (InputError on any YAML problem or limit)."""
    lines = _Lines(text)
    src = Source(file=file, data=None)
    try:
        src.data = _Builder(src, lines).build(yaml.parse(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = lines.at(mark.index) if mark else (1, 1)
        raise InputError(file, "$", "valid YAML" + yaml_hint(exc.problem or ""),
                         exc.problem or "a syntax error", line=line, column=column) from None
    except yaml.reader.ReaderError as exc:
        line, column = lines.at(exc.position)
        raise InputError(file, "$", "printable YAML text",
                         f"control character {exc.character!r}", line=line,
                         column=column) from None
    except yaml.YAMLError as exc:
        raise InputError(file, "$", "valid YAML", str(exc).splitlines()[0]) from None
    return src


_HINTS = {
    "mapping values are not allowed here": " (a plain value may not hold ': ': quote it, "
    "as in description: \"a: b\")",
    "found character '\\t' that cannot start any token": " (indent with spaces, not tabs)",
    "found undefined alias": " (an alias *name needs an anchor &name before it)",
}


def yaml_hint(problem: str) -> str:
    """A hint for a YAML syntax error people often make, or nothing."""
    return next((hint for text, hint in _HINTS.items() if problem.startswith(text)), "")


def read_text(path: Path, what: str = "scenario file", limit: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped), at most ``limit`` bytes;
    InputError naming the first byte that is not UTF-8."""
    try:
        with path.open("rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise InputError(str(path), "$", f"an existing {what}", "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "$", f"a {what}", "a directory") from None
    except OSError as exc:
        raise InputError(str(path), "$", f"a readable {what}",
                         exc.strerror or type(exc).__name__) from None
    if len(raw) > limit:
        raise InputError(str(path), "$", f"a {what} of at most {limit} bytes", "a larger file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[start:exc.start].decode("utf-8", "replace")) + 1
        raise InputError(str(path), "$", "UTF-8 text", f"byte 0x{raw[exc.start]:02x}",
                         line=line, column=column) from None
    return text.removeprefix("\ufeff")


def load_file(path: Path) -> Source:
    """Read and parse ``path`` (InputError if it cannot be read, decoded or parsed)."""
    return load_source(read_text(path), str(path))


class _Lines:
    """Character offsets to (line, column), counting ``\\n`` only."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1


@dataclass
class _Frame:
    """An open list or mapping while its events stream in."""

    value: list[Any] | dict[Any, Any]
    path: str
    anchor: str | None
    first_value: int
    key: Any = MISSING
    key_path: str = ""


class _Builder:
    """Plain data from parser events, under the limits; marks recorded in the Source."""

    def __init__(self, src: Source, lines: _Lines) -> None:
        self.src, self.lines = src, lines
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.values = 0
        self.root: Any = None
        self.documents = 0

    def mark(self, event: Event) -> tuple[int, int]:
        """(line, column) where ``event`` starts."""
        return self.lines.at(event.start_mark.index if event.start_mark else 0)

    def error(self, event: Event, path: str, expected: str, got: str) -> InputError:
        line, column = self.mark(event)
        return InputError(self.src.file, path, expected, got, line=line, column=column)

    def build(self, events: Any) -> Any:
        for event in events:
            if isinstance(event, DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.error(event, "$", "a single YAML document", "a second one")
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                frame = self.stack.pop()
                if frame.anchor is not None:
                    self.anchors[frame.anchor] = (frame.value, self.values - frame.first_value)
                self.place(frame.value)
            elif isinstance(event, NodeEvent):
                self.node(event)
        return self.root

    def node(self, event: NodeEvent) -> None:
        top = self.stack[-1] if self.stack else None
        if isinstance(top, _Frame) and isinstance(top.value, dict) and top.key is MISSING:
            self.key(event, top)
            return
        if top is None:
            path = "$"
        elif isinstance(top.value, list):
            path = child_path(top.path, len(top.value))
        else:
            path = top.key_path
        self.count(event, path, 1)
        self.src.marks.setdefault(path, self.mark(event))
        if isinstance(event, AliasEvent):
            self.place(self.alias(event, path))
        elif isinstance(event, CollectionStartEvent):
            self.check_tag(event, path)
            if len(self.stack) >= MAX_DEPTH:
                raise self.error(event, path, f"lists and mappings nested at most {MAX_DEPTH} "
                                 "deep", "deeper nesting")
            value: list[Any] | dict[Any, Any] = (
                {} if isinstance(event, MappingStartEvent) else [])
            self.stack.append(_Frame(value, path, event.anchor, self.values))
        else:
            assert isinstance(event, ScalarEvent)
            scalar = self.scalar(event, path)
            if event.anchor is not None:
                self.anchors[event.anchor] = (scalar, 1)
            self.place(scalar)

    def key(self, event: NodeEvent, frame: _Frame) -> None:
        if not isinstance(event, ScalarEvent):
            raise self.error(event, frame.path, "plain mapping keys", "a complex key")
        kpath = child_path(frame.path, event.value)
        key = self.scalar(event, kpath)
        if isinstance(key, bool | float) or key is None:
            raise self.error(event, kpath, "a text or integer key", describe(key))
        kpath = child_path(frame.path, key)
        assert isinstance(frame.value, dict)
        self.src.key_marks.setdefault(kpath, self.mark(event))
        if key in frame.value:
            raise self.error(event, kpath, "each key once", "a duplicate key")
        frame.key, frame.key_path = key, kpath

    def place(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        else:
            top.value[top.key] = value
            top.key = MISSING

    def count(self, event: Event, path: str, n: int) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise self.error(event, path, f"at most {MAX_VALUES} values (after YAML aliases are "
                             "expanded)", "more")

    def alias(self, event: AliasEvent, path: str) -> Any:
        name = event.anchor
        if name not in self.anchors:
            raise self.error(event, path, "an alias to a value completed before it",
                             f"*{name}" + (" inside its own anchor" if any(
                                 f.anchor == name for f in self.stack) else ""))
        value, size = self.anchors[name]
        self.count(event, path, size - 1)
        return copy.deepcopy(value)

    def check_tag(self, event: NodeEvent, path: str) -> None:
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith(
                "tag:yaml.org,2002:") else tag
            raise self.error(event, path, "a value without a YAML tag (the field decides "
                             "its type)", repr(shown))

    def scalar(self, event: ScalarEvent, path: str) -> Any:
        self.check_tag(event, path)
        text = event.value
        if event.style is not None:  # quoted or block: text
            return self.text(event, path, text)
        if text in _YAML11_BOOL:
            raise self.error(event, path, "an unambiguous value (YAML 1.1 reads a bare "
                             f"{text!r} as a boolean: write true or false, or quote it as "
                             "text)", repr(text))
        if text in _NULL:
            return None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        if _LEADING_ZERO.match(text):
            raise self.error(event, path, "an unambiguous integer (YAML 1.1 reads a leading "
                             f"zero as octal: write {text.lstrip('+-0_') or '0'} or 0o...)",
                             repr(text))
        if _INT.match(text):
            return self.integer(event, path, text)
        if _FLOAT.match(text):  # .inf and .nan are YAML's spellings of Python's inf, nan
            return float(text.replace("_", "").lower().replace(".inf", "inf").replace(
                ".nan", "nan"))
        return self.text(event, path, text)

    def integer(self, event: ScalarEvent, path: str, text: str) -> int:
        digits = text.replace("_", "").lstrip("+-")
        too_big = len(digits) > 70
        if not too_big:
            value = int(text.replace("_", ""), 0)
            too_big = abs(value) >= INT_LIMIT
        if too_big:
            raise self.error(event, path, "an integer of at most 64 bits",
                             describe(text))
        return value

    def text(self, event: ScalarEvent, path: str, text: str) -> str:
        bad = _SURROGATE.search(text)
        if bad:
            raise self.error(event, path, "text without lone surrogates (U+D800..U+DFFF)",
                             f"U+{ord(bad.group()):04X} in {describe(text)}")
        return text
