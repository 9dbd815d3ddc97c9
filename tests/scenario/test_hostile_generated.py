"""Hostile scenario files, generated (issue 17 item 5): what `validate` accepts runs, what it
rejects is one true line.

`HOSTILE` draws a library scenario and attacks it the way issue 17's fuzzing did: YAML alias
bombs, deep nesting, huge integers, explicit tags, implicit dates and YAML 1.1 octals,
non-ASCII digits, lone surrogates, non-UTF-8 bytes, Unicode line separators before an error,
loop and repeat bounds, template arguments, host INTIDs, APR indices, acknowledgement
tables, step budgets and PCT horizons. `check_hostile` sends each file through `validate`
and, when accepted, `run` (in-process, the CLI entry point): no exception escapes, an error
is one `file:line:col: $.path: expected ..., got ...` line whose location is checked where
the generator knows it, and an accepted file runs to a verdict (exit 0 or 1). The quick
profile runs here; `pytest -m fuzz` runs the long one (tests/test_fuzz.py).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from tests.scenario.test_malformed_files import (
    BASE_DATA,
    ERROR_LINE,
    NAMES,
    cli,
    dump,
    render,
    replaced,
    walk,
)

SENTINEL = "ZZHOSTILEZZ"
HOSTILE_PROFILES = {"quick": 40, "fuzz": 10_000}

Attack = tuple[str, str | bytes, dict[str, Any]]


def scalar_sites(data: Any) -> list[tuple[Any, ...]]:
    return [p for p, v in walk(data) if p and not isinstance(v, dict | list)]


def with_raw(data: Any, path: tuple[Any, ...], raw: str) -> str:
    """``data`` dumped with the value at ``path`` written as the raw YAML ``raw``."""
    return dump(replaced(data, path, SENTINEL)).replace(SENTINEL, raw, 1)


def line_of(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


@st.composite
def raw_value(draw: st.DrawFn) -> Attack:
    """A scalar of the library replaced by YAML written to trip the loader."""
    name = draw(st.sampled_from(NAMES))
    data = BASE_DATA[name]
    path = draw(st.sampled_from(scalar_sites(data)))
    raw = draw(st.sampled_from([
        '!!int "abc"', "!!str 5", "!!python/object:os.system", "!foo x", "!!binary aGk=",
        "!!timestamp 2001-01-01", "2001-02-30", "12:30:00", "0o17", "017", "1e3", ".inf",
        "-.inf", ".nan", "0x_", "1_000", "0b101", "+12", "~", "\uff13\uff12", "٣", "²",
        '"\\ud800"', '"a\\udfffb"', "&a [*a]", "*undefined", "9" * draw(st.integers(19, 6000)),
        "-" + "9" * draw(st.integers(19, 400)), "0x" + "f" * draw(st.integers(16, 300)),
        "[" * draw(st.integers(60, 3000)), "{a: " * draw(st.integers(60, 600)),
    ]))
    note(f"{name}: {render(path)} = {raw[:60]}")
    return "raw-value", with_raw(data, path, raw), {}


@st.composite
def alias_bomb(draw: st.DrawFn) -> Attack:
    """A billion-laughs chain of anchors, in the description or as a top-level key."""
    levels, width = draw(st.integers(2, 9)), draw(st.integers(2, 10))
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "alias-bomb", "templates:\n" + "".join(f"  {ln}\n" for ln in lines), {}


@st.composite
def separator_before_error(draw: st.DrawFn) -> Attack:
    """A NEL, lone CR, U+2028 or U+2029 inside text, then an error on a known line."""
    sep = draw(st.sampled_from(["\u0085", "\r", "\u2028", "\u2029"]))
    pad = draw(st.integers(0, 5))
    text = f'description: "a{sep}b"\n' + "# c\n" * pad + "vm: {vcpus: x}\n"
    return "separator", text, {"path": "$.vm.vcpus", "at": (pad + 2, 13)}


@st.composite
def bad_bytes(draw: st.DrawFn) -> Attack:
    """A library file with a byte that is not UTF-8 at a random place."""
    name = draw(st.sampled_from(NAMES))
    raw = dump(BASE_DATA[name]).encode()
    at = draw(st.integers(0, len(raw)))
    while at > 0 and at < len(raw) and raw[at] & 0xC0 == 0x80:  # not inside a character
        at -= 1
    byte = draw(st.sampled_from([b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80"]))
    out = raw[:at] + byte + raw[at:]
    line = raw.count(b"\n", 0, at) + 1
    col = len(raw[raw.rfind(b"\n", 0, at) + 1:at].decode()) + 1
    return "bad-bytes", out, {"path": "$", "at": (line, col)}


@st.composite
def semantic(draw: st.DrawFn) -> Attack:
    """Values that parse but must hold at run time: INTIDs, APRs, loops, tables, budgets."""
    kind = draw(st.sampled_from(["host", "map_phys", "apr", "for", "repeat", "idle-loops",
                                 "acks", "call", "budget", "strategy"]))
    big = st.integers(0, 2**64 - 1) | st.integers(0, 70_000)
    if kind == "host":
        action = draw(st.sampled_from(["inject_edge", "set_level", "set_level_info",
                                       "write_ispendr", "write_isactiver"]))
        text = (f"host:\n  - {{do: {action}, intid: {draw(big)}, vcpu: "
                f"{draw(st.integers(0, 300))}, expect_errno: {draw(st.sampled_from([0, 22]))}}}\n")
    elif kind == "map_phys":
        text = (f"host:\n  - {{do: map_phys, vintid: {draw(st.integers(16, 1019))}, hwintid: "
                f"{draw(st.integers(16, 1019))}, vcpu: {draw(st.integers(0, 300))}}}\n  - "
                f"{{do: phys_assert, hwintid: {draw(st.integers(16, 1019))}}}\n")
    elif kind == "apr":
        text = (f"vm: {{pri_bits: {draw(st.integers(5, 8))}}}\nguests:\n  vcpu0:\n    - "
                f"{draw(st.sampled_from(['apr', 'apr_write']))}: {{n: "
                f"{draw(st.integers(0, 4))}, value: 0}}\n")
    elif kind == "for":
        lo, hi = draw(big), draw(big)
        text = f"guests:\n  vcpu0:\n    - for: {{var: i, from: {lo}, to: {hi}, do: [{{wfi: }}]}}\n"
    elif kind == "idle-loops":  # work that produces nothing: a zero repeat in loops
        a, b = draw(st.integers(0, 200_000)), draw(st.integers(0, 200_000))
        inner = f"{{for: {{var: j, from: 0, to: {b}, do: [{{wfi: }}]}}}}"
        text = (f"guests:\n  vcpu0:\n    - for: {{var: i, from: 0, to: {a}, do: [{{repeat: "
                f"{{count: 0, do: [{inner}]}}}}]}}\n")
    elif kind == "repeat":
        a, b = draw(st.integers(0, 20_000)), draw(st.integers(0, 20_000))
        text = (f"guests:\n  vcpu0:\n    - repeat: {{count: {a}, do: [{{repeat: {{count: {b}, "
                "do: [{wfi: }]}}]}\n")
    elif kind == "acks":
        text = f"expect:\n  counters:\n    acks: {{{draw(big)}: {draw(st.integers(0, 3))}}}\n"
    elif kind == "call":
        args = draw(st.dictionaries(st.sampled_from(["intid", "bogus", "x"]),
                                    st.sampled_from(["32", "not-a-number", "-1", "[1]", "yes",
                                                     "33"]), max_size=2))
        body = ", ".join(f"{k}: {v}" for k, v in args.items())
        text = f"guests:\n  vcpu1:\n    - call: {{template: deferred_dir, with: {{{body}}}}}\n"
    elif kind == "budget":
        text = f"run: {{max_steps: {draw(big)}}}\n"
    else:
        depth = draw(st.sampled_from(["3", "0", "17", "\uff13", "²", "٣", "99999999999999999999"]))
        horizon = draw(st.sampled_from(["", ":1", ":0", ":1000000", ":1000001", ":\uff12"]))
        text = f'run: {{strategy: "pct:{depth}{horizon}"}}\n'
    return f"semantic-{kind}", text, {}


HOSTILE = st.one_of(raw_value(), alias_bomb(), separator_before_error(), bad_bytes(),
                    semantic())


def check_hostile(folder: Path, examples: int, stats: Counter[str]) -> None:
    """Run ``examples`` generated hostile files through validate (and run when accepted)."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(attack=HOSTILE)
    def check(attack: Attack) -> None:
        family, content, checks = attack
        stats["files"] += 1
        event(family)
        path = folder / f"h{stats['files']}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", errors="surrogatepass")
        started = time.monotonic()
        code, out, err = cli("validate", str(path))
        slowest = time.monotonic() - started
        assert code in (0, 2), (code, err)
        if code == 0:
            stats["accepted"] += 1
            started = time.monotonic()
            rcode, _, rerr = cli("run", str(path), "--runs", "1", "--max-steps", "3000")
            slowest = max(slowest, time.monotonic() - started)
            assert rcode in (0, 1) and rerr == "", (rcode, rerr)
        else:
            stats["rejected"] += 1
            assert out == "" and err.count("\n") == 1, err
            m = ERROR_LINE.match(err.rstrip("\n"))
            assert m and m["file"] == str(path), err
            if "path" in checks:
                assert m["path"] == checks["path"], err
            if "at" in checks:
                assert (int(m["line"]), int(m["col"])) == checks["at"], err
        stats["over_10s"] += slowest > 10
        stats["slowest_ms"] = max(stats["slowest_ms"], int(slowest * 1000))
        path.unlink()

    check()


def test_generated_hostile_files_are_one_true_line_or_run(tmp_path):
    """The quick profile: a few dozen hostile files, each rejected cleanly or run."""
    stats: Counter[str] = Counter()
    check_hostile(tmp_path, HOSTILE_PROFILES["quick"], stats)
    assert stats["files"] >= 10 and stats["rejected"] > 0
