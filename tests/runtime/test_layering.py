"""The runtime imports nothing from the layers below it (kvm, guest, checks, tools)."""

import ast
from pathlib import Path

import vgic_actors

PKG = Path(vgic_actors.__file__).parent
ALLOWED = ("vgic_actors.runtime", "vgic_actors.events", "vgic_actors.errors", "vgic_actors.arch")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_runtime_imports_only_upward():
    """runtime/ uses only itself, events, errors and the package version."""
    for path in sorted((PKG / "runtime").glob("*.py")):
        for mod in imports(path):
            if mod.startswith("vgic_actors"):
                assert mod == "vgic_actors" or mod.startswith(ALLOWED), (path.name, mod)


def test_events_depend_on_msgspec_only():
    """events.py can be imported by any layer: it imports msgspec and the stdlib only."""
    mods = imports(PKG / "events.py")
    assert not {m for m in mods if m.startswith("vgic_actors")}
    assert "msgspec" in mods and "trio" not in mods and "structlog" not in mods
