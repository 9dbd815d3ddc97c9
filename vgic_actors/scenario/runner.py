"""Run a scenario: build its VM on the runtime, run it per variant and seed, judge it.

A run's violations are the end-of-run invariants (vgic_actors.checks) plus the
scenario's own expectations. A variant's verdict holds when the set of
invariants violated over all its runs is exactly the set the scenario names
for it (empty for ``pass``): a negative control must be *found* by the
scheduler in some run, and nothing else may break.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import BinaryIO

import msgspec

from vgic_actors.checks import Violation, check_run, irq_name, is_active
from vgic_actors.checks.ack_oracle import AckOracle
from vgic_actors.checks.final import violation
from vgic_actors.checks.liveness import LivenessMonitors
from vgic_actors.checks.loss import LossTracker
from vgic_actors.checks.monitor import StepMonitor
from vgic_actors.checks.signature import Signature
from vgic_actors.errors import InputError, ModelInternalError, UsageError
from vgic_actors.guest import GuestProgram
from vgic_actors.guest.host import HostProgram
from vgic_actors.guest.ledger import GuestLedger
from vgic_actors.guest.timer import TimerRead, TimerWrite
from vgic_actors.kvm.arch_timer import kvm_timer_enable
from vgic_actors.kvm.irq import IrqConfig, irq_is_pending
from vgic_actors.kvm.machine import Machine, start_vm
from vgic_actors.kvm.phys_gic import kvm_vgic_map_irq
from vgic_actors.kvm.vgic import broadcast_phase
from vgic_actors.kvm.vm import Kvm
from vgic_actors.runtime import (
    ChoiceLog,
    Replay,
    Scheduler,
    Strategy,
    Timing,
    TimingModel,
    make_strategy,
    run,
    timing_class,
    timing_model,
)
from vgic_actors.runtime.context import FindingClass
from vgic_actors.scenario.loader import Judgement, Scenario
from vgic_actors.scenario.schema import Counters, FinalIrq

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
    timing: Timing = msgspec.field(default_factory=Timing)
    coverage: dict[str, int] = msgspec.field(default_factory=dict)  # checks/coverage.py

    @property
    def broken(self) -> set[str]:
        """The names of the invariants this run violated."""
        return {v.invariant for v in self.violations}

    @property
    def finding_class(self) -> tuple[FindingClass, str]:
        """``ordering`` or ``timing-window`` (and what was stretched), from `timing`."""
        return timing_class(self.timing)

    @property
    def signature(self) -> Signature:
        """What this run found, with its class (falsy when it found nothing)."""
        return Signature.of(self.violations, finding_class=self.finding_class[0])


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
    steps) or ``replay:FILE`` (a choices file written by ``--log``; `plan_replay` checks
    what it was recorded for before any run)."""
    name, _, arg = spec.partition(":")
    if name == "replay":
        return Replay(load_recorded(Path(arg), verify=False).choices)
    depth, _, horizon = arg.partition(":")
    return make_strategy(name, seed, depth=int(depth) if depth else 3,
                         k=int(horizon) if horizon else PCT_HORIZON)


MAX_CHOICES_BYTES = 64 << 20
"""A choices file's size limit (a million-step run writes about 20 MiB)."""


class RecordedRun(msgspec.Struct, frozen=True, kw_only=True):
    """What ``--log`` writes next to the event log: enough to replay the run exactly.

    ``checksum`` is the digest of everything else (`recorded_checksum`), written by
    `encode_recorded`: a file changed afterwards no longer matches it.
    """

    scenario: str
    digest: str
    variant: str
    seed: int
    strategy: str
    choices: ChoiceLog
    timing: str = "realistic"  # the timing model it ran under (runtime/context.py)
    checksum: str = ""


def recorded_checksum(recorded: RecordedRun) -> str:
    """The digest of a recording's content (every field but ``checksum``)."""
    body = msgspec.json.encode(msgspec.structs.replace(recorded, checksum=""))
    return hashlib.sha256(body).hexdigest()[:16]


def encode_recorded(recorded: RecordedRun) -> bytes:
    """A choices file's bytes: the recording with its checksum, formatted JSON."""
    sealed = msgspec.structs.replace(recorded, checksum=recorded_checksum(recorded))
    return msgspec.json.format(msgspec.json.encode(sealed)) + b"\n"


