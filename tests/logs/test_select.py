"""``logs filter``: criteria, JSON-lines pass-through, --pretty, bad options."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.logs.conftest import cli
from vgic_actors.errors import UsageError
from vgic_actors.events import HcrConfigured, KickSent, RunStarted, decode_event
from vgic_actors.logs import parse_predicate, parse_range


def test_filter_by_intid_keeps_raw_lines_and_the_header(passing_log: Path) -> None:
    """Every output line is a line of the log; all but the header name INTID 32."""
    status, out, _ = cli("logs", "filter", "--intid", "32", str(passing_log))
    assert status == 0
    original = set(passing_log.read_text().splitlines())
    lines = out.splitlines()
    assert all(line in original for line in lines)
    events = [decode_event(line) for line in lines]
    assert isinstance(events[0], RunStarted)
    kinds = {type(e).__name__ for e in events[1:]}
    assert {"IrqQueued", "GuestAcked", "GuestDeactivated", "DirEmulated", "IrqPruned"} <= kinds
    for e in events[1:]:
        assert getattr(e, "intid", None) == 32 or (isinstance(e, HcrConfigured) and 32 in e.lrs)


def test_filter_kind_and_predicate(passing_log: Path) -> None:
    """--kind KickSent --where how=ipi keeps exactly the IPI kicks."""
    status, out, _ = cli("logs", "filter", "--kind", "KickSent", "--where", "how=ipi",
                         "--no-header", str(passing_log))
    assert status == 0
    events = [decode_event(line) for line in out.splitlines()]
    assert events and all(isinstance(e, KickSent) and e.how == "ipi" for e in events)
    expected = sum(1 for line in passing_log.read_text().splitlines()
                   if '"ev":"KickSent"' in line and '"how":"ipi"' in line)
    assert len(events) == expected


def test_filter_vcpu_pcpu_and_ranges(passing_log: Path) -> None:
    """--vcpu 1 keeps events about vCPU 1; --pcpu 0 the pCPU's own; --steps bounds steps."""
    _, out, _ = cli("logs", "filter", "--vcpu", "1", "--steps", "50:100", "--no-header",
                    str(passing_log))
    events = [msgspec.json.decode(line) for line in out.splitlines()]
    assert events and all(e["vcpu"] == 1 and 50 <= e["step"] <= 100 for e in events)
    _, out, _ = cli("logs", "filter", "--pcpu", "0", "--no-header", str(passing_log))
    actors = {msgspec.json.decode(line)["actor"] for line in out.splitlines()}
    assert actors and actors <= {"pcpu0", "pcpu0.reply", "cpu0.ipi", "cpu0.gic"}


def test_pretty_table(failing_log: Path) -> None:
    """--pretty prints a table with a header and the phrase for each event."""
    status, out, _ = cli("logs", "filter", "--kind", "GuestDeactivated", "--pretty",
                         str(failing_log))
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["line", "step", "vt"]
    assert "vcpu1 DIR INTID 32 (not trapped)" in lines[1]


def test_bad_options_are_usage_errors(passing_log: Path) -> None:
    """Unknown kinds and fields, malformed ranges: exit 2 with one error line."""
    for argv in (["--kind", "Nope"], ["--where", "nofield=1"], ["--steps", "a:b"],
                 ["--where", "intid"]):
        status, _out, err = cli("logs", "filter", *argv, str(passing_log))
        assert status == 2 and err.startswith("error: ") and err.count("\n") == 1, argv
    with pytest.raises(UsageError):
        parse_range("x", "vt")
    assert parse_predicate("vt>=10").value == 10
    assert parse_predicate("tdir=true").value is True
    assert parse_predicate("how=ipi").value == "ipi"


@pytest.mark.parametrize("chunk", [64, 997, 1 << 20])
def test_the_anchored_block_scan_reads_exactly_what_the_line_by_line_path_reads(
        passing_log: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Lines, numbers and reported problems are the same with and without the anchor, on
    a log with CRLF and blank lines, a bad line and a non-UTF-8 line that hold the
    needle, and a truncated last line, read in blocks of several sizes."""
    from vgic_actors.logs import reader as reader_mod
    from vgic_actors.logs.reader import LogReader
    from vgic_actors.logs.select import Selector

    lines = passing_log.read_bytes().splitlines()
    mixed = [lines[0]] + [ln + b"\r" if i % 7 == 0 else ln for i, ln in enumerate(lines[1:])]
    mixed[5:5] = [b"", b"   ", b'{"ev":"Nope","vcpu":1,"intid":32,"actor":"pcpu0"}',
                  b'{"ev":"GuestExited","vcpu":1,"intid":32,"actor":"pcpu0\xff"}']
    log = tmp_path / "mixed.jsonl"
    log.write_bytes(b"\n".join(mixed) + b"\n" + lines[-1][:40])
    monkeypatch.setattr(reader_mod, "CHUNK", chunk)
    for sel in (Selector(vcpu=1), Selector(intid=32), Selector(pcpu=0, kinds=frozenset(
            {"GuestExited", "GuestEntered"}))):
        assert sel.anchor is not None
        seen: list[list[object]] = [[], []]
        got = []
        for k, anchor in enumerate((None, sel.anchor)):
            r = LogReader(log, on_problem=seen[k].append)
            got.append([(n, ln) for n, ln, _ in r.events(sel.raw, anchor=anchor)])
        assert got[0] == got[1] and len(got[0]) > 2
        assert seen[0] == seen[1] and len(seen[0]) >= 1
