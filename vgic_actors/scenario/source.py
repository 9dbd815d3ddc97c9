"""YAML text to plain data, remembering where every value came from.

Each value is reachable by a ``$.a.b[0]`` path (the notation msgspec uses in its
errors); ``Source.where(path)`` gives the line and column of the nearest
enclosing node, so every error names file:line:column and the path. Plain
scalars that YAML 1.1 reads as booleans (yes/no/on/off) are rejected with a
hint: ``on: 1`` silently becoming ``True: 1`` is the classic YAML trap.
Duplicate keys are errors too (PyYAML keeps the last one silently).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vgic_actors.errors import InputError

_YAML11_BOOL = re.compile(r"^(yes|no|on|off|y|n)$", re.IGNORECASE)
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def child_path(path: str, key: object) -> str:
    """The path of ``key`` under ``path``: ``$.vm.vcpus``, ``$.guests.vcpu0[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    text = str(key)
    return f"{path}.{text}" if _PLAIN_KEY.match(text) else f"{path}[{text!r}]"


def describe(value: object) -> str:
    """A short rendering of a found value for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
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
    """Parse one YAML document into a Source (InputError on any YAML problem)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InputError(file, "$", "valid YAML", exc.problem or "a syntax error",
                         line=line, column=column) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise InputError(file, "$", "printable YAML text",
                         f"control character {exc.character!r}", line=line,
                         column=column) from None
    except yaml.YAMLError as exc:
        raise InputError(file, "$", "valid YAML", str(exc).splitlines()[0]) from None
    src = Source(file=file, data=None)
    if node is None:
        src.data = None
        return src
    src.data = _build(node, "$", src, SafeConstructor())
    return src


def load_file(path: Path) -> Source:
    """Read and parse ``path`` (InputError if it cannot be read or decoded)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "$", "an existing scenario file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "$", "a readable UTF-8 file",
                         type(exc).__name__) from None
    return load_source(text, str(path))


def _scalar(node: ScalarNode, path: str, src: Source, ctor: SafeConstructor) -> Any:
    if node.style is None and node.tag.endswith(":bool") and _YAML11_BOOL.match(node.value):
        line, column = node.start_mark.line + 1, node.start_mark.column + 1
        raise InputError(src.file, path, "true or false (YAML 1.1 reads "
                         f"{node.value!r} as a boolean; quote it if you mean text)",
                         repr(node.value), line=line, column=column)
    try:
        return ctor.construct_object(node)
    except ConstructorError as exc:
        raise src.error(path, "a valid scalar", exc.problem or node.value) from None


def _build(node: Node, path: str, src: Source, ctor: SafeConstructor) -> Any:
    src.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, ScalarNode):
        return _scalar(node, path, src, ctor)
    if isinstance(node, SequenceNode):
        return [_build(item, child_path(path, i), src, ctor) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise src.error(path, "plain mapping keys", "a complex key")
            kpath = child_path(path, key_node.value)
            key = _scalar(key_node, kpath, src, ctor)
            if isinstance(key, bool | float) or key is None:
                raise src.error(kpath, "a text or integer key", describe(key))
            kpath = child_path(path, key)
            key_mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                src.key_marks[kpath] = key_mark
                raise src.error(kpath, "each key once", "a duplicate key", at_key=True)
            src.key_marks[kpath] = key_mark
            out[key] = _build(value_node, kpath, src, ctor)  # errors point at the value
        return out
    raise src.error(path, "a scalar, list or mapping", type(node).__name__)