def load_recorded(path: Path, *, verify: bool = True) -> RecordedRun:
    """A ``.choices.json`` file (InputError when malformed, when a value does not fit its
    bound, and with ``verify`` when its content does not match its checksum)."""
    file = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CHOICES_BYTES + 1)
    except OSError as exc:
        raise InputError(file, "$", "a readable choices file",
                         exc.strerror or type(exc).__name__) from None
    if len(raw) > MAX_CHOICES_BYTES:
        raise InputError(file, "$", f"a choices file of at most {MAX_CHOICES_BYTES} bytes",
                         "a larger file")
    try:
        recorded = msgspec.json.decode(raw, type=RecordedRun)
    except msgspec.ValidationError as exc:
        text, _, at = str(exc).partition(" - at `")
        raise InputError(file, at.rstrip("`") or "$", "a recorded run (seed, variant, "
                         "choices: {values, bounds})", text) from None
    except msgspec.DecodeError as exc:
        raise InputError(file, "$", "JSON", str(exc)) from None
    _check_choices(file, recorded.choices)
    if verify and recorded.checksum != recorded_checksum(recorded):
        raise InputError(file, "$.checksum", f"the digest of the file's content "
                         f"({recorded_checksum(recorded)}; the file was changed after it "
                         "was written: --force-replay replays it anyway)",
                         repr(recorded.checksum) if recorded.checksum else "none")
    return recorded


def _check_choices(file: str, log: ChoiceLog) -> None:
    if len(log.values) != len(log.bounds):
        raise InputError(file, "$.choices", "as many values as bounds",
                         f"{len(log.values)} values, {len(log.bounds)} bounds")
    for i, (value, bound) in enumerate(zip(log.values, log.bounds, strict=True)):
        if not 1 <= bound <= 1 << 32:
            raise InputError(file, f"$.choices.bounds[{i}]", "an enabled-set size 1..2^32",
                             str(bound) if abs(bound) < 10**20 else "a huge integer")
        if not 0 <= value < bound:
            raise InputError(file, f"$.choices.values[{i}]", f"a choice in 0..{bound - 1} "
                             "(its bound)", str(value) if abs(value) < 10**20
                             else "a huge integer")


def plan_replay(scenario: Scenario, file: str, variants: Sequence[str] | None,
                seed: int | None, *, force: bool = False) -> tuple[list[str], int]:
    """The variant and seed of a ``replay:FILE`` run: the recording's unless given. A
    changed file, or one recorded for another scenario, variant or seed, is refused
    (InputError) unless ``force``."""
    recorded = load_recorded(Path(file), verify=not force)
    hint = " (--force-replay replays it anyway)"
    if not force and recorded.digest != scenario.digest:
        raise InputError(file, "$.digest", f"a run of {scenario.name} as it is now "
                         f"(digest {scenario.digest}){hint}",
                         f"a run of {recorded.scenario} (digest {recorded.digest})")
    if not force and variants and list(variants) != [recorded.variant]:
        raise InputError(file, "$.variant", f"a run of --variant {','.join(variants)}{hint}",
                         repr(recorded.variant))
    if not force and seed is not None and seed != recorded.seed:
        raise InputError(file, "$.seed", f"a run of --seed {seed}{hint}", str(recorded.seed))
    return list(variants or [recorded.variant]), recorded.seed if seed is None else seed


def check_log_target(log: Path, strategy: str | None) -> None:
    """Refuse a ``--log`` whose event log or choices file would overwrite the choices file
    being replayed (UsageError)."""
    if not strategy or not strategy.startswith("replay:"):
        return
    source = Path(strategy.partition(":")[2]).resolve()
    for target in (log, log.with_name(log.name + ".choices.json")):
        if target.resolve() == source:
            raise UsageError(f"--log {log}: would overwrite {target}, the choices file being "
                             "replayed; choose another --log")


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


def uses_timer(scenario: Scenario) -> bool:
    """Whether a guest programs its virtual timer (then KVM's kvm_timer_enable maps it)."""
    return any(isinstance(op, TimerWrite | TimerRead) for g in scenario.guests
               for op in (*g.ops, *(g.handler or ())))


