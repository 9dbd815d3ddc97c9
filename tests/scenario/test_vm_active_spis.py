"""vm.edge_spis_queued: a long-lived VM's history, and the active_spis it leaves."""

import pytest

from vgic_actors.errors import InputError
from vgic_actors.scenario import load_scenario
from vgic_actors.scenario.runner import run_once

PROGRAM = """
name: preset
vm: {{vcpus: 1, edge_spis_queued: {value}}}
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


def _scenario(tmp_path, value):
    path = tmp_path / "s.yaml"
    path.write_text(PROGRAM.format(value=value), encoding="utf-8")
    return load_scenario(path)


def test_the_history_leaves_one_count_per_edge_spi_and_wraps_as_an_int(tmp_path):
    """merged: 2^32 - 1 edge SPIs leave -1, and this run's edge SPI takes it to 0; from a
    fresh vGIC the same edge SPI leaks 1 (W1); counting SPIs on ap_lists leaks nothing."""
    wrapped = run_once(_scenario(tmp_path, 2**32 - 1), "merged", 0, "random")
    assert wrapped.coverage["active_spis.inc"] == 1 and not wrapped.violations
    fresh = _scenario(tmp_path, 0)
    assert [v.invariant for v in run_once(fresh, "merged", 0, "random").violations] == [
        "expectation"]
    assert not run_once(fresh, "merged+fix-spi-count", 0, "random").violations
    assert not run_once(_scenario(tmp_path, 2**32 - 1), "merged+fix-spi-count", 0,
                        "random").violations


@pytest.mark.parametrize("value", [2**32 + 1, -1])
def test_a_history_outside_its_range_is_refused_with_its_path(tmp_path, value):
    with pytest.raises(InputError) as err:
        _scenario(tmp_path, value)
    assert "$.vm.edge_spis_queued" in err.value.format_message()
