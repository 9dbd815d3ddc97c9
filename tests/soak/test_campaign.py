"""Soak campaigns: results kept per run, findings saved once, resume, crashes recorded."""

import io
import json

import msgspec

from tests.soak.profiles import edge_profile
from vgic_actors.cli import main
from vgic_actors.soak import campaign as campaign_mod
from vgic_actors.soak import worker
from vgic_actors.soak.worker import RunRecord


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def records(out):
    lines = (out / "results.jsonl").read_bytes().splitlines()
    return [msgspec.json.decode(line, type=RunRecord) for line in lines]


def key(rec):
    return (rec.index, rec.scenario_seed, rec.strategy, rec.signature, rec.interleaving)


def test_a_campaign_keeps_every_run_and_each_distinct_finding_once(tmp_path):
    out = tmp_path / "c"
    code, stdout, _ = cli("soak", "--profile", edge_profile(tmp_path), "--variant",
                          "no-spi-tracking", "--runs", "24", "--out", str(out))
    assert code == 1
    recs = records(out)
    assert sorted(r.index for r in recs) == list(range(24))
    sigs = {r.signature for r in recs if r.signature}
    assert sigs and all("deactivation-lost" in s for s in sigs)
    folders = sorted((out / "findings").iterdir())
    assert len(folders) == len(sigs)
    for folder in folders:
        finding = json.loads((folder / "finding.json").read_text())
        assert finding["signature"] in sigs and finding["variant"] == "no-spi-tracking"
        assert (folder / "scenario.yaml").exists() and (folder / "choices.json").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 24 and sum(summary["findings"].values()) == \
        sum(1 for r in recs if r.signature)
    assert "no-spi-tracking" in stdout and "deactivation-lost" in stdout


def test_a_killed_campaign_resumes_without_losing_or_repeating_runs(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "16", "--out", str(whole))
    cli("soak", "--variant", "no-spi-tracking", "--runs", "16", "--out", str(cut))
    lines = (cut / "results.jsonl").read_bytes().splitlines()
    # a kill after 6 finished runs, in the middle of writing the 7th
    (cut / "results.jsonl").write_bytes(b"".join(x + b"\n" for x in lines[:6]) + lines[6][:17])
    code, _, _ = cli("soak", "--runs", "16", "--out", str(cut), "--resume")
    assert code == 1
    assert sorted(map(key, records(cut))) == sorted(map(key, records(whole)))


def test_resume_needs_a_campaign_and_a_fresh_out_needs_no_old_one(tmp_path):
    code, _, err = cli("soak", "--runs", "2", "--out", str(tmp_path / "none"), "--resume")
    assert code == 2 and "holds no campaign" in err
    cli("soak", "--runs", "2", "--out", str(tmp_path / "c"))
    code, _, err = cli("soak", "--runs", "2", "--out", str(tmp_path / "c"))
    assert code == 2 and "--resume" in err


def test_ctrl_c_keeps_finished_runs(tmp_path, monkeypatch):
    out = tmp_path / "c"
    real = campaign_mod.Campaign.record
    calls = []

    def record(self, rec):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(rec.index)
        real(self, rec)

    monkeypatch.setattr(campaign_mod.Campaign, "record", record)
    code, _, err = cli("soak", "--runs", "20", "--out", str(out))
    assert code == 130 and "--resume" in err
    assert [r.index for r in records(out)] == calls
    assert json.loads((out / "summary.json").read_text())["runs"] == 5


def test_a_run_that_raises_is_a_recorded_finding_with_its_seed(tmp_path, monkeypatch):
    real = worker.run_once

    def run_once(scenario, variant, seed, spec, **kw):
        if seed == worker.scenario_seed(0, 3):
            raise RuntimeError("model bug")
        return real(scenario, variant, seed, spec, **kw)

    monkeypatch.setattr(worker, "run_once", run_once)
    out = tmp_path / "c"
    code, stdout, _ = cli("soak", "--runs", "6", "--out", str(out))
    assert code == 1
    crash = [r for r in records(out) if r.outcome == "crash"]
    assert [r.index for r in crash] == [3]
    assert crash[0].signature == "crash/RuntimeError" and "model bug" in crash[0].detail
    assert crash[0].scenario_seed == worker.scenario_seed(0, 3)
    assert "crash/RuntimeError" in stdout


def test_two_workers_give_the_same_runs_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    cli("soak", "--variant", "no-spi-tracking", "--runs", "16", "--out", str(one))
    cli("soak", "--variant", "no-spi-tracking", "--runs", "16", "--out", str(two),
        "--workers", "2")
    assert sorted(map(key, records(one))) == sorted(map(key, records(two)))


def test_a_scenario_file_can_be_soaked_over_seeds(tmp_path):
    code, stdout, _ = cli("soak", "--scenario", "scenarios/asym_dir.yaml", "--variant",
                          "mutant-kick-only-target", "--runs", "24", "--out",
                          str(tmp_path / "c"))
    assert code == 1 and "deactivation-lost" in stdout


def test_soak_usage_errors(tmp_path):
    for argv, words in [
        (["soak", "--out", str(tmp_path / "a")], "budget"),
        (["soak", "--runs", "0", "--out", str(tmp_path / "b")], "--runs"),
        (["soak", "--runs", "1", "--time", "forever", "--out", str(tmp_path / "c")], ""),
        (["soak", "--time", "ten", "--out", str(tmp_path / "d")], "--time"),
        (["soak", "--runs", "1", "--variant", "nosuch", "--out", str(tmp_path / "e")],
         "--variant"),
        (["soak", "--runs", "1", "--profile", "nosuch", "--out", str(tmp_path / "f")],
         "soak-nosuch.yaml"),
    ]:
        code, _, err = cli(*argv)
        assert code == 2, argv
        assert words in err


def test_two_soaks_without_out_get_fresh_named_folders(tmp_path, monkeypatch):
    """Each soak claims its own folder and says which; the second never collides."""
    monkeypatch.chdir(tmp_path)
    folders = []
    for _ in range(2):
        code, _, err = cli("soak", "--runs", "2")
        assert code == 0, err
        folders.append(err.splitlines()[0].removeprefix("soak: writing to ").rstrip("/"))
    assert folders == ["soak-merged-seed0", "soak-merged-seed0-2"]
    assert all((tmp_path / f / "results.jsonl").exists() for f in folders)
    code, _, err = cli("soak", "--runs", "2", "--resume")
    assert code == 2 and "--resume needs --out" in err


def test_soak_progress_and_the_next_step_after_findings(tmp_path):
    """Progress shows elapsed, rate, ETA and findings; findings end with the shrink command."""
    out = tmp_path / "c"
    code, stdout, err = cli("soak", "--profile", edge_profile(tmp_path), "--variant",
                            "no-spi-tracking", "--runs", "24", "--out", str(out), "--progress")
    last = err.split("\r")[-1]
    assert code == 1 and "runs 24/24 (" in last and "/s), elapsed " in last
    assert "ETA " in last and "findings 1 distinct" in last, err
    folder = next((out / "findings").iterdir())
    assert stdout.splitlines()[-1] == f"next: vgic-actors shrink {folder}"
