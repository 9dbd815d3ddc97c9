"""Soak profiles the soak tests share."""

from pathlib import Path

import yaml

from vgic_actors.scenario.loader import config_dir


def edge_profile(tmp_path: Path) -> str:
    """The default profile without level SPIs behind resampling irqfds (which find F3 on
    merged, and so on every variant that shares the merged fold) and without the reach
    shapes: for tests that want a variant's own lost deactivation alone."""
    data = yaml.safe_load((config_dir() / "soak-default.yaml").read_text())
    data["injectors"]["level_irqfd"] = 0
    # Nor the reach shapes (generate.py `_reach`, their own random stream): these tests
    # pin the scenarios they were written against. (With them, a shrunk no-spi-tracking
    # finding can keep a guest-assertion its core-invariant verdict does not list.)
    for shape in ("no_tdir_host", "reroute", "toggle_enable", "nested", "icactiver_dir",
                  "hw_timer", "hw_spi", "multi_overflow", "its_discard", "its_movi",
                  "its_disable", "inflight_write", "v2_no_tdir", "long_lived", "entry_race"):
        data[shape] = 0
    path = tmp_path / "soak-edge.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)
