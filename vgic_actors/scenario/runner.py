"""Run a scenario: build its VM on the runtime, run it per variant and seed, judge it.

A run's violations are the end-of-run invariants (vgic_actors.checks) plus the
scenario's own expectations. A variant's verdict holds when the set of
invariants violated over all its runs is exactly the set the scenario names
for it (empty for ``pass``): a negative control must be *found* by the
scheduler in some run, and nothing else may break.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import msgspec

from vgic_actors.checks import Violation, check_run, irq_name, is_active
from vgic_actors.checks.final import violation
from vgic_actors.checks.monitor import StepMonitor
from vgic_actors.errors import InputError, ModelInternalError
from vgic_actors.guest import GuestProgram
from vgic_actors.guest.host import HostProgram
from vgic_actors.guest.ledger import GuestLedger
from vgic_actors.kvm.irq import IrqConfig, irq_is_pending
from vgic_actors.kvm.machine import Machine, start_vm
from vgic_actors.kvm.phys_gic import kvm_vgic_map_irq
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import (
    ChoiceLog,
    Replay,
    Scheduler,
    Strategy,
    make_strategy,
    run,
)
from vgic_actors.scenario.loader import Scenario

PCT_HORIZON = 300
"""PCT's k when neither the strategy nor the caller gives one (``vgic-actors run``)."""

DECISIONS_PER_OP = 8
"""Scheduling decisions per unit of `pct_horizon`'s scenario size: on the default soak
profile a PCT run makes 3-9 decisions per unit (median 6), so k = 8 x size covers the
whole run in most cases (``bench`` reports the share: the depth bound holds on those)."""