def run_once(scenario: Scenario, variant: str, seed: int, strategy: str | Strategy, *,
             max_steps: int | None = None, log: BinaryIO | None = None,
             choices: str = "", monitor: bool = True,
             timing: TimingModel | None = None) -> RunReport:
    """One run of ``scenario`` under ``variant`` with ``seed``.

    ``choices``: the choice-log file name the log's header refers to (``record_run``).
    ``timing``: the timing model (runtime/context.py; default realistic, or the one a
    replayed choices file was recorded under).
    ``monitor``: check the safety invariants at every kernel event (checks/monitor.py),
    not only at the end.

    The ``expect`` section describes the correct outcome, so it is judged only for
    variants expected to pass; a negative control is judged by its named invariants.
    """
    judgement = scenario.judgement(variant)
    config = replace(scenario.vm, variant=judgement.variant, kernel=judgement.kernel)
    ledger = GuestLedger()
    guests = [GuestProgram(f"vcpu{n}", plan.ops, handler=plan.handler, ledger=ledger)
              for n, plan in enumerate(scenario.guests)]
    vmm = [HostProgram("vmm", scenario.host)] if scenario.host else []
    box: list[Machine] = []
    step_monitor = StepMonitor()
    ack_oracle = AckOracle([(g.ops, g.handler) for g in scenario.guests], scenario.irqs,
                           scenario.host)
    loss = LossTracker(host_v2=config.host_v2)
    hot = LivenessMonitors(guests)

    def setup(sched: Scheduler) -> None:
        machine = start_vm(sched, config, guests, host=vmm)
        apply_irq_config(scenario, machine.kvm)
        if uses_timer(scenario):
            for n, guest in enumerate(guests):
                guest.timer = kvm_timer_enable(machine.kvm, sched, n)
        step_monitor.kvm = machine.kvm
        loss.sched = sched
        ledger.untrapped_probe = partial(broadcast_phase, machine.kvm)
        box.append(machine)

    strat = parse_strategy(strategy, seed) if isinstance(strategy, str) else strategy
    if timing is None and isinstance(strategy, str) and strategy.startswith("replay:"):
        timing = timing_model(load_recorded(Path(strategy[7:]), verify=False).timing)
    budget = max_steps or judgement.max_steps or scenario.run.max_steps or 20_000
    result = run(setup, strat, seed=seed, max_steps=budget,
                 log=log, variant=variant, scenario=scenario.name, digest=scenario.digest,
                 choices=choices,
                 kernel_sinks=[ledger.kernel_event, ack_oracle.event, loss.event, hot.event,
                               *([step_monitor] if monitor else [])],
                 timing=timing)
    kvm = box[0].kvm
    found = liveness_monitor(check_run(kvm, guests, ledger, result, vmm, loss), result.steps,
                             max([g.last_progress for g in guests]
                                 + [p.last_progress for p in vmm]))
    at_end = {v.invariant for v in found}
    found += [v for v in step_monitor.violations() if v.invariant not in at_end]
    found += ack_oracle.violations()
    found += [v for v in hot.violations(kvm, ledger, result.outcome, result.vt, loss)
              if v.invariant not in at_end]
    found += [violation("guest-assertion", f) for p in vmm for f in p.failures]
    if judgement.judge_expect:
        found += check_expectations(scenario, kvm, ledger, judgement.final, judgement.counters)
    return RunReport(
        variant=variant, seed=seed, spec=strategy if isinstance(strategy, str)
        else result.strategy, strategy=result.strategy,
        outcome=result.outcome.value,
        steps=result.steps, vt=result.vt,
        violations=[v for v in found if v.kind != "warning"],
        warnings=[v for v in found if v.kind == "warning"],
        choices=result.choices,
        timing=result.timing,
        coverage=dict(kvm.coverage),
    )


HOT_WINDOW = 4
"""The liveness monitor is hot when no program made progress in the last 1/HOT_WINDOW
of the steps run."""


def liveness_monitor(found: list[Violation], steps: int, last_progress: int) -> list[Violation]:
    """A spent step budget is a livelock only when the liveness monitor is hot: no guest
    operation, IRQ handler operation or VMM step completed in the last quarter of the run.
    Otherwise the programs were still progressing: ``budget-spent`` (the budget is too
    small for the scenario), named with the step of the last progress."""
    if steps - last_progress >= steps // HOT_WINDOW:
        return found
    return [violation("budget-spent", f"step budget spent after {steps} steps while the "
                      f"programs still progressed (last at step {last_progress}): raise "
                      "run.max_steps or --max-steps") if v.invariant == "livelock" else v
            for v in found]


