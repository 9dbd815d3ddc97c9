"""Malformed scenario files, generated: each gives exit 2 and one `error:` line naming place.

Hypothesis mutates the valid scenarios of the library (scenarios/*.yaml and the built-in
config/default-scenario.yaml) into broken ones: wrong types at random paths, unknown keys at
random depths, out-of-range INTIDs, missing required fields, emptied sections, YAML 1.1
booleans, duplicate keys and broken YAML text. Each file goes through ``vgic-actors
validate`` in-process (and a subset through ``vgic-actors run``): exit status 2, stderr one
line ``error: FILE:LINE:COL: $PATH: expected ..., got ...``, no traceback. Mutations that
happen to stay valid are detected (validate exits 0) and rejected; the test counts the
really malformed examples and requires at least 200 of them.

The tests at the end pin the inputs that once broke that rule (one per fixed bug).
"""

from __future__ import annotations

import copy
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

from vgic_actors.cli import main
from vgic_actors.scenario.source import child_path

ROOT = Path(__file__).resolve().parents[2]
BASE_FILES = [*sorted((ROOT / "scenarios").glob("*.yaml")), ROOT / "config/default-scenario.yaml"]
BASE_TEXT = {p.name: p.read_text(encoding="utf-8") for p in BASE_FILES}
BASE_DATA = {name: yaml.safe_load(text) for name, text in BASE_TEXT.items()}
NAMES = sorted(BASE_TEXT)

MIN_MALFORMED = 200
ERROR_LINE = re.compile(r"^error: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): "
                        r"(?P<path>\$\S*): expected (?P<expected>.+), got (?P<got>.*)$")
YAML11_BOOLS = ["yes", "no", "on", "off", "Yes", "No", "On", "Off", "YES", "NO", "ON", "OFF"]
UNKNOWN_KEYS = ["bogus", "lrz", "colour", "intidd", "vcpus_", "Ack"]
REQUIRED = {"intid", "reg", "var", "do", "cmd", "eoimode", "template", "gsi", "eventfd",
            "hwintid", "vintid", "entries", "resamplefd", "value", "count"}


# --- helpers over plain data ----------------------------------------------------------------


