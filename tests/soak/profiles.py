"""Soak profiles the soak tests share."""

from pathlib import Path

import yaml

from vgic_actors.scenario.loader import config_dir


def edge_profile(tmp_path: Path) -> str:
    """The default profile without level SPIs behind resampling irqfds (which find F3 on
    merged, and so on every variant that shares the merged fold): for tests that want a
    variant's own lost deactivation alone."""
    data = yaml.safe_load((config_dir() / "soak-default.yaml").read_text())
    data["injectors"]["level_irqfd"] = 0
    path = tmp_path / "soak-edge.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)
