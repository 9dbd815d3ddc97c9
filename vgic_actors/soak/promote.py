"""Promotion: turn a soak finding into a library scenario with its verdicts.

`vgic-actors promote FINDING --name NAME` takes the finding's scenario (``shrunk.yaml``
when shrink has run, else ``scenario.yaml``), finds how many seeds of the finding's
strategy bring the finding back on its variant (seeds 0, 1, ... up to ``--max-seeds``,
at least `MIN_SEEDS`:
a library scenario runs seeds from 0, not the campaign's seed), then runs those seeds
on every variant asked for and writes each one's verdict: ``pass`` where nothing
breaks, the invariants broken where something does (the ``expect`` section is judged
only for variants expected to pass, so it is left out of a failing verdict when other
invariants explain the failure). The file is checked before it is written: loaded back
and run as the library runs it, every verdict must hold. So every bug the soak finds
stays tested.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from vgic_actors.checks.signature import Signature
from vgic_actors.errors import InputError
from vgic_actors.runtime import timing_model
from vgic_actors.scenario import emit, load_scenario
from vgic_actors.scenario.loader import parse_scenario_data
from vgic_actors.scenario.runner import run_once, run_scenario
from vgic_actors.soak.campaign import Finding

MIN_SEEDS = 3
"""Seeds a promoted scenario runs at least (its verdicts are judged over all of them)."""


@dataclass(frozen=True)
class Promoted:
    """What promotion wrote: the file, the seeds and strategy, each variant's verdict."""

    path: Path
    seeds: int
    strategy: str
    verdicts: dict[str, str | list[str]]


def _verdict(broken: set[str]) -> str | list[str]:
    if not broken:
        return "pass"
    core = broken - {"expectation"}
    return sorted(core or broken)


def promote_finding(folder: Path, *, name: str, variants: Sequence[str], out_dir: Path,
                    max_seeds: int = 200, log: Callable[[str], None] = print) -> Promoted:
    """Write ``out_dir/name.yaml`` from the finding in ``folder`` (module docstring).
    Raises InputError when the finding does not come back within ``max_seeds`` seeds or a
    verdict does not hold on the written file."""
    finding = msgspec.json.decode((folder / "finding.json").read_bytes(), type=Finding)
    source = folder / ("shrunk.yaml" if (folder / "shrunk.yaml").exists() else "scenario.yaml")
    if not source.exists():
        raise InputError(str(folder), "scenario.yaml", "a finding with its scenario",
                         "no scenario.yaml")
    target = out_dir / f"{name}.yaml"
    if target.exists():
        raise InputError(str(target), "$", "a new scenario file", "a file that exists")
    data: dict[str, Any] = yaml.safe_load(source.read_text())
    data.setdefault("expect", {}).pop("verdicts", None)
    run = data.pop("run", None) or {}
    data["name"] = name
    scenario = parse_scenario_data({**data, "run": run}, str(target))
    wanted = Signature.from_key(finding.signature)
    strategy, timing = finding.strategy, timing_model(finding.timing)
    first = next((s + 1 for s in range(max_seeds)
                  if run_once(scenario, finding.variant, s, strategy, timing=timing)
                  .signature.same_finding(wanted)), 0)
    if not first:
        raise InputError(str(folder), "finding.json", f"a finding that comes back within "
                         f"{max_seeds} seeds of {strategy} on {finding.variant}",
                         f"{wanted} did not")
    seeds = max(first, MIN_SEEDS)
    log(f"{wanted} came back at seed {first - 1} of {strategy} on {finding.variant}")
    verdicts: dict[str, str | list[str]] = {}
    for variant in dict.fromkeys([finding.variant, *variants]):
        broken: set[str] = set()
        for s in range(seeds):
            broken |= {v.invariant for v in
                       run_once(scenario, variant, s, strategy, timing=timing).violations}
        verdicts[variant] = _verdict(broken)
        log(f"  {variant}: {verdicts[variant]}")
    data["description"] = (f"promoted from soak finding {wanted} ({finding.variant}, "
                           f"{source.name}): " + str(data.get("description", "")))[:500]
    data["expect"]["verdicts"] = verdicts
    data["run"] = {"seeds": seeds, "strategy": strategy,
                   **({"max_steps": run["max_steps"]} if "max_steps" in run else {})}
    header = (f"# Promoted from {folder} by `vgic-actors promote`: finding {wanted}\n"
              f"# first found on {finding.variant} (campaign run {finding.index}, "
              f"scenario seed {finding.scenario_seed}); verdicts over seeds 0..{seeds - 1}.\n")
    text = header + emit.dump(data, sort_keys=False, default_flow_style=None, width=100)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    report = run_scenario(load_scenario(tmp), timing=timing)
    if not report.ok:
        tmp.unlink()
        bad = [f"{v.variant}: expected {v.expected or 'pass'}, found {v.found or 'pass'}"
               for v in report.variants if not v.ok]
        raise InputError(str(target), "$.expect.verdicts", "verdicts that hold when re-run",
                         "; ".join(bad))
    tmp.replace(target)
    return Promoted(path=target, seeds=seeds, strategy=strategy, verdicts=verdicts)
