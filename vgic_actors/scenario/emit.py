"""Plain data to YAML text, as scenarios are saved (generated findings, shrunk and promoted
reproducers).

PyYAML's safe emitter, through libyaml (``yaml.CSafeDumper``) when PyYAML was built with
it: the same text about four times faster (a finding's scenario is written by the soak's
own process, beside its workers), else the pure-Python ``yaml.SafeDumper``.
tests/scenario/test_fast_paths.py checks that both give the same text.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
"""The emitter `dump` uses."""


def dump(data: Any, **options: Any) -> str:
    """``yaml.safe_dump(data, **options)`` with `SAFE_DUMPER`."""
    text: str = yaml.dump(data, Dumper=SAFE_DUMPER, **options)
    return text
