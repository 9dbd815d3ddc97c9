"""`logs` reads any bytes (issue 17): a corrupt line is a warning (exit 2 with --strict), never
a traceback, and options are range-checked.

The pinned cases are the corruptions that once raised; the generated ones (Hypothesis,
`LOG_CORRUPTIONS`) damage lines of a real log and send the file through every subcommand,
with and without --strict. The long campaign is `pytest -m fuzz` (tests/test_fuzz.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.logs.conftest import cli
from vgic_actors.logs import reader as reader_mod

WARNING = re.compile(r"^warning: (?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<path>\$\S*): "
                     r"expected (?P<expected>.+), got (?P<got>.*) \(line skipped\)$")


def subcommands(file: str, out: Path) -> list[list[str]]:
    """Every `logs` subcommand on ``file`` (outputs under ``out``)."""
    return [["filter", file], ["filter", file, "--pretty"], ["timeline", file],
            ["timeline", file, "--all"], ["irq", "32", file], ["stats", file], ["check", file],
            ["perfetto", file, "-o", str(out / "t.json")], ["html", file, "-o",
                                                          str(out / "r.html")],
            ["diff", file, file]]


def damaged(log: Path, dest: Path, index: int, line: bytes) -> Path:
    lines = log.read_bytes().split(b"\n")
    lines[index] = line
    dest.write_bytes(b"\n".join(lines))
    return dest


def assert_survives(file: Path, tmp_path: Path) -> None:
    """Every subcommand: no traceback; a file that is no longer a run log (its header line
    damaged) and --strict: exit 2 with one error line naming the file."""
    for argv in subcommands(str(file), tmp_path):
        code, _, err = cli("logs", *argv)
        assert "Traceback" not in err, (argv, err)
        if code == 2:  # the header was hit: not a run log any more
            last = err.splitlines()[-1]
            assert last.startswith(f"error: {file}:") and "a run log" in last, (argv, err)
        else:
            assert code in (0, 1), (argv, err)
        code, _, err = cli("logs", *argv, "--strict")
        assert "Traceback" not in err, (argv, err)
        if code == 2:
            assert err.startswith(f"error: {file}:") and err.count("\n") == 1, (argv, err)


def actor_line(log: Path, index: int, actor: bytes) -> bytes:
    line = log.read_bytes().split(b"\n")[index]
    return re.sub(rb'"actor":"[^"]*"', b'"actor":"' + actor + b'"', line)


@pytest.mark.parametrize(("make", "path", "expected", "got"), [
    (lambda log: actor_line(log, 5, b"\xff\xfepcpu0"), "$", "UTF-8 text", "byte 0xff"),
    (lambda log: re.sub(rb'"vt":\d+', b'"vt":' + b"9" * 400, log.read_bytes().split(b"\n")[5]),
     "$.vt", "0..2^63-1", "an integer of 400 digits"),
    (lambda _log: b"[" * 1000 + b"]" * 1000, "$", "a JSON object", "a JSON array"),
    (lambda log: actor_line(log, 5, b"vcpu1."), "$.actor", "an actor name", "'vcpu1.'"),
    (lambda log: actor_line(log, 5, b"vcpu"), "$.actor", "an actor name", "'vcpu'"),
    (lambda log: actor_line(log, 5, b"vcpu1.x"), "$.actor", "an actor name", "'vcpu1.x'"),
    (lambda log: re.sub(rb'"step":\d+', b'"step":-5', log.read_bytes().split(b"\n")[5]),
     "$.step", "0..2^63-1", "-5"),
])
def test_a_corrupt_line_is_one_located_warning(failing_log, tmp_path, make, path, expected, got):
    """Invalid UTF-8, a 400-digit vt, JSON nested 1,000 deep, an odd actor: a warning each."""
    file = damaged(failing_log, tmp_path / "bad.jsonl", 6, make(failing_log))
    code, _, err = cli("logs", "timeline", str(file), "--all")
    assert code == 0
    m = WARNING.match(err.splitlines()[0])
    assert m and m["file"] == str(file) and m["line"] == "7", err
    assert (m["path"], expected in m["expected"], m["got"].startswith(got)) == (path, True, True)
    assert_survives(file, tmp_path)


def test_a_huge_number_in_any_field_is_refused(failing_log, tmp_path):
    """An integer beyond 64 bits in a kernel field (here a vCPU number) is a corrupt line."""
    lines = failing_log.read_bytes().split(b"\n")
    index = next(i for i, ln in enumerate(lines) if b'"vcpu":' in ln)
    bad = re.sub(rb'"vcpu":\d+', b'"vcpu":' + b"7" * 5000, lines[index], count=1)
    file = damaged(failing_log, tmp_path / "bad.jsonl", index, bad)
    code, _, err = cli("logs", "timeline", str(file))
    assert code == 0 and "$.vcpu: expected an integer within 64 bits, got a larger one" in err
    assert_survives(file, tmp_path)


def test_an_endless_line_is_skipped_without_being_held(failing_log, tmp_path, monkeypatch):
    """A line beyond MAX_LINE is one warning at its line number; the lines after it count."""
    monkeypatch.setattr(reader_mod, "MAX_LINE", 3000)
    monkeypatch.setattr(reader_mod, "CHUNK", 1024)
    lines = failing_log.read_bytes().split(b"\n")
    lines.insert(3, b'{"ev":"' + b"x" * 10_000)
    file = tmp_path / "long.jsonl"
    file.write_bytes(b"\n".join(lines))
    code, out, err = cli("logs", "stats", str(file), "--json")
    assert code == 0 and err.startswith(f"warning: {file}:4:1: $: expected a line of at most "
                                        "3000 bytes, got a longer one")
    total = json.loads(out)["events"]
    code, out, _ = cli("logs", "stats", str(failing_log), "--json")
    assert json.loads(out)["events"] == total
    assert_survives(file, tmp_path)


@pytest.mark.parametrize(("argv", "message"), [
    (["timeline", "{log}", "--width", "99999999999"], "--width: expected 8..1000"),
    (["check", "{log}", "--context", "100000000000000000000"], "--context: expected 0..10000"),
    (["diff", "{log}", "{log}", "--context", "0"], "--context: expected 1..10000"),
])
def test_options_are_range_checked(failing_log, argv, message):
    """Absurd option values are one usage line, exit 2."""
    code, out, err = cli("logs", *[a.replace("{log}", str(failing_log)) for a in argv])
    assert (code, out) == (2, "") and err == f"error: {message}, got {argv[-1]}\n"


# --- generated corruptions ------------------------------------------------------------------

JUNK = [b"\xff", b"\xc3(", b"\xed\xa0\x80", b"9" * 400, b"-1", b"1e308", b"null", b'"x"',
        b"{}", b"[" * 200, b"\\u0000", b"vcpu1.", b"", b'"', b",", b"}", b"\r"]


@st.composite
def corrupted_log(draw: st.DrawFn, base: bytes) -> bytes:
    """A real log with one to three lines damaged: bytes replaced, cut, or a value swapped."""
    lines = base.split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 2))
        line = lines[i]
        how = draw(st.sampled_from(["splice", "cut", "value", "actor", "duplicate"]))
        if how == "splice" and line:
            at = draw(st.integers(0, len(line)))
            line = line[:at] + draw(st.sampled_from(JUNK)) + line[at:]
        elif how == "cut":
            line = line[:draw(st.integers(0, max(0, len(line) - 1)))]
        elif how == "value":
            spots = [m.start(1) for m in re.finditer(rb":(-?\d+|true|false|\"[^\"]*\")", line)]
            if spots:
                at = draw(st.sampled_from(spots))
                end = re.match(rb"-?\d+|true|false|\"[^\"]*\"", line[at:])
                assert end is not None
                line = line[:at] + draw(st.sampled_from(JUNK)) + line[at + end.end():]
        elif how == "actor":
            line = re.sub(rb'"actor":"[^"]*"', b'"actor":"' + draw(st.sampled_from(
                [b"vcpu1.", b"", b"pcpu", b"vcpu", b"cpu1..ipi", b"a" * 100, b"\xff"])) + b'"',
                line)
        else:
            lines.insert(i, line)
        lines[i] = line
    return b"\n".join(lines)


LOG_PROFILES = {"quick": 12, "fuzz": 2_000}


def check_corruptions(log: Path, folder: Path, examples: int) -> int:
    """Run ``examples`` generated corruptions of ``log`` through every subcommand."""
    count = [0]

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=corrupted_log(log.read_bytes()))
    def check(data: bytes) -> None:
        count[0] += 1
        file = folder / f"c{count[0]}.jsonl"
        file.write_bytes(data)
        assert_survives(file, folder)

    check()
    return count[0]


def test_generated_corruptions_survive_every_subcommand(failing_log, tmp_path):
    """A few generated corruptions (the quick profile; `pytest -m fuzz` runs the long one)."""
    assert check_corruptions(failing_log, tmp_path, LOG_PROFILES["quick"]) >= 1
