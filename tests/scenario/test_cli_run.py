"""`vgic-actors run` and `vgic-actors validate`, in-process: output, exit codes, logs, replay."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from vgic_actors.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config/default-scenario.yaml"
CONTROL = "no-spi-tracking: [deactivation-lost, guest-assertion]"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def variant_lines(out: str) -> dict[str, str]:
    """'  ok   merged  found: ...' lines by variant."""
    lines = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("ok", "FAIL") and parts[2] == "found:":
            lines[parts[1]] = line
    return lines


def test_run_without_a_scenario_runs_the_builtin_default_side_by_side():
    code, out, err = cli("run")
    assert (code, err) == (0, "")
    assert out.startswith(f"default-asym-dir ({DEFAULT})")
    lines = variant_lines(out)
    assert list(lines) == ["merged", "no-spi-tracking"]
    assert lines["merged"].split()[0] == "ok" and "found: pass (20/20 runs clean)" in out
    assert lines["no-spi-tracking"].split()[0] == "ok"
    assert "deactivation-lost in 20/20" in lines["no-spi-tracking"]
    assert "expected: deactivation-lost + guest-assertion" in out
    assert "first finding on no-spi-tracking" in out and "Traceback" not in out
    assert out.rstrip().endswith("result: every verdict held")


def test_run_json_reports_every_variant_and_run():
    code, out, _ = cli("run", "--json", "--runs", "3", "--seed", "5")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True
    report = doc["report"]
    assert report["seeds"] == [5, 6, 7]
    by_name = {v["variant"]: v for v in report["variants"]}
    assert list(by_name) == ["merged", "no-spi-tracking"]
    assert by_name["merged"]["found"] == [] and by_name["merged"]["ok"] is True
    control = by_name["no-spi-tracking"]
    assert control["expected"] == control["found"] == ["deactivation-lost", "guest-assertion"]
    for v in by_name.values():
        assert [r["seed"] for r in v["runs"]] == [5, 6, 7]
        assert all(r["variant"] == v["variant"] and r["steps"] > 0 for r in v["runs"])
        assert all(r["outcome"] == "quiescent" for r in v["runs"])
    assert all({x["invariant"] for x in r["violations"]} == {"deactivation-lost",
                                                             "guest-assertion"}
               for r in control["runs"])


def test_a_verdict_that_does_not_hold_exits_1(tmp_path):
    text = DEFAULT.read_text(encoding="utf-8")
    assert CONTROL in text
    path = tmp_path / "wrong.yaml"
    path.write_text(text.replace(CONTROL, "no-spi-tracking: pass"), encoding="utf-8")
    code, out, err = cli("run", str(path), "--runs", "2")
    assert (code, err) == (1, "")
    lines = variant_lines(out)
    assert lines["merged"].split()[0] == "ok"
    assert lines["no-spi-tracking"].split()[0] == "FAIL"
    assert out.rstrip().endswith("a verdict did not hold (exit status 1)")
    code, out, _ = cli("run", str(path), "--runs", "2", "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_only_the_asked_variant_runs():
    code, out, _ = cli("run", "--variant", "merged", "--runs", "1", "--json")
    assert code == 0
    assert [v["variant"] for v in json.loads(out)["report"]["variants"]] == ["merged"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["--variant", "nosuch"], "--variant"),
    (["--strategy", "pct:0"], "--strategy"),
    (["--strategy", "bogus"], "--strategy"),
    (["--runs", "0"], "--runs"),
    (["--seed", "-1"], "--seed"),
    (["--max-steps", "5"], "--max-steps"),
    (["/nonexistent/scenario.yaml"], "/nonexistent/scenario.yaml"),
    (["--strategy", "replay:/nonexistent/x.choices.json"], "/nonexistent/x.choices.json"),
])
def test_bad_usage_exits_2_with_one_error_line(argv, needle):
    code, out, err = cli("run", *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert "Traceback" not in err


def test_a_malformed_choices_file_is_bad_input(tmp_path):
    bad = tmp_path / "x.choices.json"
    bad.write_text('{"seed": "zero"}', encoding="utf-8")
    code, out, err = cli("run", "--strategy", f"replay:{bad}")
    assert code == 2 and out == "" and err.startswith(f"error: {bad}: ")
    assert err.count("\n") == 1


def logged_run(tmp_path: Path, folder: str, *extra: str) -> tuple[dict, bytes]:
    """Seed 3 of no-spi-tracking, logged to FOLDER/run.jsonl (the header names the choices
    file by its base name, so logs in different folders can be compared byte for byte)."""
    (tmp_path / folder).mkdir()
    log = tmp_path / folder / "run.jsonl"
    code, out, err = cli("run", "--variant", "no-spi-tracking", "--seed", "3", "--runs", "1",
                         "--json", "--log", str(log), *extra)
    assert (code, err) == (0, "")
    return json.loads(out), log.read_bytes()


def test_log_writes_events_and_a_choices_file(tmp_path):
    result, data = logged_run(tmp_path, "a")
    lines = data.decode().splitlines()
    events = [json.loads(line) for line in lines]
    head = events[0]
    assert head["ev"] == "RunStarted" and head["seed"] == 3
    assert head["variant"] == "no-spi-tracking" and head["scenario"] == "default-asym-dir"
    assert sum(e["ev"] == "RunStarted" for e in events) == 1
    assert {"ActorStepped", "RunEnded"} <= {e["ev"] for e in events}
    assert head.get("choices", "run.jsonl.choices.json") == "run.jsonl.choices.json"
    choices = json.loads((tmp_path / "a/run.jsonl.choices.json").read_text(encoding="utf-8"))
    assert (choices["seed"], choices["variant"]) == (3, "no-spi-tracking")
    assert choices["scenario"] == "default-asym-dir"
    assert choices["digest"] == result["report"]["digest"]
    assert len(choices["choices"]["values"]) == len(choices["choices"]["bounds"]) > 0


def test_replay_reproduces_the_run(tmp_path):
    first, first_log = logged_run(tmp_path, "a")
    choices = tmp_path / "a/run.jsonl.choices.json"
    again, again_log = logged_run(tmp_path, "b", "--strategy", f"replay:{choices}")
    (r1,) = first["report"]["variants"][0]["runs"]
    (r2,) = again["report"]["variants"][0]["runs"]
    assert r2["spec"] == f"replay:{choices}"
    assert (r2["steps"], r2["vt"], r2["outcome"]) == (r1["steps"], r1["vt"], r1["outcome"])
    assert r2["choices"] == r1["choices"] and r2["violations"] == r1["violations"]
    assert again["report"]["variants"][0]["found"] == first["report"]["variants"][0]["found"]
    # Every event after the RunStarted header is the same, byte for byte.
    assert first_log.split(b"\n")[1:] == again_log.split(b"\n")[1:]
    assert len(first_log.split(b"\n")) > 50


@pytest.mark.parametrize("strategy", ["pct:3", "random"])
def test_the_same_seed_gives_a_byte_identical_log(tmp_path, strategy):
    _, one = logged_run(tmp_path, "one", "--strategy", strategy)
    _, two = logged_run(tmp_path, "two", "--strategy", strategy)
    assert one == two
    assert (tmp_path / "one/run.jsonl.choices.json").read_bytes() == \
        (tmp_path / "two/run.jsonl.choices.json").read_bytes()
    _, other = logged_run(tmp_path, "other", "--strategy", strategy, "--seed", "4")
    assert other != one  # the seed matters (the header alone differs at least)


def test_log_keeps_the_first_failing_run(tmp_path):
    log = tmp_path / "f.jsonl"
    code, out, _ = cli("run", "--runs", "2", "--log", str(log))
    assert code == 0
    assert f"log: {log} (variant no-spi-tracking, seed 0)" in out
    head = json.loads(log.read_text(encoding="utf-8").splitlines()[0])
    assert (head["variant"], head["seed"]) == ("no-spi-tracking", 0)


def test_validate_accepts_the_whole_library():
    files = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    assert len(files) >= 10
    code, out, err = cli("validate", *files, str(DEFAULT))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == len(files) + 1
    for line, file in zip(lines, [*files, str(DEFAULT)], strict=True):
        assert line.startswith(f"ok: {file}: ")


def test_validate_reports_each_bad_file_and_goes_on(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vm: {lrs: 17}\n", encoding="utf-8")
    code, out, err = cli("validate", str(bad), str(DEFAULT))
    assert code == 2
    assert err == f"error: {bad}:1:11: $.vm.lrs: expected an integer <= 16, got 17\n"
    assert out.startswith(f"ok: {DEFAULT}: default-asym-dir (merged, no-spi-tracking)")


def test_an_unwritable_log_fails_before_any_run(tmp_path: Path, monkeypatch) -> None:
    """--log into a missing folder (or onto a directory) is exit 2 up front, one line."""
    def no_runs(*_a: object, **_k: object) -> None:
        raise AssertionError("the scenario ran before the log path was checked")

    monkeypatch.setattr("vgic_actors.scenario.run_scenario", no_runs)
    for log, got in ((tmp_path / "missing" / "x.jsonl", "no folder"), (tmp_path, "a directory")):
        code, out, err = cli("run", "--log", str(log))
        assert code == 2 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: {log}: ") and got in err