def walk(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    out = [(path, node)]
    if isinstance(node, dict):
        for k, v in node.items():
            out += walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += walk(v, (*path, i))
    return out


def render(path: tuple[Any, ...]) -> str:
    text = "$"
    for key in path:
        text = child_path(text, key)
    return text


def get(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(data)
    get(out, path[:-1])[path[-1]] = value
    return out


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def related(a: str, b: str) -> bool:
    """``a`` and ``b`` are the same path or one lies inside the other."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and long[len(short)] in ".["


def kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def int_keyed(node: Any) -> bool:
    return isinstance(node, dict) and bool(node) and all(isinstance(k, int) for k in node)


def vm_facts(data: dict[str, Any]) -> tuple[int, bool]:
    vm = data.get("vm") or {}
    return vm.get("nr_spis", 32), vm.get("gic") == "v2"


def line_col(text: str, needle: str) -> tuple[int, int]:
    index = text.index(needle)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


# --- the mutation families ------------------------------------------------------------------
# Each draws a base and returns (family, text, checks): ``checks`` holds what the error line
# must say beyond the common rule (a related $.path, a line, a word in the message).

Mutation = tuple[str, str, dict[str, Any]]


@st.composite
def wrong_type(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    paths = [p for p, _ in walk(data) if p]
    path = draw(st.sampled_from(paths))
    old = get(data, path)
    pool: list[Any] = ["not-a-number", -7, 3.5, [1, 2], True,
                       {1: "x"} if int_keyed(old) else {"x": 1}]
    new = draw(st.sampled_from([v for v in pool if kind(v) != kind(old)]))
    note(f"{name}: {render(path)}: {old!r} -> {new!r}")
    return "wrong-type", dump(replaced(data, path, new)), {"related": render(path)}


@st.composite
def unknown_key(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    maps = [p for p, v in walk(data)
            if (isinstance(v, dict) or (v is None and p and isinstance(p[-1], str)))
            and not int_keyed(v)]
    path = draw(st.sampled_from(maps))
    node = get(data, path)
    key = draw(st.sampled_from([k for k in UNKNOWN_KEYS if k not in (node or {})]))
    value = draw(st.sampled_from([1, "text"]))
    if node is None:  # '- wfi:' -> a mapping with an unknown field
        mutated = replaced(data, path, {key: value})
    else:
        mutated = copy.deepcopy(data)
        get(mutated, path)[key] = value
    note(f"{name}: {render(path)} += {key}: {value!r}")
    return "unknown-key", dump(mutated), {"related": render(path)}


def intid_sites(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Paths of INTIDs the loader checks against the VM: ('config'|'op', path)."""
    out = []
    for path, value in walk(data):
        if not path or "host" in path or "its" in path:
            continue
        if path[-1] == "intid" and path[0] in ("irqs", "expect"):
            out.append((path, "config"))
        elif path[-1] == "intid" or (path[-1] in ("eoir", "dir")
                                     and isinstance(value, int | str) and len(path) >= 2):
            out.append((path, "op"))
    return out


INTID_SITES = {name: intid_sites(BASE_DATA[name]) for name in NAMES}


@st.composite
def bad_intid(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from([n for n in NAMES if INTID_SITES[n]]))
    data = BASE_DATA[name]
    path, where = draw(st.sampled_from(INTID_SITES[name]))
    nr_spis, v2 = vm_facts(data)
    past_spis = st.integers(32 + nr_spis, 1019)
    if where == "config":
        # Above the SPIs, the special/reserved 1020..8191, LPIs on a GICv2 model.
        choices = [past_spis, st.integers(1020, 8191)] + ([st.integers(8192, 70_000)]
                                                          if v2 else [])
    else:
        choices = [past_spis, st.integers(-1000, -1), st.integers(2**24, 2**31)]
    value = draw(st.one_of(*choices))
    note(f"{name}: {render(path)} = {value}")
    return "bad-intid", dump(replaced(data, path, value)), {
        "path_in": {render(path), render(path) + ".intid"}, "got": str(value)}


@st.composite
def missing_field(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    sites = [p for p, _ in walk(data)
             if p and p[-1] in REQUIRED and isinstance(get(data, p[:-1]), dict)]
    path = draw(st.sampled_from(sites))
    mutated = copy.deepcopy(data)
    del get(mutated, path[:-1])[path[-1]]
    note(f"{name}: removed {render(path)}")
    return "missing-field", dump(mutated), {"related": render(path[:-1])}


@st.composite
def emptied_section(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    sites = [p for p, v in walk(data)
             if p and isinstance(v, dict | list) and v]
    path = draw(st.sampled_from(sites))
    note(f"{name}: emptied {render(path)}")
    return "emptied-section", dump(replaced(data, path, None)), {"related": render(path)}


SENTINEL = "ZZSENTINELZZ"


@st.composite
def yaml11_bool(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    word = draw(st.sampled_from(YAML11_BOOLS))
    if draw(st.booleans()):
        sites = [p for p, v in walk(data) if p and not isinstance(v, dict | list)]
        path = draw(st.sampled_from(sites))
        mutated = replaced(data, path, SENTINEL)
    else:
        maps = [p for p, v in walk(data) if isinstance(v, dict) and not int_keyed(v)]
        parent = draw(st.sampled_from(maps))
        mutated = copy.deepcopy(data)
        get(mutated, parent)[SENTINEL] = 1
        path = (*parent, word)
    text = dump(mutated)
    line, col = line_col(text, SENTINEL)
    note(f"{name}: {render(path)} = {word} at {line}:{col}")
    return "yaml11-bool", text.replace(SENTINEL, word), {
        "path": render(path), "at": (line, col), "expected": "YAML 1.1"}


KEY_LINE = re.compile(r"^( *)([A-Za-z_][\w-]*):( |$)")
FLOW_PAIR = re.compile(r"\{([A-Za-z_]\w*): ([^,{}\[\]#]+?)([,}])")


@st.composite
def duplicate_key(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    lines = BASE_TEXT[name].split("\n")
    block = [i for i, line in enumerate(lines) if KEY_LINE.match(line)]
    flow = [i for i, line in enumerate(lines) if FLOW_PAIR.search(line.split(" #")[0])]
    if flow and draw(st.booleans()):
        i = draw(st.sampled_from(flow))
        m = FLOW_PAIR.search(lines[i])
        assert m is not None
        k, v, end = m.groups()
        lines[i] = lines[i][:m.start()] + f"{{{k}: {v}, {k}: {v}{end}" + lines[i][m.end():]
        line = i + 1
    else:
        i = draw(st.sampled_from(block))
        m = KEY_LINE.match(lines[i])
        assert m is not None
        lines.insert(i, f"{m.group(1)}{m.group(2)}: 1")
        line = i + 2  # the original line, now the second occurrence
    note(f"{name}: duplicate key at line {line}")
    return "duplicate-key", "\n".join(lines), {"line": line, "expected": "each key once"}


def content_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.split("\n"))
            if line.strip() and not line.lstrip().startswith("#")]


@st.composite
def broken_yaml(draw: st.DrawFn) -> Mutation:
    name = draw(st.sampled_from(NAMES))
    text = BASE_TEXT[name]
    how = draw(st.sampled_from(["truncate", "indent", "unclose", "open"]))
    lines = text.split("\n")
    if how == "truncate":
        cut = draw(st.integers(1, len(text) - 2))
        out = text[:cut]
    elif how == "indent":
        i = draw(st.sampled_from(content_lines(text)))
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        delta = draw(st.sampled_from([d for d in (-2, -1, 1, 3) if indent + d >= 0]))
        lines[i] = " " * (indent + delta) + lines[i].lstrip(" ")
        out = "\n".join(lines)
    elif how == "unclose":
        closers = [(i, j) for i in content_lines(text)
                   for j, ch in enumerate(lines[i].split(" #")[0]) if ch in "]}"]
        i, j = draw(st.sampled_from(closers))
        lines[i] = lines[i][:j] + lines[i][j + 1:]
        out = "\n".join(lines)
    else:
        pairs = [i for i in content_lines(text) if re.search(r": \S", lines[i].split(" #")[0])]
        i = draw(st.sampled_from(pairs))
        lines[i] = re.sub(r": (\S)", r": [\1", lines[i], count=1)
        out = "\n".join(lines)
    note(f"{name}: {how}")
    return f"broken-yaml-{how}", out, {}


MUTATIONS = st.one_of(wrong_type(), unknown_key(), bad_intid(), missing_field(),
                      emptied_section(), yaml11_bool(), duplicate_key(), broken_yaml())


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_base_round_trips_valid(name, tmp_path):
    """The mutations start from valid files: each base, dumped back from its data, validates."""
    path = tmp_path / name
    path.write_text(dump(BASE_DATA[name]), encoding="utf-8")
    code, out, err = cli("validate", str(path))
    assert (code, err) == (0, "") and out.startswith(f"ok: {path}: ")


def check_error_line(err: str, file: str, nlines: int, checks: dict[str, Any]) -> None:
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    m = ERROR_LINE.match(err.rstrip("\n"))
    assert m, f"not an error line: {err!r}"
    assert m["file"] == file
    line, col = int(m["line"]), int(m["col"])
    assert 1 <= line <= nlines + 1 and col >= 1
    if "related" in checks:
        assert related(m["path"], checks["related"]), (m["path"], checks["related"])
    if "path_in" in checks:
        assert m["path"] in checks["path_in"] and m["got"] == checks["got"]
    if "path" in checks:
        assert m["path"] == checks["path"]
    if "at" in checks:
        assert (line, col) == checks["at"]
    if "line" in checks:
        assert line == checks["line"]
    if "expected" in checks:
        assert checks["expected"] in m["expected"]


def test_generated_malformed_files_exit_2_with_one_error_line(tmp_path_factory):
    folder = tmp_path_factory.mktemp("malformed")
    stats: Counter[str] = Counter()

    @settings(max_examples=260, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(mutation=MUTATIONS, also_run=st.integers(0, 3))
    def check(mutation: Mutation, also_run: int) -> None:
        family, text, checks = mutation
        stats["tried"] += 1
        path = folder / f"case{stats['tried']}.yaml"
        path.write_text(text, encoding="utf-8")
        code, out, err = cli("validate", str(path))
        if code == 0:
            stats[f"valid:{family}"] += 1
            assume(False)  # the mutation happened to keep the file valid
        event(family)
        assert code == 2, (code, out, err)
        assert out == ""
        check_error_line(err, str(path), text.count("\n") + 1, checks)
        stats["malformed"] += 1
        stats[family] += 1
        if also_run == 0:  # about a quarter also through `run`: same line, nothing ran
            rcode, rout, rerr = cli("run", str(path), "--runs", "1")
            assert (rcode, rout, rerr) == (2, "", err)
            stats["run"] += 1

    check()
    print(dict(stats))  # shown with -s: how many were really malformed, per family
    assert stats["malformed"] >= MIN_MALFORMED, dict(stats)
    # Most generated files are really malformed, and every family contributed.
    assert stats["malformed"] >= 0.8 * stats["tried"], dict(stats)
    families = {"wrong-type", "unknown-key", "bad-intid", "missing-field", "emptied-section",
                "yaml11-bool", "duplicate-key"}
    assert families <= set(stats), dict(stats)
    assert any(k.startswith("broken-yaml-") for k in stats), dict(stats)
    assert stats["run"] > 0


# --- inputs that once broke the rule, one test each -----------------------------------------


def validate_text(tmp_path: Path, text: str) -> tuple[str, int, str]:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = cli("validate", str(path))
    return str(path), code, err


@pytest.mark.parametrize(("text", "where"), [
    ("expect:\n  counters:\n    acks: {abc: 1}\n", "$.expect.counters.acks"),
    ("vm: {1: 2}\n", "$.vm"),
])
def test_a_wrongly_typed_mapping_key_is_named_by_its_path(tmp_path, text, where):
    file, code, err = validate_text(tmp_path, text)
    assert code == 2
    m = ERROR_LINE.match(err.rstrip("\n"))
    assert m and m["file"] == file and related(m["path"], where)
    assert int(m["line"]) == text.count("\n")  # the last line holds the offending key


@pytest.mark.parametrize(("text", "where", "line"), [
    ("expect:\n  verdicts:\n    merged: pass\n    no-spi-tracking: 7\n",
     "$.expect.verdicts.no-spi-tracking", 4),
    ("expect:\n  counters:\n    acks:\n      32: 1\n      33: lots\n",
     "$.expect.counters.acks[33]", 5),
    ("templates:\n  mine: 5\n", "$.templates.mine", 2),
])
def test_a_bad_value_in_a_table_names_its_key(tmp_path, text, where, line):
    file, code, err = validate_text(tmp_path, text)
    assert code == 2
    m = ERROR_LINE.match(err.rstrip("\n"))
    assert m and m["file"] == file and m["path"] == where and int(m["line"]) == line


def test_a_control_character_is_located(tmp_path):
    file, code, err = validate_text(tmp_path, "vm: {vcpus: 2}\n\x07\n")
    assert code == 2
    m = ERROR_LINE.match(err.rstrip("\n"))
    assert m and m["file"] == file and m["line"] == "2"


@pytest.mark.parametrize("text", [
    "irqs:\n  - {intid: -1, priority: 0x80}\n",
    "expect:\n  final:\n    - {intid: -3, vcpu: 0, active: false}\n",
])
def test_a_negative_intid_is_rejected(tmp_path, text):
    _, code, err = validate_text(tmp_path, text)
    assert code == 2 and "intid" in err


@pytest.mark.parametrize("intid", [8192, 10**20])
def test_an_irqs_lpi_either_fails_validation_or_runs(tmp_path, intid):
    path = tmp_path / "s.yaml"
    path.write_text(f"irqs:\n  - {{intid: {intid}}}\n", encoding="utf-8")
    code, _, err = cli("run", str(path), "--runs", "1")
    assert code in (0, 1, 2) and "Traceback" not in err


def test_a_bad_template_call_names_the_scenario_file(tmp_path):
    file, code, err = validate_text(tmp_path, "guests:\n  vcpu1:\n    - call: deferred_dir\n")
    assert code == 2
    m = ERROR_LINE.match(err.rstrip("\n"))
    assert m and m["file"] == file and related(m["path"], "$.guests.vcpu1[0]")
