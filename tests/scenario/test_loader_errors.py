"""Malformed scenario files: one InputError naming file:line:column, the $.path, expected/got."""

import pytest

from vgic_actors.errors import InputError
from vgic_actors.scenario import load_scenario_text

GOOD = """\
vm: {vcpus: 2}
guests:
  vcpu0:
    - ack: 32
"""


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as info:
        load_scenario_text(text, "s.yaml")
    return info.value


def test_a_valid_scenario_loads():
    scenario = load_scenario_text(GOOD, "s.yaml")
    assert scenario.vm.nr_vcpus == 2
    assert len(scenario.guests) == 2 and len(scenario.guests[0].ops) == 1
    assert scenario.guests[1].ops == []
    assert scenario.variants() == ["merged"]


@pytest.mark.parametrize(("text", "path", "line", "col", "expected"), [
    ("vm: {vcpus: two}\n", "$.vm.vcpus", 1, 13, "an integer"),
    ("vm:\n  vcpus: 2\n  lrz: 4\n", "$.vm.lrz", 3, 3, "known fields"),
    ("vm: {lrs: 17}\n", "$.vm.lrs", 1, 11, "<= 16"),
    ("vm: {nr_spis: 40}\n", "$.vm.nr_spis", 1, 15, "multiple of 32"),
    ("irqs:\n  - {intid: 99}\n", "$.irqs[0].intid", 2, 13, "SGI, PPI or SPI of this VM"),
    ("irqs:\n  - {intid: 5, trigger: level, vcpu: 0}\n", "$.irqs[0].trigger", 2, 25, "edge"),
    ("guests:\n  vcpu2: []\n", "$.guests.vcpu2", 2, 10, "vCPU name"),
    ("guests:\n  vcpu0:\n    - ackk: 32\n", "$.guests.vcpu0[0]", 3, 7, "operation name"),
    ("guests:\n  vcpu0:\n    - ack: thirty\n", "$.guests.vcpu0[0].ack.expect", 3, 12, "integer"),
    ("guests:\n  vcpu0:\n    - write: {reg: ISPENDR, intid: 77}\n",
     "$.guests.vcpu0[0].write.intid", 3, 36, "INTID this VM implements"),
    ("guests:\n  vcpu0:\n    - write: {reg: IGROUPRX, intid: 32}\n",
     "$.guests.vcpu0[0].write.reg", 3, 20, "ISPENDR"),
    ("guests:\n  vcpu0:\n    - {ack: 1, eoir: 1}\n", "$.guests.vcpu0[0]", 3, 7, "one key"),
    ("expect:\n  verdicts: {merged: lost}\n", "$.expect.verdicts.merged", 2, 22,
     "the invariants a negative control breaks"),
    ("expect:\n  verdicts: {mergd: pass}\n", "$.expect.verdicts.mergd", 2, 14, "variant name"),
    ("vm: {vcpus: 2, pcpus: 1}\n", "$.vm.pcpus", 1, 23, "one vCPU per pCPU"),
    ("vm: {host_tdir: yes}\n", "$.vm.host_tdir", 1, 17, "YAML 1.1"),
    ("vm: {vcpus: 2}\nvm: {vcpus: 1}\n", "$.vm", 2, 1, "each key once"),
    ("vm: [1, 2\n", "$", 2, 1, "valid YAML"),
    ("- 1\n- 2\n", "$", 1, 1, "a mapping"),
    ("", "$", 1, 1, "a mapping"),
    ("run: {strategy: pct:99}\n", "$.run.strategy", 1, 17, "pct:D"),
    ("guests:\n  vcpu0:\n    - for: {var: i, from: 32, do: [{ack: $i}]}\n",
     "$.guests.vcpu0[0].for", 3, 12, "from' and 'to'"),
    ("guests:\n  vcpu0:\n    - call: nosuch\n", "$.guests.vcpu0[0].call.template", 3, 13,
     "template name"),
])
def test_each_malformed_input_names_its_place(text, path, line, col, expected):
    err = error_of(text)
    assert err.path == path
    assert (err.line, err.column) == (line, col)
    assert expected in err.expected
    message = err.format_message()
    assert message.startswith(f"s.yaml:{line}:{col}: {path}: expected ")
    assert "\n" not in message


def test_unknown_top_level_key_is_named():
    err = error_of("vm: {}\nguest:\n  vcpu0: []\n")
    assert err.path == "$.guest" and err.got == "unknown field 'guest'" and err.line == 2


def test_a_missing_required_field_is_named():
    err = error_of("guests:\n  vcpu0:\n    - store: {value: 1}\n")
    assert err.path == "$.guests.vcpu0[0].store" and "'var'" in err.expected


def test_errors_inside_loops_point_at_the_loop_body():
    err = error_of("guests:\n  vcpu0:\n    - for: {var: i, in: [32, 99], do: [{dir: $i}]}\n")
    assert err.path == "$.guests.vcpu0[0].for.do[0].dir.intid"
    assert err.got == "99"


def test_lpis_are_rejected_on_a_gicv2_model():
    err = error_of("vm: {gic: v2}\nirqs:\n  - {intid: 8192}\n")
    assert err.path == "$.irqs[0].intid" and "8192" not in err.expected
