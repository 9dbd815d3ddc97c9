"""``logs perfetto``: the trace obeys the trace-event rules Perfetto relies on."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.logs.conftest import cli


def validate(trace: dict[str, Any]) -> list[str]:
    """The rules: known phases; numeric ts; B/E balanced and every slice (B/E or X) on a
    track nested in or disjoint from the others; each flow id one ``s`` then one ``f``,
    each at a slice on its track; counters with numeric values. Returns what breaks."""
    errors: list[str] = []
    spans: dict[tuple[int, int], list[tuple[float, float, str]]] = defaultdict(list)
    stacks: dict[tuple[int, int], list[tuple[float, str]]] = defaultdict(list)
    flows: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    timed = [e for e in trace["traceEvents"] if e["ph"] != "M"]
    for e in trace["traceEvents"]:
        if e["ph"] not in {"B", "E", "X", "i", "C", "s", "f", "M"}:
            errors.append(f"unknown phase {e['ph']}")
    for e in sorted(timed, key=lambda e: e["ts"]):  # stable: file order within a timestamp
        if not isinstance(e["ts"], int | float):
            errors.append(f"ts not numeric: {e}")
        track = (e.get("pid", 0), e.get("tid", 0))
        if e["ph"] == "B":
            stacks[track].append((e["ts"], e["name"]))
        elif e["ph"] == "E":
            if not stacks[track]:
                errors.append(f"E without B on {track} at {e['ts']}")
                continue
            start, name = stacks[track].pop()
            spans[track].append((start, e["ts"], name))
        elif e["ph"] == "X":
            spans[track].append((e["ts"], e["ts"] + e["dur"], e["name"]))
        elif e["ph"] in "sf":
            if e["ph"] in flows[e["id"]]:
                errors.append(f"flow {e['id']}: two '{e['ph']}'")
            flows[e["id"]][e["ph"]] = e
        elif e["ph"] == "C" and (not e["args"] or not all(
                isinstance(v, int | float) for v in e["args"].values())):
            errors.append(f"counter not numeric: {e}")
    errors += [f"unclosed B on {t}" for t, s in stacks.items() if s]
    for track, items in spans.items():
        open_: list[tuple[float, float, str]] = []
        for start, end, name in sorted(items, key=lambda s: (s[0], -s[1])):
            while open_ and open_[-1][1] <= start:
                open_.pop()
            if open_ and end > open_[-1][1]:
                errors.append(f"{name} [{start}, {end}] overlaps {open_[-1]} on {track}")
            open_.append((start, end, name))
    for fid, ends in flows.items():
        if set(ends) != {"s", "f"}:
            errors.append(f"flow {fid} has {sorted(ends)}")
            continue
        s, f = ends["s"], ends["f"]
        if s["name"] != f["name"] or s["cat"] != f["cat"] or s["ts"] > f["ts"]:
            errors.append(f"flow {fid}: {s} -> {f}")
        for end in (s, f):
            track = (end["pid"], end["tid"])
            if not any(a <= end["ts"] <= b for a, b, _ in spans[track]):
                errors.append(f"flow {fid} '{end['ph']}' at {end['ts']} is on no slice")
    return errors


def test_trace_follows_the_rules(passing_log: Path, tmp_path: Path) -> None:
    """Tracks per CPU and the distributor, guest slices, flows for kicks and broadcast legs,
    the two counter kinds, and not one rule broken."""
    out = tmp_path / "trace.json"
    status, text, _ = cli("logs", "perfetto", str(passing_log), "-o", str(out))
    assert status == 0 and "trace events" in text
    trace = json.loads(out.read_text())
    assert validate(trace) == []
    names = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "thread_name"}
    assert {"pcpu0", "pcpu1", "vcpu0", "vcpu1", "distributor"} <= names
    phases = defaultdict(set)
    for e in trace["traceEvents"]:
        phases[e["ph"]].add(e.get("name", ""))
    assert "guest" in phases["B"] and any(n.startswith("handle_exit: trap") for n in phases["B"])
    assert "broadcast leg (KVM_REQ_IRQ_PENDING)" in phases["s"]
    assert any(n.startswith("broadcast leg") for n in phases["s"])
    assert {"active_spis", "TDIR vcpu0", "TDIR vcpu1"} <= phases["C"]
    assert trace["otherData"]["variant"] == "merged"
    assert trace["otherData"]["choices"] == "pass.jsonl.choices.json"


def test_validator_catches_broken_traces() -> None:
    """The checker itself fails on overlap, an orphan flow and a non-numeric counter."""
    bad = {"traceEvents": [
        {"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 0, "dur": 10},
        {"ph": "X", "name": "b", "pid": 1, "tid": 1, "ts": 5, "dur": 10},
        {"ph": "s", "name": "m", "cat": "msg", "id": 7, "pid": 1, "tid": 1, "ts": 1},
        {"ph": "C", "name": "c", "pid": 1, "ts": 1, "args": {"value": "x"}},
        {"ph": "E", "pid": 1, "tid": 2, "ts": 3},
    ]}
    errors = validate(bad)
    assert any("overlaps" in e for e in errors)
    assert any("flow 7" in e for e in errors)
    assert any("counter not numeric" in e for e in errors)
    assert any("E without B" in e for e in errors)


def test_failing_run_trace_is_valid_too(failing_log: Path, tmp_path: Path) -> None:
    """The no-spi-tracking run exports a valid trace with a plain kick flow."""
    out = tmp_path / "t.json"
    assert cli("logs", "perfetto", str(failing_log), "-o", str(out))[0] == 0
    trace = json.loads(out.read_text())
    assert validate(trace) == []


def test_timestamps_and_durations_are_whole_nanoseconds(passing_log: Path,
                                                        tmp_path: Path) -> None:
    """Perfetto drops slices shorter than 1 ns: every ts and dur is a whole ns, dur >= 1."""
    out = tmp_path / "trace.json"
    cli("logs", "perfetto", str(passing_log), "-o", str(out))
    events = json.loads(out.read_text())["traceEvents"]
    for e in events:
        for key in ("ts", "dur"):
            if key in e:
                ns = e[key] * 1000
                assert abs(ns - round(ns)) < 1e-6, e
        if "dur" in e:
            assert round(e["dur"] * 1000) >= 1, e
    assert validate({"traceEvents": events}) == []
