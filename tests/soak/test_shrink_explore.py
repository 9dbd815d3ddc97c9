"""Shrinking a finding, replaying it, and bounded exhaustive exploration."""

import io
import json

import yaml

from tests.soak.profiles import edge_profile
from vgic_actors.cli import main
from vgic_actors.scenario import load_scenario
from vgic_actors.soak.explore import BoundedSchedule, explore


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def a_finding(tmp_path):
    out = tmp_path / "c"
    cli("soak", "--profile", edge_profile(tmp_path), "--variant", "no-spi-tracking",
                          "--runs", "24", "--out", str(out))
    return next((out / "findings").iterdir())


def ops_in(data):
    return sum(len(g["ops"] if isinstance(g, dict) else g) for g in data["guests"].values())


def test_a_shrunk_finding_is_smaller_and_replays_to_the_same_invariant(tmp_path):
    folder = a_finding(tmp_path)
    code, stdout, _ = cli("shrink", str(folder), "--budget", "20")
    assert code == 0 and "wrote shrunk.yaml" in stdout
    original = yaml.safe_load((folder / "scenario.yaml").read_text())
    shrunk = yaml.safe_load((folder / "shrunk.yaml").read_text())
    assert ops_in(shrunk) < ops_in(original)
    # the core invariant, and whatever else the replay breaks (test_shrink_verdict.py)
    assert "deactivation-lost" in shrunk["expect"]["verdicts"]["no-spi-tracking"]
    code, stdout, _ = cli("replay", str(folder), "--log", str(tmp_path / "r.jsonl"))
    assert code == 0 and "the finding came back" in stdout
    header = json.loads((tmp_path / "r.jsonl").read_text().splitlines()[0])
    assert header["variant"] == "no-spi-tracking"
    # the replay line in its header works as a `vgic-actors run` command
    recorded = json.loads((folder / "shrunk.choices.json").read_text())
    code, stdout, _ = cli("run", str(folder / "shrunk.yaml"), "--variant", "no-spi-tracking",
                          "--seed", str(recorded["seed"]), "--runs", "1", "--strategy",
                          f"replay:{folder / 'shrunk.choices.json'}")
    assert code == 0 and "deactivation-lost in 1/1" in stdout


def test_replay_of_the_original_finding(tmp_path):
    folder = a_finding(tmp_path)
    code, stdout, _ = cli("replay", str(folder), "--original", "--log",
                          str(tmp_path / "r.jsonl"))
    assert code == 0 and "scenario.yaml" in stdout and "came back" in stdout


def test_replay_and_shrink_need_a_finding_folder(tmp_path):
    for cmd in ("replay", "shrink"):
        code, _, err = cli(cmd, str(tmp_path))
        assert code == 2 and "finding.json" in err


def test_the_base_schedule_is_deterministic_and_clean_on_merged():
    scenario = load_scenario("scenarios/asym_dir.yaml")
    from vgic_actors.scenario.runner import run_once

    one = run_once(scenario, "merged", 0, BoundedSchedule([]))
    two = run_once(scenario, "merged", 0, BoundedSchedule([]))
    assert one.choices == two.choices and one.violations == []


def test_explore_proves_asym_dir_clean_on_merged_within_one_deviation():
    scenario = load_scenario("scenarios/asym_dir.yaml")
    result = explore(scenario, "merged", 1)
    assert result.exhausted and result.counterexample is None
    assert result.schedules > 50  # every single deviation of the base schedule ran


def test_explore_finds_the_lost_deactivation_without_spi_tracking(tmp_path):
    code, stdout, _ = cli("explore", "scenarios/asym_dir.yaml", "--bound", "1", "--variant",
                          "no-spi-tracking", "--out", str(tmp_path / "x.json"))
    assert code == 1 and "deactivation-lost" in stdout
    code, stdout, _ = cli("run", "scenarios/asym_dir.yaml", "--variant", "no-spi-tracking",
                          "--seed", "0", "--runs", "1", "--strategy",
                          f"replay:{tmp_path / 'x.json'}")
    assert "deactivation-lost in 1/1" in stdout


def test_explore_finds_the_kick_only_target_mutant_within_one_deviation():
    """Zero deviations: the base schedule lets vCPU1 exit on its own; one deviation is
    enough to keep it in the guest with TDIR clear until its DIR."""
    scenario = load_scenario("scenarios/asym_dir.yaml")
    result = explore(scenario, "mutant-kick-only-target", 1)
    assert result.counterexample is not None
    assert "deactivation-lost" in {v.invariant for v in result.counterexample.violations}


def test_shrink_accepts_only_candidates_of_the_findings_class(tmp_path):
    """A timing-window finding must not shrink into an ordering run (or back): the class
    is part of the signature the shrunk finding claims."""
    from vgic_actors.checks.final import violation
    from vgic_actors.checks.signature import Signature
    from vgic_actors.runtime import ChoiceLog, StallEvent, Timing
    from vgic_actors.scenario.runner import RunReport
    from vgic_actors.soak.shrink import _Search

    def report(timing):
        return RunReport(variant="merged", seed=0, spec="random", strategy="random",
                         outcome="quiescent", steps=10, vt=10,
                         violations=[violation("deactivation-lost", "SPI 32 still Active")],
                         warnings=[], choices=ChoiceLog(values=[], bounds=[]), timing=timing)

    late = Timing(mode="adversarial", max_ipi_latency=70, events=[StallEvent(
        kind="ipi-delay", actor="cpu1.ipi", where="#6 ipi", duration=64, step=3)])
    assert report(late).signature.finding_class == "timing-window"
    for wanted, good, bad in ((report(late).signature, late, Timing()),
                              (report(Timing()).signature, Timing(), late)):
        again = Signature.from_key(wanted.key)
        assert again == wanted
        search = _Search("merged", 0, again, 1.0, tmp_path, 100)
        assert search.reproduces(report(good))
        assert not search.reproduces(report(bad))


def test_ctrl_c_stops_the_shrink_search_and_keeps_the_best_so_far(tmp_path, monkeypatch):
    """A Ctrl-C inside a candidate run ends the search; what was shrunk is still written."""
    from vgic_actors.soak import shrink

    folder = a_finding(tmp_path)
    real, calls = shrink.run_once, []

    def run_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(shrink, "run_once", run_once)
    code, _, err = cli("shrink", str(folder), "--budget", "20")
    assert code == 130 and err.count("\n") == 1 and err.startswith("interrupted: ")
    assert "shrink again from the original: vgic-actors shrink" in err
    assert (folder / "shrunk.yaml").exists() and "shrunk.yaml" in err


def test_explore_that_stops_at_max_runs_proves_nothing_and_says_so():
    """Stopping at --max-runs before the space is exhausted is exit 1, not a clean bill."""
    code, out, _ = cli("explore", "scenarios/asym_dir.yaml", "--bound", "2", "--max-runs", "3")
    assert code == 1 and "nothing proven" in out
