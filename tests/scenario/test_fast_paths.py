"""The scenario layer's fast paths give what the slow ones give: libyaml's emitter writes
what PyYAML's own would (scenario/emit.py), and a program with no ``$`` and no ``for``
decodes as the full substitution and expansion walk decodes it (scenario/ops.py _plain)."""

import pytest
import yaml

from vgic_actors.scenario import emit
from vgic_actors.soak.generate import generate
from vgic_actors.soak.profile import load_profile


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML built without libyaml")
@pytest.mark.parametrize("options", [{"sort_keys": False, "width": 100},
                                     {"sort_keys": False, "default_flow_style": None,
                                      "width": 100}])
def test_libyaml_writes_the_text_pyyaml_writes(options: dict[str, object]) -> None:
    """200 generated scenarios, and odd scalars a reproducer may carry, dumped both ways."""
    profile, _ = load_profile(None)
    docs = [generate(profile, seed) for seed in range(200)]
    docs.append({"text": "a: b # c", "empty": "", "multi": "one\ntwo", "null": None,
                 "big": 2**63 - 1, "neg": -5, "hex": "0x20", "yes": "yes", "float": 0.5,
                 "nested": [[1, 2], {"k": [3]}], "unicode": "caf\u00e9 \u2028"})
    assert emit.SAFE_DUMPER is yaml.CSafeDumper
    for data in docs:
        assert emit.dump(data, **options) == yaml.safe_dump(data, **options)


def test_plain_programs_decode_as_the_full_walk_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    """ops._plain lets a program with no ``$`` and no ``for`` skip substitution and
    expansion: 150 generated scenarios and a library one with both decode to the same
    operations either way, and the library one takes the full walk."""
    from pathlib import Path

    from vgic_actors.scenario import load_scenario, ops
    from vgic_actors.scenario.loader import parse_scenario_data

    profile, _ = load_profile(None)
    datas = [generate(profile, seed) for seed in range(150)]
    fast = [repr(parse_scenario_data(d, "gen.yaml").guests) for d in datas]
    looped = Path("scenarios/kut_gicv3_ipi.yaml")
    fast_lib = repr(load_scenario(looped).guests)
    plain_calls: list[bool] = []
    real = ops._plain
    monkeypatch.setattr(ops, "_plain", lambda items: plain_calls.append(real(items)) or False)
    assert [repr(parse_scenario_data(d, "gen.yaml").guests) for d in datas] == fast
    assert repr(load_scenario(looped).guests) == fast_lib
    assert True in plain_calls and False in plain_calls  # both paths were taken before


def test_a_constant_for_in_a_field_is_expanded() -> None:
    """A ``for`` in an operation's list with no ``$`` in it is still expanded (the plain
    check looks for ``for`` as well as ``$``)."""
    from vgic_actors.scenario.ops import decode_ops

    looped = [{"sgi": {"intid": 1, "targets": [{"for": {"var": "v", "from": 1, "to": 2,
                                                        "do": [3]}}]}}]
    (got,) = decode_ops(looped, "$.ops", {})
    assert got.op.targets == (3, 3)
