"""explore --around: deviations counted from a finding's own schedule."""

import io
import json
from pathlib import Path

from vgic_actors.cli import main
from vgic_actors.report.examples import EXAMPLES
from vgic_actors.runtime import timing_model
from vgic_actors.runtime.choices import ChoiceLog
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import load_recorded
from vgic_actors.soak.explore import BoundedSchedule, explore, schedule_as_run

ROOT = Path(__file__).resolve().parents[2]
F1 = ROOT / "docs/reports/F1"
F1_KEY = next(e.signature for e in EXAMPLES if e.name == "F1")


class _Item:
    prio = 0.0


def _f1():
    scenario = load_scenario(F1 / "shrunk.yaml")
    recorded = load_recorded(F1 / "shrunk.choices.json")
    return scenario, recorded, schedule_as_run(scenario, recorded)


def test_the_base_follows_the_recording_until_a_deviation_or_a_new_enabled_set():
    log = ChoiceLog(values=[1, 2, 0, 1], bounds=[2, 3, 2, 2])
    items = [_Item(), _Item(), _Item()]
    st = BoundedSchedule([], log)
    assert [st.choose(items[:2]), st.choose(items)] == [1, 2]
    assert st.choose(items) == 0  # three enabled where the recording had two: canonical
    assert st.choose(items[:2]) == 0 and st.followed == 2
    st = BoundedSchedule([0], log)  # a deviation at the first decision
    assert st.choose(items[:2]) == 0 and st.choose(items) == 0 and st.followed == 1


def test_around_the_finding_bound_0_is_the_finding_itself_and_the_fix_is_clean():
    scenario, recorded, schedule = _f1()
    timing = timing_model(recorded.timing)
    merged = explore(scenario, "merged", 0, seed=recorded.seed, around=schedule,
                     timing=timing)
    assert merged.counterexample is not None and merged.schedules == 1
    assert merged.counterexample.signature.key == F1_KEY
    assert merged.followed == len(schedule)
    canonical = explore(scenario, "merged", 0, seed=recorded.seed, timing=timing)
    assert canonical.counterexample is None  # the canonical order never comes near it
    fixed = explore(scenario, "merged+fix-halt-wait", 0, seed=recorded.seed,
                    around=schedule, timing=timing)
    assert fixed.exhausted and fixed.counterexample is None
    assert fixed.followed > 0  # its base run starts on the finding's schedule


def test_the_cli_explores_around_a_choices_file_with_its_seed():
    out = io.StringIO()
    code = main(["explore", str(F1 / "shrunk.yaml"), "--around",
                 str(F1 / "shrunk.choices.json"), "--bound", "0", "--json",
                 "--out", "/dev/null"], stdout=out, stderr=io.StringIO())
    got = json.loads(out.getvalue())
    assert code == 1 and got["verdict"] == "counterexample" and got["followed"] > 0
    assert "--seed 7 " in got["replay"]


def test_a_bad_around_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    err = io.StringIO()
    code = main(["explore", str(F1 / "shrunk.yaml"), "--around", str(bad)],
                stdout=io.StringIO(), stderr=err)
    assert code == 2 and str(bad) in err.getvalue()
    assert len(err.getvalue().strip().splitlines()) == 1