def check_expectations(scenario: Scenario, kvm: Kvm, ledger: GuestLedger,
                       final: list[FinalIrq] | None = None,
                       counters: Counters | None = None) -> list[Violation]:
    """``final`` and ``counters`` (default: the scenario's top-level ``expect``) against
    the final state."""
    out: list[str] = []
    final = scenario.expect.final if final is None else final
    counters = scenario.expect.counters if counters is None else counters
    for want in final:
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
                max_steps: int | None = None,
                timing: TimingModel | None = None) -> VariantReport:
    """Every seed of one variant, judged against the scenario's verdict."""
    runs = [run_once(scenario, variant, s, strategy, max_steps=max_steps, timing=timing)
            for s in seeds]
    judgement = scenario.judgement(variant)
    expected = judgement.found
    found = sorted(set().union(*(r.broken for r in runs)) | warning_findings(judgement, runs))
    return VariantReport(variant=variant, expected=expected, found=found,
                         ok=found == expected, runs=runs)


def warning_findings(judgement: Judgement, runs: Sequence[RunReport]) -> set[str]:
    """The warning judgements as findings: ``warning-missing:NAME`` for a required warning
    no run reported, ``warning-forbidden:NAME`` for a forbidden one some run reported."""
    seen = {w.invariant for r in runs for w in r.warnings}
    return ({f"warning-missing:{w}" for w in judgement.required if w not in seen}
            | {f"warning-forbidden:{w}" for w in judgement.forbidden if w in seen})


def run_scenario(scenario: Scenario, *, variants: Sequence[str] | None = None,
                 seed: int | None = None, runs: int | None = None, strategy: str | None = None,
                 max_steps: int | None = None, force_replay: bool = False,
                 timing: TimingModel | None = None) -> ScenarioReport:
    """Run ``scenario`` for each variant (its listed ones by default) over ``runs`` seeds
    from ``seed`` (0) under ``timing`` (default realistic; a replay keeps the recorded
    one); a replay runs once, on the recording's variant and seed unless given
    (`plan_replay`)."""
    strategy = strategy or scenario.run.strategy or "pct:3"
    if strategy.startswith("replay:"):
        variants, seed = plan_replay(scenario, strategy.partition(":")[2], variants, seed,
                                     force=force_replay)
        runs = 1
    seed = seed or 0
    seeds = list(range(seed, seed + (runs or scenario.run.seeds or 20)))
    reports = [run_variant(scenario, v, seeds, strategy, max_steps=max_steps, timing=timing)
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
                         max_steps=max_steps, log=log, choices=choices_name,
                         timing=timing_model(report.timing.mode))
    if again.choices != report.choices or again.steps != report.steps:
        raise ModelInternalError(
            f"{scenario.name} {report.variant} seed {report.seed}: the logged re-run took "
            f"{again.steps} steps, the first {report.steps} (nondeterminism in the model)")
    choices = log_path.with_name(choices_name)
    recorded = RecordedRun(scenario=scenario.name, digest=scenario.digest,
                           variant=report.variant, seed=report.seed, strategy=report.spec,
                           choices=report.choices, timing=report.timing.mode)
    tmp = choices.with_name(choices.name + ".tmp")
    tmp.write_bytes(encode_recorded(recorded))
    tmp.replace(choices)
    return choices


def check_log_options(log: str | None, log_seed: int | None, log_dir: str | None) -> None:
    """``--log-seed`` needs ``--log``; ``--log-dir`` an existing, writable folder
    (UsageError / InputError, before any run)."""
    if log_seed is not None and not log:
        raise UsageError("--log-seed: needs --log FILE (the run of that seed is written there)")
    if log_dir is not None:
        folder = Path(log_dir)
        if not folder.is_dir():
            raise InputError(log_dir, "$", "an existing folder for --log-dir",
                             "a file" if folder.exists() else "no such folder")


def pick_logged_run(report: ScenarioReport, seed: int | None) -> RunReport:
    """The run ``--log`` writes: the one of ``seed`` in the first variant, else the first
    failing run, else the first run (UsageError when no run has that seed)."""
    runs = [r for v in report.variants for r in v.runs]
    if seed is not None:
        chosen = next((r for r in runs if r.seed == seed), None)
        if chosen is None:
            raise UsageError(f"--log-seed: expected one of the seeds run "
                             f"({report.seeds[0]}..{report.seeds[-1]}), got {seed}")
        return chosen
    return next((r for r in runs if r.violations), runs[0])


def record_all(scenario: Scenario, report: ScenarioReport, folder: Path, *,
               max_steps: int | None = None) -> list[Path]:
    """``--log-dir``: every run's event log as ``VARIANT-seedN.jsonl`` in ``folder`` (with
    its ``.choices.json``), by `record_run`; returns the event logs written."""
    out = []
    for v in report.variants:
        for r in v.runs:
            path = folder / f"{r.variant}-seed{r.seed}.jsonl"
            record_run(scenario, r, path, max_steps=max_steps)
            out.append(path)
    return out
