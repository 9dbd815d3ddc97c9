"""The soak worker: generated scenarios run as data, and a kept YAML loads back equal."""

import pytest

from vgic_actors.errors import InputError
from vgic_actors.scenario.loader import load_scenario_text, parse_scenario_data
from vgic_actors.soak.generate import generate
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import ScenarioSource, run_index, scenario_text


def test_a_kept_scenario_yaml_loads_back_to_the_scenario_that_ran():
    """For many generated scenarios, the one built from data (what the soak runs) equals
    the one loaded from the YAML a finding or --keep-scenarios writes, digest included."""
    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    for seed in range(150):
        ran = source.build(seed)
        kept = load_scenario_text(source.yaml(seed), f"gen-{seed}.yaml")
        assert ran == kept, seed
        assert ran.digest == kept.digest


def test_in_memory_data_is_checked_like_a_file():
    """Bad data is one located InputError: the path, no line (there is no file)."""
    profile, _ = load_profile(None)
    data = generate(profile, 3)
    data["vm"]["lrs"] = 17
    with pytest.raises(InputError) as info:
        parse_scenario_data(data, "gen-3.yaml")
    assert info.value.path == "$.vm.lrs" and info.value.line is None
    with pytest.raises(InputError) as text_info:
        load_scenario_text(scenario_text(data), "gen-3.yaml")
    assert text_info.value.path == "$.vm.lrs" and text_info.value.line is not None


def test_semantic_checks_apply_to_data():
    """An INTID the VM does not implement is rejected from data as from a file."""
    profile, _ = load_profile(None)
    data = generate(profile, 5)
    data["expect"]["final"].append({"intid": 2000})
    with pytest.raises(InputError) as info:
        parse_scenario_data(data, "gen-5.yaml")
    assert info.value.path.startswith("$.expect.final[")


def test_keep_scenarios_writes_each_generated_run_and_findings_replay(tmp_path):
    """--keep-scenarios keeps one YAML per run (none without it); a finding's kept YAML
    has the digest its choice log names, so replay accepts it."""
    import io
    import json

    from vgic_actors.cli import main

    out, plain = tmp_path / "kept", tmp_path / "plain"
    for folder, extra in ((out, ["--keep-scenarios"]), (plain, [])):
        main(["soak", "--variant", "no-spi-tracking", "--runs", "6", "--out", str(folder),
              *extra], stdout=io.StringIO(), stderr=io.StringIO())
    kept = sorted(p.name for p in (out / "scenarios").iterdir())
    assert len(kept) == 6 and kept[0].startswith("000000-gen-")
    assert not (plain / "scenarios").exists()
    findings = list((out / "findings").iterdir())
    assert findings
    for finding in findings:
        digest = json.loads((finding / "choices.json").read_text())["digest"]
        text = (finding / "scenario.yaml").read_text()
        assert load_scenario_text(text, "scenario.yaml").digest == digest


def test_pct_in_the_soak_takes_its_horizon_from_the_scenario():
    """pct and pct:D get k from the scenario; an explicit k and other strategies stay."""
    from vgic_actors.scenario.runner import pct_horizon, with_horizon

    profile, _ = load_profile(None)
    scenario = ScenarioSource(profile=profile).build(4)
    k = pct_horizon(scenario)
    assert with_horizon("pct:2", scenario) == f"pct:2:{k}"
    assert with_horizon("pct", scenario) == f"pct:3:{k}"
    assert with_horizon("pct:2:50", scenario) == "pct:2:50"
    assert with_horizon("random", scenario) == "random"
    record = run_index(ScenarioSource(profile=profile), "merged", 0, "pct:2", 4)
    assert record.strategy.startswith("pct:2:")


def test_the_estimated_horizon_covers_most_pct_runs():
    """PCT's depth bound needs k >= the run's decisions: true of >= 90% of generated runs,
    while k stays within 3x of them (change points past the end are wasted)."""
    from vgic_actors.scenario.runner import pct_horizon, run_once

    profile, _ = load_profile(None)
    source = ScenarioSource(profile=profile)
    covered, usage = 0, []
    for seed in range(40):
        scenario = source.build(seed)
        k = pct_horizon(scenario)
        decisions = len(run_once(scenario, "merged", seed, f"pct:3:{k}").choices.values)
        covered += decisions <= k
        usage.append(decisions / k)
    assert covered >= 36
    assert sorted(usage)[len(usage) // 2] >= 1 / 3
