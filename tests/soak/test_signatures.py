"""Re-finding a finding compares its full signature: shrink, replay, the merged re-run.

pseudo_lr_window on merged loses a trapped DIR's deactivation two ways (docs/findings.md):
F1, vgic_v3_deactivate treats it as an ICACTIVER write (outcome icactiver), and F2, it
folds a pseudo-LR (outcome pseudo-lr). Same invariant, two findings.
"""

import io
import json
import tempfile
from pathlib import Path

import pytest

from vgic_actors.checks.signature import Signature
from vgic_actors.cli import main
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once
from vgic_actors.soak import worker
from vgic_actors.soak.shrink import _Search

SCENARIO = "scenarios/pseudo_lr_window.yaml"
F1 = ("ordering/deactivation-lost/DIR-trapped:icactiver/on-ap-list"
      "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
      "clear:vgic_mmio_change_active<-vgic_v3_deactivate")
F2 = ("ordering/deactivation-lost/DIR-trapped:pseudo-lr/on-ap-list"
      "/undo:vgic_v3_fold_lr<-vgic_v3_fold_lr_state,"
      "clear:vgic_v3_fold_lr<-vgic_v3_deactivate")


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def seed_of(key):
    scenario = load_scenario(SCENARIO)
    return next(s for s in range(200)
                if run_once(scenario, "merged", s, "random").signature.key == key)


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    out = tmp_path_factory.mktemp("soak") / "c"
    cli("soak", "--scenario", SCENARIO, "--strategy", "random", "--runs", "150", "--out",
        str(out))
    by_key = {json.loads((f / "finding.json").read_text())["signature"]: f
              for f in (out / "findings").iterdir()}
    assert {F1, F2} <= set(by_key), by_key
    return by_key


def test_shrink_accepts_only_a_run_with_the_full_signature():
    """An F2 run breaks the same invariant as F1 but is not the F1 finding."""
    scenario = load_scenario(SCENARIO)
    f1 = run_once(scenario, "merged", seed_of(F1), "random")
    f2 = run_once(scenario, "merged", seed_of(F2), "random")
    with tempfile.TemporaryDirectory() as tmp:
        search = _Search("merged", 0, Signature.from_key(F1), 10.0, Path(tmp), 20_000)
        assert search.reproduces(f1)
        assert not search.reproduces(f2)


def test_the_merged_rerun_counts_only_the_same_full_signature():
    """The differential check says merged-too only when merged finds the same finding."""
    scenario = load_scenario(SCENARIO)
    seed = seed_of(F1)
    source = worker.ScenarioSource(path=SCENARIO)
    assert worker._also_on_merged(scenario, seed, "random", source, Signature.from_key(F1))
    assert not worker._also_on_merged(scenario, seed, "random", source,
                                      Signature.from_key(F2))


def test_replay_says_the_finding_came_back_only_for_its_full_signature(findings, tmp_path):
    """An F1 run replayed against a finding recorded as F2 did not bring F2 back."""
    folder = findings[F1]
    record = json.loads((folder / "finding.json").read_text())
    (folder / "finding.json").write_text(json.dumps({**record, "signature": F2}))
    try:
        code, stdout, _ = cli("replay", str(folder), "--original", "--log",
                              str(tmp_path / "r.jsonl"))
    finally:
        (folder / "finding.json").write_text(json.dumps(record))
    assert code == 1 and "did NOT come back" in stdout and F1 in stdout, stdout


def test_the_shrunk_header_states_what_replay_finds(findings, tmp_path):
    """shrunk.yaml's header names the signature its replay finds."""
    folder = findings[F1]
    code, _, _ = cli("shrink", str(folder), "--budget", "10")
    assert code == 0
    assert F1 in (folder / "shrunk.yaml").read_text().splitlines()[0]
    code, stdout, _ = cli("replay", str(folder), "--log", str(tmp_path / "r.jsonl"))
    assert code == 0 and f"the finding came back ({F1})" in stdout, stdout