def pct_horizon(scenario: Scenario) -> int:
    """PCT's k estimated from the scenario, before it runs: each guest's operations, its
    IRQ handler once per interrupt it may take (the scenario's interrupts spread over the
    vCPUs, counted twice: entry and exit cost kernel steps), and the VMM's steps.

    PCT finds a depth-d bug with probability >= 1/(n k^(d-1)) only if its d-1 change
    points can land anywhere in the run, i.e. k >= the run's decisions; a k far above
    them wastes change points past the end."""
    irqs = max(len(scenario.expect.final), len(scenario.irqs), 1)
    per_vcpu = irqs / max(len(scenario.guests), 1)
    size = sum(len(g.ops) + 2 * len(g.handler or ()) * per_vcpu for g in scenario.guests)
    return max(PCT_HORIZON // 3, math.ceil(DECISIONS_PER_OP * (size + len(scenario.host))))


def with_horizon(spec: str, scenario: Scenario) -> str:
    """``pct`` or ``pct:D`` with k from `pct_horizon` (``pct:D:K`` and others unchanged)."""
    name, _, arg = spec.partition(":")
    if name != "pct" or arg.count(":"):
        return spec
    return f"pct:{arg or 3}:{pct_horizon(scenario)}"


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """One run of one variant: how it ended and what it broke."""

    variant: str
    seed: int
    spec: str
    strategy: str
    outcome: str
    steps: int
    vt: int
    violations: list[Violation]
    warnings: list[Violation]
    choices: ChoiceLog

    @property
    def broken(self) -> set[str]:
        """The names of the invariants this run violated."""
        return {v.invariant for v in self.violations}


class VariantReport(msgspec.Struct, frozen=True, kw_only=True):
    """All runs of one variant against the scenario's verdict for it."""

    variant: str
    expected: list[str]
    found: list[str]
    ok: bool
    runs: list[RunReport]

    def first_with(self, names: Sequence[str]) -> RunReport | None:
        """The first run violating any of ``names``."""
        return next((r for r in self.runs if r.broken & set(names)), None)


class ScenarioReport(msgspec.Struct, frozen=True, kw_only=True):
    """A scenario's result over every variant asked for."""

    scenario: str
    file: str
    digest: str
    strategy: str
    seeds: list[int]
    variants: list[VariantReport]

    @property
    def ok(self) -> bool:
        """Every variant met its verdict."""
        return all(v.ok for v in self.variants)


def parse_strategy(spec: str, seed: int) -> Strategy:
    """``random``, ``trio``, ``pct[:D[:K]]`` (depth D, change points drawn from the first K
    steps) or ``replay:FILE`` (a choices file written by ``--log``)."""
    name, _, arg = spec.partition(":")
    if name == "replay":
        return Replay(load_recorded(Path(arg)).choices)
    depth, _, horizon = arg.partition(":")
    return make_strategy(name, seed, depth=int(depth) if depth else 3,
                         k=int(horizon) if horizon else PCT_HORIZON)


def load_recorded(path: Path) -> RecordedRun:
    """A ``.choices.json`` file written by ``--log`` (InputError when malformed)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(str(path), "$", "a readable choices file", type(exc).__name__) from None
    try:
        return msgspec.json.decode(raw, type=RecordedRun)
    except msgspec.ValidationError as exc:
        text, _, at = str(exc).partition(" - at `")
        raise InputError(str(path), at.rstrip("`") or "$", "a recorded run (seed, variant, "
                         "choices: {values, bounds})", text) from None
    except msgspec.DecodeError as exc:
        raise InputError(str(path), "$", "JSON", str(exc)) from None


class RecordedRun(msgspec.Struct, frozen=True, kw_only=True):
    """What ``--log`` writes next to the event log: enough to replay the run exactly."""

    scenario: str
    digest: str
    variant: str
    seed: int
    strategy: str
    choices: ChoiceLog


def apply_irq_config(scenario: Scenario, kvm: Kvm) -> None:
    """The scenario's ``irqs`` section, written into the VM before any vCPU runs."""
    for cfg in scenario.irqs:
        vcpu = kvm.vcpus[cfg.vcpu or 0] if cfg.intid < 32 else None
        irq = kvm.vgic_get_irq(vcpu, cfg.intid)
        if irq is None:
            raise ModelInternalError(f"INTID {cfg.intid} passed validation but does not exist")
        if cfg.trigger is not None:
            irq.config = IrqConfig(cfg.trigger)
        if cfg.priority is not None:
            irq.priority = cfg.priority & 0xF8
        if cfg.group is not None:
            irq.group = cfg.group
        if cfg.target is not None:
            irq.target_vcpu = cfg.target
        if cfg.enabled is not None:
            irq.enabled = cfg.enabled
        if cfg.hw is not None:
            kvm_vgic_map_irq(kvm, irq, cfg.vcpu or 0 if cfg.intid < 32 else None, cfg.hw)


def run_once(scenario: Scenario, variant: str, seed: int, strategy: str | Strategy, *,
             max_steps: int | None = None, log: BinaryIO | None = None,
             choices: str = "", monitor: bool = True) -> RunReport:
    """One run of ``scenario`` under ``variant`` with ``seed``.

    ``choices``: the choice-log file name the log's header refers to (``record_run``).
    ``monitor``: check the safety invariants at every kernel event (checks/monitor.py),
    not only at the end.

    The ``expect`` section describes the correct outcome, so it is judged only for
    variants expected to pass; a negative control is judged by its named invariants.
    """
    config = replace(scenario.vm, variant=variant)
    ledger = GuestLedger()
    guests = [GuestProgram(f"vcpu{n}", plan.ops, handler=plan.handler, ledger=ledger)
              for n, plan in enumerate(scenario.guests)]
    vmm = [HostProgram("vmm", scenario.host)] if scenario.host else []
    box: list[Machine] = []
    step_monitor = StepMonitor()

    def setup(sched: Scheduler) -> None:
        machine = start_vm(sched, config, guests, host=vmm)
        apply_irq_config(scenario, machine.kvm)
        step_monitor.kvm = machine.kvm
        box.append(machine)

    strat = parse_strategy(strategy, seed) if isinstance(strategy, str) else strategy
    result = run(setup, strat, seed=seed, max_steps=max_steps or scenario.run.max_steps or 20_000,
                 log=log, variant=variant, scenario=scenario.name, digest=scenario.digest,
                 choices=choices, kernel_sinks=[step_monitor] if monitor else ())
    kvm = box[0].kvm
    found = check_run(kvm, guests, ledger, result, vmm)
    at_end = {v.invariant for v in found}
    found += [v for v in step_monitor.violations() if v.invariant not in at_end]
    found += [violation("guest-assertion", f) for p in vmm for f in p.failures]
    if not scenario.expected_verdict(variant):
        found += check_expectations(scenario, kvm, ledger)
    return RunReport(
        variant=variant, seed=seed, spec=strategy if isinstance(strategy, str)
        else result.strategy, strategy=result.strategy,
        outcome=result.outcome.value,
        steps=result.steps, vt=result.vt,
        violations=[v for v in found if v.kind != "warning"],
        warnings=[v for v in found if v.kind == "warning"],
        choices=result.choices,
    )


def check_expectations(scenario: Scenario, kvm: Kvm, ledger: GuestLedger) -> list[Violation]:
    """The scenario's ``expect.final`` and ``expect.counters`` against the final state."""
    out: list[str] = []
    for want in scenario.expect.final:
        vcpu = kvm.vcpus[want.vcpu or 0] if want.intid < 32 else None
        irq = kvm.vgic_get_irq(vcpu, want.intid)
        if irq is None:
            out.append(f"INTID {want.intid} does not exist in the VM")
            continue
        name = irq_name(irq)
        got_on = "none" if irq.vcpu is None else irq.vcpu
        checks = [("active", want.active, is_active(kvm, irq)),
                  ("pending", want.pending, irq_is_pending(irq)),
                  ("ap_list", want.ap_list, got_on)]
        out += [f"{name}: {what} expected {exp}, got {got}"
                for what, exp, got in checks if exp is not None and exp != got]
    counters = scenario.expect.counters
    if counters.active_spis is not None and kvm.dist.active_spis.peek() != counters.active_spis:
        out.append(f"active_spis expected {counters.active_spis}, "
                   f"got {kvm.dist.active_spis.peek()}")
    for intid, n in (counters.acks or {}).items():
        if ledger.acks_of(intid) != n:
            out.append(f"INTID {intid} acknowledged {ledger.acks_of(intid)} times, expected {n}")
    for vid, n in (counters.eoicount or {}).items():
        got = kvm.vcpus[vid].cpuif.state.hcr.eoicount + kvm.vcpus[vid].vgic_hcr.eoicount
        if got != n:
            out.append(f"vcpu{vid} EOIcount expected {n}, got {got}")
    for vid, tdir in (counters.tdir or {}).items():
        if kvm.vcpus[vid].vgic_hcr.tdir != tdir:
            out.append(f"vcpu{vid} TDIR at the last entry expected {tdir}, "
                       f"got {kvm.vcpus[vid].vgic_hcr.tdir}")
    return [violation("expectation", m) for m in out]


def run_variant(scenario: Scenario, variant: str, seeds: Sequence[int], strategy: str, *,
                max_steps: int | None = None) -> VariantReport:
    """Every seed of one variant, judged against the scenario's verdict."""
    runs = [run_once(scenario, variant, s, strategy, max_steps=max_steps) for s in seeds]
    expected = scenario.expected_verdict(variant)
    found = sorted(set().union(*(r.broken for r in runs)))
    return VariantReport(variant=variant, expected=expected, found=found,
                         ok=found == expected, runs=runs)


def run_scenario(scenario: Scenario, *, variants: Sequence[str] | None = None,
                 seed: int = 0, runs: int | None = None, strategy: str | None = None,
                 max_steps: int | None = None) -> ScenarioReport:
    """Run ``scenario`` for each variant (its listed ones by default) over ``runs`` seeds."""
    strategy = strategy or scenario.run.strategy or "pct:3"
    if strategy.startswith("replay:"):
        file = strategy.partition(":")[2]
        recorded = load_recorded(Path(file))
        if recorded.digest != scenario.digest:
            raise InputError(file, "$.digest", f"a run of {scenario.name} as it is now "
                             f"(digest {scenario.digest})",
                             f"a run of {recorded.scenario} (digest {recorded.digest})")
        runs = 1
    seeds = list(range(seed, seed + (runs or scenario.run.seeds or 20)))
    reports = [run_variant(scenario, v, seeds, strategy, max_steps=max_steps)
               for v in (variants or scenario.variants())]
    return ScenarioReport(scenario=scenario.name, file=scenario.file, digest=scenario.digest,
                          strategy=strategy, seeds=seeds, variants=reports)


def record_run(scenario: Scenario, report: RunReport, log_path: Path, *,
               max_steps: int | None = None) -> Path:
    """Re-run ``report``'s run with its event log written to ``log_path`` and its choice log
    next to it (``.choices.json``); a different outcome is a model determinism bug."""
    choices_name = log_path.name + ".choices.json"
    with log_path.open("wb") as log:
        again = run_once(scenario, report.variant, report.seed, report.spec,
                         max_steps=max_steps, log=log, choices=choices_name)
    if again.choices != report.choices or again.steps != report.steps:
        raise ModelInternalError(
            f"{scenario.name} {report.variant} seed {report.seed}: the logged re-run took "
            f"{again.steps} steps, the first {report.steps} (nondeterminism in the model)")
    choices = log_path.with_name(choices_name)
    recorded = RecordedRun(scenario=scenario.name, digest=scenario.digest,
                           variant=report.variant, seed=report.seed, strategy=report.spec,
                           choices=report.choices)
    tmp = choices.with_name(choices.name + ".tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(recorded)) + b"\n")
    tmp.replace(choices)
    return choices
