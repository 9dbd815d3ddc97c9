"""vm.active_spis: the count a long-lived VM starts with (an atomic_t, 32 bits)."""

import pytest

from vgic_actors.errors import InputError
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

PROGRAM = """
name: preset
vm: {{vcpus: 1, active_spis: {value}}}
guests:
  vcpu0:
  - group_enable: true
  - pmr: 248
  - write: {{reg: ISENABLER, intid: 32}}
  - write: {{reg: ISPENDR, intid: 32}}
  - ack: 32
  - eoir: 32
expect:
  counters: {{active_spis: 0}}
"""


def test_the_preset_is_where_the_count_starts(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(PROGRAM.format(value=-1), encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.vm.active_spis == -1
    report = run_once(scenario, "merged", 0, "random")
    assert report.coverage["active_spis.inc"] == 1 and not report.violations  # -1 -> 0
    path.write_text(PROGRAM.format(value=0), encoding="utf-8")  # from 0 it leaks to 1 (W1)
    leaked = run_once(load_scenario(path), "merged", 0, "random")
    assert [v.invariant for v in leaked.violations] == ["expectation"]


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_a_count_outside_an_int_is_refused_with_its_path(tmp_path, value):
    path = tmp_path / "s.yaml"
    path.write_text(PROGRAM.format(value=value), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert "$.vm.active_spis" in err.value.format_message()
