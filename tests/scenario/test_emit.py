"""scenario/emit.py: libyaml's emitter writes what PyYAML's own would, so a kept scenario's
text does not depend on how PyYAML was built."""

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
