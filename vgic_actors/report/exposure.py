"""Which configurations a finding exposes: the same scenario with another guest GIC model
and host GIC, swept over a few seeds.

The host's GIC, not the guest's model, picks the fold and the DIR emulation
(vgic.c: vgic_fold_lr_state on kvm_vgic_global_state.type, commit 1c3b3cadcd69), so the
three combinations KVM runs are tried: a GICv3 guest on a GICv3 host, a GICv2 guest on a
GICv3 host, a GICv2 guest on a GICv2 host. A scenario that cannot be expressed in one
(an LPI, an ICC_SGI1R write on a GICv2 guest) says so instead of a verdict. EOImode and
the injection path are the scenario's own: changing them changes what the guest does,
so they are reported as run, not varied.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from vgic_actors.errors import VgicActorsError
from vgic_actors.report.finding import Case
from vgic_actors.runtime import timing_model
from vgic_actors.scenario.loader import Scenario, parse_scenario_data
from vgic_actors.scenario.runner import run_once, with_horizon

CONFIGS = (("v3", "v3"), ("v2", "v3"), ("v2", "v2"))
"""(guest GIC model, host GIC) pairs KVM supports."""
STRATEGIES = ("random", "pct:2", "pct:3")


@dataclass(frozen=True)
class Exposure:
    """One configuration's verdict: ``hits`` of ``runs`` had the finding (``other``: runs
    with another finding); ``error`` when the scenario does not fit the configuration."""

    guest: str
    host: str
    hits: int = 0
    runs: int = 0
    other: int = 0
    error: str = ""

    def describe(self) -> str:
        """``GICv2 guest on a GICv3 host: exposed (4/12 runs)``."""
        what = f"GIC{self.guest} guest on a GIC{self.host} host"
        if self.error:
            return f"{what}: not expressible ({self.error})"
        verdict = "exposed" if self.hits else "not seen"
        extra = f", {self.other} with another finding" if self.other else ""
        return f"{what}: {verdict} ({self.hits}/{self.runs} runs{extra})"


def exposure(case: Case, *, seeds: int = 4) -> list[Exposure]:
    """Sweep the finding's scenario under each of `CONFIGS` on the finding's variant."""
    data: dict[str, Any] = yaml.safe_load(case.scenario_file.read_text(encoding="utf-8"))
    data.pop("expect", None)  # verdicts name variants, not configurations
    out = []
    for guest, host in CONFIGS:
        trial = copy.deepcopy(data)
        vm = trial.setdefault("vm", {})
        vm["gic"], vm["host_gic"] = guest, host
        try:
            out.append(_sweep(case, parse_scenario_data(trial, str(case.scenario_file)),
                              guest, host, seeds))
        except VgicActorsError as exc:
            out.append(Exposure(guest, host, error=exc.format_message().split(": ")[-1]))
    return out


def _sweep(case: Case, scenario: Scenario, guest: str, host: str, seeds: int) -> Exposure:
    timing = timing_model(case.recorded.timing)
    hits = runs = other = 0
    for seed in range(seeds):
        for strategy in STRATEGIES:
            got = run_once(scenario, case.variant, seed, with_horizon(strategy, scenario),
                           timing=timing).signature
            runs += 1
            hits += got.same_finding(case.wanted)
            other += bool(got) and not got.same_finding(case.wanted)
    return Exposure(guest, host, hits, runs, other)
