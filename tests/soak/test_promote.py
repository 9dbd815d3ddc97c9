"""Promotion: a finding becomes a library scenario whose verdicts hold."""

import io
from pathlib import Path

import msgspec
import pytest

from vgic_actors.cli import main
from vgic_actors.errors import InputError
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_scenario
from vgic_actors.soak.campaign import Finding
from vgic_actors.soak.promote import promote_finding

F3 = Path(__file__).parents[2] / "scenarios" / "irqfd_resample.yaml"
F3_KEY = "ordering/resample-lost/vgic_v3_fold_lr:no-notify"


def _finding(tmp_path: Path, signature: str = F3_KEY) -> Path:
    folder = tmp_path / "findings" / "f3"
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(F3.read_text())
    finding = Finding(signature=signature, violations=["deadlock", "resample-lost"],
                      detail="", index=7, scenario_seed=42, strategy="pct:3",
                      variant="merged", steps=99)
    (folder / "finding.json").write_bytes(msgspec.json.encode(finding))
    return folder


def test_a_promoted_finding_fails_where_it_was_found_and_passes_where_it_was_not(tmp_path):
    """F3 promoted: merged is expected to break resample-lost (with its symptoms),
    pre-series to pass, and the written file's verdicts hold when it is run."""
    done = promote_finding(_finding(tmp_path), name="f3_promoted", variants=["pre-series"],
                           out_dir=tmp_path / "lib")
    assert done.path == tmp_path / "lib" / "f3_promoted.yaml"
    assert "resample-lost" in done.verdicts["merged"]
    assert done.verdicts["pre-series"] == "pass"
    scenario = load_scenario(done.path)
    assert scenario.name == "f3_promoted"
    assert scenario.expected_verdict("pre-series") == []
    assert "resample-lost" in scenario.expected_verdict("merged")
    assert run_scenario(scenario).ok
    assert done.path.read_text().startswith("# Promoted from ")


def test_a_finding_that_does_not_come_back_is_refused(tmp_path):
    """A signature the scenario never shows within the seeds: one error, no file."""
    folder = _finding(tmp_path, "ordering/deactivation-lost/DIR-trapped:pseudo-lr/in-lr")
    with pytest.raises(InputError, match="did not"):
        promote_finding(folder, name="nope", variants=[], out_dir=tmp_path / "lib",
                        max_seeds=3)
    assert not (tmp_path / "lib" / "nope.yaml").exists()


def test_the_command_writes_the_scenario_and_refuses_to_overwrite(tmp_path):
    """`vgic-actors promote FINDING --name N --out DIR`; a second time: exit 2, one line."""
    folder = _finding(tmp_path)
    argv = ["promote", str(folder), "--name", "f3", "--out", str(tmp_path / "lib"),
            "--variants", "pre-series"]
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 0
    assert "wrote " in out.getvalue() and (tmp_path / "lib" / "f3.yaml").exists()
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdout=out, stderr=err) == 2
    assert err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1
