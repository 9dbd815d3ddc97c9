"""The architectural layer stays pure: no Trio, no logging, nothing from the layers above."""

import ast
import subprocess
import sys
from pathlib import Path

ARCH = Path(__file__).resolve().parents[2] / "vgic_actors" / "arch"
ALLOWED = {"__future__", "collections", "dataclasses", "enum", "typing", "vgic_actors.arch",
           "vgic_actors.errors"}


def test_importing_arch_does_not_import_trio_or_logging():
    """`import vgic_actors.arch` in a fresh interpreter pulls in neither trio nor structlog."""
    code = ("import sys, vgic_actors.arch; "
            "print(sorted(m for m in ('trio', 'structlog', 'logging') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_arch_modules_import_only_stdlib_basics_and_arch():
    """Every import in vgic_actors/arch is from the standard basics, arch itself or errors."""
    for path in ARCH.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                ok = any(name == a or name.startswith(a + ".") for a in ALLOWED)
                assert ok, (path.name, name)
