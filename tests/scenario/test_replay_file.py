"""Choice files (issue 17 item 3, issue 15 item 2): sealed by a checksum, replayed only for the
run they were recorded for, never overwritten by the replay.

Each test records seed 3 of asym_dir on no-spi-tracking with `run --log`, then replays it
through the CLI the way the issue describes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vgic_actors.cli import main

ROOT = Path(__file__).resolve().parents[2]
ASYM = str(ROOT / "scenarios/asym_dir.yaml")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """run.jsonl.choices.json of asym_dir, no-spi-tracking, seed 3."""
    log = tmp_path / "run.jsonl"
    code, _, err = cli("run", ASYM, "--variant", "no-spi-tracking", "--seed", "3", "--runs",
                       "1", "--log", str(log))
    assert (code, err) == (0, "")
    return tmp_path / "run.jsonl.choices.json"


def replay(choices: Path, *extra: str) -> tuple[int, str, str]:
    return cli("run", ASYM, "--strategy", f"replay:{choices}", *extra)


def test_the_variant_and_seed_come_from_the_file(recorded, tmp_path):
    """Without --variant and --seed the replay runs the recorded variant and seed."""
    log = tmp_path / "again.jsonl"
    code, out, err = replay(recorded, "--json", "--log", str(log))
    assert (code, err) == (0, "")
    (variant,) = json.loads(out)["report"]["variants"]
    assert variant["variant"] == "no-spi-tracking" and variant["runs"][0]["seed"] == 3
    header = json.loads(log.read_text(encoding="utf-8").splitlines()[0])
    assert (header["variant"], header["seed"]) == ("no-spi-tracking", 3)


@pytest.mark.parametrize(("extra", "path", "got"), [
    (["--variant", "merged"], "$.variant", "'no-spi-tracking'"),
    (["--seed", "0"], "$.seed", "3"),
])
def test_a_recording_of_another_run_is_refused(recorded, extra, path, got):
    """Another variant or seed: exit 2, one line naming the file and the field."""
    code, out, err = replay(recorded, *extra)
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert err.startswith(f"error: {recorded}: {path}: expected ") and err.endswith(
        f", got {got}\n")
    assert "--force-replay" in err
    code, _, err = replay(recorded, *extra, "--force-replay")
    assert code in (0, 1) and err == ""


def test_another_scenario_is_refused(recorded):
    """A recording of asym_dir replayed on another scenario: refused on its digest."""
    code, _, err = cli("run", str(ROOT / "scenarios/dec_on_fold.yaml"), "--strategy",
                       f"replay:{recorded}")
    assert code == 2 and f"error: {recorded}: $.digest: " in err


def _tamper(file: Path, old: str, new: str) -> None:
    text = file.read_text(encoding="utf-8")
    assert old in text
    file.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_changed_file_is_refused_by_its_checksum(recorded):
    """One value changed within its bound still replays another run: the checksum says no."""
    _tamper(recorded, '"values": [\n      1,', '"values": [\n      0,')
    code, out, err = replay(recorded)
    assert (code, out) == (2, "") and f"error: {recorded}: $.checksum: expected" in err
    assert replay(recorded, "--force-replay")[0] in (0, 1)


def test_a_value_out_of_its_bound_is_refused_even_when_forced(recorded):
    """A negative value is no schedule at all: refused at its index, whatever the flags."""
    _tamper(recorded, '"values": [\n      1,', '"values": [\n      -1,')
    code, _, err = replay(recorded, "--force-replay")
    assert code == 2 and err == (f"error: {recorded}: $.choices.values[0]: expected a choice "
                                 "in 0..2 (its bound), got -1\n")


def test_the_replay_never_overwrites_its_input(recorded, tmp_path):
    """--log next to the replayed file would overwrite it: refused before any run; the
    printed replay command logs elsewhere."""
    before = recorded.read_bytes()
    code, out, err = replay(recorded, "--log", str(tmp_path / "run.jsonl"))
    assert (code, out) == (2, "") and "would overwrite" in err
    assert recorded.read_bytes() == before
    _, out, _ = replay(recorded)
    command = next(line for line in out.splitlines() if "replay: vgic-actors run" in line)
    assert "--log run.jsonl.replay.jsonl" in command
