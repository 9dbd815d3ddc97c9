"""Imports go one way (design.md section 2): each layer uses only the layers above it."""

import ast
from pathlib import Path

import vgic_actors

PKG = Path(vgic_actors.__file__).parent
ORDER = ["arch", "runtime", "kvm", "guest", "checks"]
SHARED = {"vgic_actors", "vgic_actors.errors", "vgic_actors.events"}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in ORDER:
        return ORDER.index(parts[1])
    return None


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return {m for m in out if m.startswith("vgic_actors")}


def test_every_layer_imports_only_layers_above_it():
    """A module of layer L imports vgic_actors modules of layers <= L or the shared ones."""
    for layer, name in enumerate(ORDER):
        for path in sorted((PKG / name).glob("*.py")):
            for mod in imports(path):
                if mod in SHARED:
                    continue
                other = layer_of(mod)
                assert other is not None and other <= layer, (f"{name}/{path.name}", mod)


def test_events_and_errors_import_no_layer():
    """The shared modules depend on no layer."""
    for shared in ("events.py", "errors.py"):
        assert imports(PKG / shared) == set()
