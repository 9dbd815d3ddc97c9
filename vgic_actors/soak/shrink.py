"""Shrink a finding: a smaller scenario and a choice log with fewer deviations, while the
same finding (its full `Signature`) still comes back.

Scenario first (delta debugging over guest operations, VMM steps, interrupt
configuration entries, then trailing vCPUs), then the schedule (a shorter choice log,
then single deviations reset to the canonical choice 0). A candidate scenario counts
as failing if replaying the current choice log, or one of a few fresh seeds, has the
finding's signature: the same core invariants and, for a lost deactivation, the same
kind of deactivation, vgic_v3_deactivate branch and place where the Active state stayed.
Each candidate is one or a few model runs, so the whole search is bounded by a
wall-clock budget.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import yaml

from vgic_actors.checks.signature import Signature
from vgic_actors.errors import ModelInternalError, VgicActorsError
from vgic_actors.runtime import ChoiceLog, timing_model
from vgic_actors.scenario import emit
from vgic_actors.scenario.loader import Scenario, parse_scenario, parse_scenario_data
from vgic_actors.scenario.runner import (
    RecordedRun,
    RunReport,
    encode_recorded,
    load_recorded,
    run_once,
    run_variant,
)
from vgic_actors.scenario.source import load_source
from vgic_actors.soak.worker import PORTFOLIO

FRESH_SEEDS = 6
Slot = tuple[str, ...]


class _Search:
    """The failing test shrinking relies on, with its budget and scratch space."""

    def __init__(self, variant: str, seed: int, wanted: Signature, budget: float,
                 scratch: Path, max_steps: int) -> None:
        self.variant, self.seed, self.wanted = variant, seed, wanted
        self.max_steps = max_steps  # a candidate that spins longer is not the finding
        self.deadline = time.monotonic() + budget
        self.scratch = scratch
        self.runs = 0
        self.interrupted = False  # Ctrl-C: stop searching, keep the best so far
        self.timing = "realistic"  # the timing model the finding ran under (choices.json)

    @property
    def expired(self) -> bool:
        return self.interrupted or time.monotonic() >= self.deadline

    def run(self, scenario: Scenario, seed: int, spec: str) -> RunReport | None:
        """One candidate run (None once Ctrl-C stopped the search)."""
        if self.interrupted:
            return None
        self.runs += 1
        try:
            return run_once(scenario, self.variant, seed, spec, max_steps=self.max_steps,
                            timing=timing_model(self.timing))
        except KeyboardInterrupt:
            self.interrupted = True
            return None

    def reproduces(self, report: RunReport) -> bool:
        """The run found the wanted finding: its full signature (a run cut short by the
        step budget adds livelock, so it is not the finding unless that is one)."""
        return report.signature.same_finding(self.wanted)

    def scenario(self, data: dict[str, Any]) -> Scenario | None:
        try:
            return parse_scenario_data(data, "candidate.yaml")
        except VgicActorsError:
            return None

    def fails(self, scenario: Scenario, choices: ChoiceLog) -> ChoiceLog | None:
        """The choice log of a run of ``scenario`` with the wanted signature: the given
        schedule replayed first, then fresh seeds."""
        path = self.scratch / "choices.json"
        path.write_bytes(msgspec.json.encode(RecordedRun(
            scenario=scenario.name, digest=scenario.digest, variant=self.variant,
            seed=self.seed, strategy="replay", choices=choices, timing=self.timing)))
        attempts = [(self.seed, f"replay:{path}")]
        attempts += [(self.seed + k, PORTFOLIO[k % len(PORTFOLIO)])
                     for k in range(1, FRESH_SEEDS + 1)]
        for seed, spec in attempts:
            if self.expired:
                return None
            try:
                report = self.run(scenario, seed, spec)
            except VgicActorsError:
                continue
            if report is not None and self.reproduces(report):
                self.seed = seed
                return report.choices
        return None


def _slots(data: dict[str, Any]) -> list[Slot]:
    """Every removable item: guest operations, handler operations, host steps, irqs."""
    slots: list[Slot] = []
    for name, body in data.get("guests", {}).items():
        ops = body.get("ops", []) if isinstance(body, dict) else body
        slots += [("guests", name, "ops", str(i)) for i in range(len(ops))]
    slots += [("host", str(i)) for i in range(len(data.get("host", [])))]
    slots += [("irqs", str(i)) for i in range(len(data.get("irqs", [])))]
    return slots


def _without(data: dict[str, Any], removed: set[Slot]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for name, body in out.get("guests", {}).items():
        ops = body.get("ops", []) if isinstance(body, dict) else body
        kept = [op for i, op in enumerate(ops) if ("guests", name, "ops", str(i)) not in removed]
        if isinstance(body, dict):
            body["ops"] = kept
        else:
            out["guests"][name] = kept
    for section in ("host", "irqs"):
        if section in out:
            out[section] = [x for i, x in enumerate(out[section])
                            if (section, str(i)) not in removed]
    return out


def _count_ops(data: dict[str, Any]) -> int:
    return len(_slots(data))


def _shrink_items(search: _Search, data: dict[str, Any], choices: ChoiceLog,
                  log: Callable[[str], None]) -> tuple[dict[str, Any], ChoiceLog]:
    """Delta debugging over the removable items, halving the chunk size."""
    slots = _slots(data)
    removed: set[Slot] = set()
    chunk = max(len(slots) // 2, 1)
    while chunk >= 1 and not search.expired:
        start = 0
        while start < len(slots) and not search.expired:
            trial = removed | {s for s in slots[start:start + chunk] if s not in removed}
            if trial != removed:
                scenario = search.scenario(_without(data, trial))
                got = search.fails(scenario, choices) if scenario is not None else None
                if got is not None:
                    removed, choices = trial, got
                    log(f"shrink: {len(slots) - len(removed)} of {len(slots)} items left")
            start += chunk
        chunk //= 2
    return _without(data, removed), choices


def _drop_vcpus(search: _Search, data: dict[str, Any], choices: ChoiceLog
                ) -> tuple[dict[str, Any], ChoiceLog]:
    """Remove the highest vCPU while its absence keeps the finding."""
    while not search.expired:
        vcpus = int(data.get("vm", {}).get("vcpus", 2))
        if vcpus <= 1:
            break
        trial = copy.deepcopy(data)
        trial["vm"]["vcpus"] = vcpus - 1
        trial.get("guests", {}).pop(f"vcpu{vcpus - 1}", None)
        scenario = search.scenario(trial)
        got = search.fails(scenario, choices) if scenario is not None else None
        if got is None:
            break
        data, choices = trial, got
    return data, choices


def _shrink_choices(search: _Search, scenario: Scenario, choices: ChoiceLog) -> ChoiceLog:
    """A shorter log (the rest defaults to 0), then deviations reset to 0 one chunk at a
    time; only replays count here (the schedule is what is being shrunk)."""
    values = list(choices.values)

    def replays(candidate: list[int]) -> bool:
        saved = search.seed
        got = _replay_only(search, scenario, candidate, choices.bounds)
        search.seed = saved
        return got

    low, high = 0, len(values)
    while low < high and not search.expired:
        mid = (low + high) // 2
        if replays(values[:mid]):
            high = mid
        else:
            low = mid + 1
    values = values[:high]
    nonzero = [i for i, v in enumerate(values) if v]
    chunk = max(len(nonzero) // 2, 1)
    while chunk >= 1 and not search.expired:
        for start in range(0, len(nonzero), chunk):
            trial = list(values)
            for i in nonzero[start:start + chunk]:
                trial[i] = 0
            if trial != values and replays(trial):
                values = trial
        nonzero = [i for i, v in enumerate(values) if v]
        chunk //= 2
    return ChoiceLog(values=values, bounds=list(choices.bounds[:len(values)]))


def _replay_only(search: _Search, scenario: Scenario, values: list[int],
                 bounds: list[int]) -> bool:
    path = search.scratch / "choices.json"
    path.write_bytes(msgspec.json.encode(RecordedRun(
        scenario=scenario.name, digest=scenario.digest, variant=search.variant,
        seed=search.seed, strategy="replay", timing=search.timing,
        choices=ChoiceLog(values=values, bounds=bounds[:len(values)]))))
    report = search.run(scenario, search.seed, f"replay:{path}")
    return report is not None and search.reproduces(report)


@dataclass(frozen=True)
class ShrinkResult:
    """What `shrink_finding` did: its one-line report, whether Ctrl-C cut the search short
    (the best pair found so far is still written) and whether files were written."""

    message: str
    interrupted: bool = False
    written: bool = False


def shrink_finding(folder: Path, *, budget: float, log: Callable[[str], None]) -> ShrinkResult:
    """Shrink the finding in ``folder``; writes shrunk.yaml and shrunk.choices.json."""
    from vgic_actors.soak.campaign import Finding

    finding = msgspec.json.decode((folder / "finding.json").read_bytes(), type=Finding)
    text = (folder / "scenario.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    recorded = load_recorded(folder / "choices.json")
    wanted = msgspec.structs.replace(Signature.from_key(finding.signature), merged_too=False)
    with tempfile.TemporaryDirectory() as tmp:
        budget_steps = max(2_000, 3 * finding.steps) if "livelock" not in wanted.invariants \
            else max(finding.steps, 2_000)
        search = _Search(recorded.variant, recorded.seed, wanted, budget, Path(tmp),
                         budget_steps)
        search.timing = recorded.timing
        data.pop("expect", None)  # the shrunk scenario states the finding as its verdict
        scenario = search.scenario(data)
        choices = search.fails(scenario, recorded.choices) if scenario is not None else None
        if scenario is None or choices is None:
            return ShrinkResult(f"{folder}: " + ("interrupted before the finding came back"
                                if search.interrupted else "the finding does not come back")
                                + "; nothing shrunk", interrupted=search.interrupted)
        before_ops, before_vcpus = _count_ops(data), int(data["vm"].get("vcpus", 2))
        before_dev = sum(1 for v in choices.values if v)
        data, choices = _shrink_items(search, data, choices, log)
        data, choices = _drop_vcpus(search, data, choices)
        final = search.scenario(data)
        assert final is not None
        choices = _shrink_choices(search, final, choices)
        seed = search.seed
    data["name"] = f"{data.get('name', 'finding')}-shrunk"
    data.setdefault("run", {})["max_steps"] = budget_steps  # the budget the search judged by
    header = (f"# Shrunk from {folder / 'scenario.yaml'}: {wanted} on "
              f"{recorded.variant}.\n# Replay: vgic-actors run shrunk.yaml --variant "
              f"{recorded.variant} --seed {seed} --runs 1 --strategy "
              "replay:shrunk.choices.json\n")
    # The verdict is what the header's replay finds, every invariant of it (expectations and
    # guest checks too), not the signature's core alone: `run` compares the whole set.
    verdict = list(wanted.invariants)
    for _ in range(2):
        data["expect"] = {"verdicts": {recorded.variant: verdict}}
        body, shrunk, pair = _written(folder, header, data, recorded, seed, choices)
        found = _check_header(shrunk, pair, wanted)
        if found == verdict:
            break
        verdict = found
    else:
        raise ModelInternalError(f"shrink: the shrunk pair's verdict does not settle "
                                 f"({verdict} then {found})")
    (folder / "shrunk.yaml").write_text(body, encoding="utf-8")
    (folder / "shrunk.choices.json").write_bytes(pair)
    return ShrinkResult(
        f"{folder}: operations {before_ops} -> {_count_ops(data)}, vCPUs {before_vcpus} -> "
        f"{data['vm'].get('vcpus', 2)}, scheduling deviations {before_dev} -> "
        f"{sum(1 for v in choices.values if v)} ({search.runs} runs); wrote shrunk.yaml "
        "and shrunk.choices.json", interrupted=search.interrupted, written=True)


def _written(folder: Path, header: str, data: dict[str, Any], recorded: RecordedRun,
             seed: int, choices: ChoiceLog) -> tuple[str, Scenario, bytes]:
    """shrunk.yaml's text, the scenario it loads as, and the choices pair for it (its
    digest covers the verdict, so the pair is built for this very text)."""
    body = header + emit.dump(data, sort_keys=False, width=100)
    shrunk = parse_scenario(load_source(body, str(folder / "shrunk.yaml")))
    pair = encode_recorded(RecordedRun(
        scenario=shrunk.name, digest=shrunk.digest, variant=recorded.variant, seed=seed,
        strategy="replay", choices=choices, timing=recorded.timing))
    return body, shrunk, pair


def _check_header(shrunk: Scenario, pair: bytes, wanted: Signature) -> list[str]:
    """Replay the pair about to be written, as ``replay`` and the header's ``run`` command
    will: the header's signature must be what it finds (a mismatch is a bug in the search,
    never a file to keep). Returns what that ``run`` finds (its sorted invariants and
    warning judgements, scenario/runner.py: run_variant), the verdict to write."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shrunk.choices.json"
        path.write_bytes(pair)
        recorded = load_recorded(path)
        report = run_variant(shrunk, recorded.variant, [recorded.seed], f"replay:{path}")
    got = report.runs[0].signature
    if not got.same_finding(wanted):
        raise ModelInternalError(f"shrink: the shrunk pair finds {got}, not {wanted}")
    return report.found
