"""The documentation covers what the tool accepts: every scenario operation and its fields."""

from pathlib import Path

import msgspec
import pytest

from vgic_actors.scenario.host_ops import STEP_NAMES, ActionSpec
from vgic_actors.scenario.ops import OPS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_guest_operation_and_its_fields_are_in_docs_scenarios(name):
    """A row `| `name` ...` in the operations table, naming each of its fields."""
    rows = [ln for ln in DOC.splitlines() if ln.startswith("| ") and f"`{name}`" in ln]
    assert rows, f"docs/scenarios.md has no row for the guest operation {name!r}"
    spec = OPS[name].spec
    fields = [f.name for f in msgspec.structs.fields(spec)] if isinstance(spec, type) and \
        issubclass(spec, msgspec.Struct) else []
    missing = [f for f in fields if not any(f"`{f}" in row for row in rows)]
    assert not missing, f"{name}: fields {missing} are not in its docs/scenarios.md row"


@pytest.mark.parametrize("name", STEP_NAMES)
def test_every_vmm_action_is_in_docs_scenarios(name):
    """Each `do:` action of the host list, and its fields, appear in docs/scenarios.md."""
    assert f"`{name}`" in DOC or f"do: {name}" in DOC, name
    for spec in ActionSpec.__args__:
        if spec.__struct_config__.tag == name:
            missing = [f.name for f in msgspec.structs.fields(spec) if f"`{f.name}" not in DOC
                       and f.name not in ("expect_errno",)]
            assert not missing, f"{name}: {missing}"
