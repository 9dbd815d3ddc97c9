"""Reading logs back: the header, corrupt and truncated lines, strict mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.logs.conftest import cli
from vgic_actors.events import RunStarted
from vgic_actors.logs import LogReader, Problem


def _damaged(src: Path, dest: Path) -> Path:
    lines = src.read_bytes().splitlines(keepends=True)
    lines[4] = b'{"ev":"IrqQueued","intid":"not a number"}\n'
    lines[9] = b"this is not json\n"
    lines[12] = b'{"ev":"NoSuchEvent","step":1,"vt":1,"actor":"x"}\n'
    data = b"".join(lines)
    dest.write_bytes(data[: len(data) - 20])  # the last line is cut off mid-write
    return dest


def test_header_carries_digest_and_choice_log(failing_log: Path) -> None:
    """The first line is RunStarted with scenario, variant, seed, digest and choice-log name."""
    reader = LogReader(failing_log)
    header = reader.read_header()
    assert isinstance(header, RunStarted)
    assert (header.scenario, header.variant, header.seed) == ("asym_dir", "no-spi-tracking", 0)
    assert len(header.digest) == 16
    assert header.choices == "fail.jsonl.choices.json"
    assert (failing_log.parent / header.choices).exists()


def test_bad_lines_are_reported_with_their_numbers_and_skipped(failing_log: Path,
                                                               tmp_path: Path) -> None:
    """Three corrupt lines and a truncated last one: four problems, every other line read."""
    bad = _damaged(failing_log, tmp_path / "bad.jsonl")
    problems: list[Problem] = []
    reader = LogReader(bad, on_problem=problems.append)
    events = list(reader.events())
    total = len(bad.read_bytes().splitlines())
    assert [p.line for p in problems] == [5, 10, 13, total]
    assert len(events) == total - 4
    assert "$.intid" in problems[0].message() and problems[0].message().startswith(f"{bad}:5:")
    assert "NoSuchEvent" in problems[2].got
    assert "truncated" in problems[3].got


def test_cli_warns_per_bad_line_and_strict_stops_at_the_first(failing_log: Path,
                                                              tmp_path: Path) -> None:
    """Default: a warning per bad line, exit 0; --strict: exit 2, one error line, no traceback."""
    bad = _damaged(failing_log, tmp_path / "bad.jsonl")
    status, out, err = cli("logs", "stats", str(bad))
    assert status == 0 and "events" in out
    assert err.count("warning:") == 4 and f"{bad}:10:" in err
    status, out, err = cli("logs", "stats", "--strict", str(bad))
    assert status == 2
    assert err.startswith(f"error: {bad}:5:") and err.count("\n") == 1
    assert "Traceback" not in err


def test_missing_file_and_missing_header(tmp_path: Path, failing_log: Path) -> None:
    """An unreadable file is exit 2; a log without its header line is reported as such."""
    status, _out, err = cli("logs", "check", str(tmp_path / "nope.jsonl"))
    assert status == 2 and "a readable log file" in err
    headless = tmp_path / "headless.jsonl"
    headless.write_bytes(b"".join(failing_log.read_bytes().splitlines(keepends=True)[1:]))
    status, _out, err = cli("logs", "filter", "--strict", str(headless))
    assert status == 2 and "a RunStarted header line" in err


@pytest.mark.parametrize("view", ["check", "stats", "timeline", "filter"])
def test_a_file_that_is_not_a_run_log_is_bad_input_not_ok(tmp_path: Path, view: str) -> None:
    """An empty file, or a soak's results.jsonl, is exit 2 with one line, never 'ok'."""
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    results = tmp_path / "results.jsonl"
    results.write_bytes(b'{"index":0,"scenario_seed":1,"strategy":"random"}\n' * 3)
    for path, got in ((empty, "an empty file"), (results, "missing required field `ev`")):
        status, out, err = cli("logs", view, str(path))
        assert status == 2 and out == "", (view, path, out)
        assert err.count("\n") == 1 and "a run log" in err and got in err, err
