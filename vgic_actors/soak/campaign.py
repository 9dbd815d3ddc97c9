"""A soak campaign: many generated runs on worker processes (or Dask), results kept safe.

The output folder holds ``campaign.json`` (what was asked: profile, variant, seed,
strategy), ``results.jsonl`` (one `RunRecord` per finished run, appended and fsynced
as each arrives, so a kill loses no finished run), ``findings/<signature>/`` (the first
run of each distinct finding: ``finding.json``, ``scenario.yaml``, ``choices.json``,
written to a temporary name and renamed), ``scenarios/`` (with ``--keep-scenarios``: every
generated run's YAML; otherwise generated scenarios exist only as data) and
``summary.json`` (rewritten atomically).
``--resume`` reads results.jsonl and runs only the indices not yet there.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec

from vgic_actors.errors import InputError, UsageError
from vgic_actors.runtime import ChoiceLog
from vgic_actors.scenario.runner import RecordedRun
from vgic_actors.scenario.source import load_file
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import RunRecord, ScenarioSource, run_batch, run_index

BATCH = 8


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign runs; stored in campaign.json so --resume continues the same one.
    ``scenario``: a scenario file soaked over many seeds instead of generated ones."""

    profile: str
    variant: str
    seed: int
    strategy: str
    scenario: str = ""


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """The first run of one distinct finding (findings/<key>/finding.json)."""

    signature: str
    violations: list[str]
    detail: str
    index: int
    scenario_seed: int
    strategy: str
    variant: str
    steps: int


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """Campaign totals (summary.json)."""

    spec: CampaignSpec
    runs: int
    clean: int
    crashes: int
    findings: dict[str, int]
    distinct_interleavings: int
    outcomes: dict[str, int]


@dataclass
class Progress:
    """Running totals, printed as one line to stderr."""

    runs: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    interleavings: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)

    def add(self, rec: RunRecord) -> None:
        """Count one finished run."""
        self.runs += 1
        self.outcomes[rec.outcome] += 1
        if rec.signature:
            self.findings[rec.signature] += 1
        if rec.interleaving:
            self.interleavings.add(rec.interleaving)

    def line(self) -> str:
        """``runs 120 (40.1/s)  findings 2 distinct (7 runs)  interleavings 118``."""
        rate = self.runs / max(time.monotonic() - self.started, 1e-9)
        return (f"runs {self.runs} ({rate:.1f}/s)  findings {len(self.findings)} distinct "
                f"({sum(self.findings.values())} runs)  interleavings {len(self.interleavings)}")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def finding_key(signature: str) -> str:
    """A folder name for a signature: readable and unique."""
    readable = "".join(c if c.isalnum() or c in "-+" else "_" for c in signature)[:60]
    return f"{readable}-{hashlib.sha256(signature.encode()).hexdigest()[:8]}"


class Campaign:
    """A soak campaign writing to ``out``."""

    def __init__(self, out: Path, spec: CampaignSpec, source: ScenarioSource) -> None:
        self.out, self.spec, self.source = out, spec, source
        self.results = out / "results.jsonl"
        self.progress = Progress()
        self.done: set[int] = set()
        self._stream: Any = None
        self.keep_scenarios = False  # --keep-scenarios: scenarios/<index>.yaml for every run

    @classmethod
    def open(cls, out: Path, spec: CampaignSpec, *, resume: bool) -> Campaign:
        """Create ``out`` (or, with ``resume``, reopen it: its campaign.json wins)."""
        meta = out / "campaign.json"
        if resume:
            if not meta.exists():
                raise UsageError(f"--resume: {out} holds no campaign (no campaign.json)")
            try:
                spec = msgspec.json.decode(meta.read_bytes(), type=CampaignSpec)
            except msgspec.DecodeError as exc:
                raise InputError(str(meta), "$", "a campaign description", str(exc)) from None
        elif (out / "results.jsonl").exists():
            raise UsageError(f"{out} already holds a campaign: use --resume or another --out")
        source = scenario_source(spec)
        out.mkdir(parents=True, exist_ok=True)
        (out / "findings").mkdir(exist_ok=True)
        _atomic_write(meta, msgspec.json.format(msgspec.json.encode(spec)) + b"\n")
        campaign = cls(out, spec, source)
        if resume:
            campaign._reload()
        return campaign

    def _reload(self) -> None:
        """Read results.jsonl; a torn last line (a kill mid-write) is dropped."""
        if not self.results.exists():
            return
        good: list[bytes] = []
        for line in self.results.read_bytes().splitlines():
            try:
                rec = msgspec.json.decode(line, type=RunRecord)
            except msgspec.DecodeError:
                continue
            good.append(line)
            self.done.add(rec.index)
            self.progress.add(rec)
        _atomic_write(self.results, b"".join(x + b"\n" for x in good))

    def record(self, rec: RunRecord) -> None:
        """Append one run (fsync) and save its finding if it is the first of its kind."""
        if self._stream is None:
            self._stream = self.results.open("ab")
        self._stream.write(msgspec.json.encode(rec) + b"\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())
        self.done.add(rec.index)
        first = bool(rec.signature) and rec.signature not in self.progress.findings
        self.progress.add(rec)
        if first:
            self._save_finding(rec)
        if self.keep_scenarios and self.source.profile is not None:
            folder = self.out / "scenarios"
            folder.mkdir(exist_ok=True)
            _atomic_write(folder / f"{rec.index:06d}-gen-{rec.scenario_seed}.yaml",
                          self.source.yaml(rec.scenario_seed).encode())

    def _save_finding(self, rec: RunRecord) -> None:
        folder = self.out / "findings" / finding_key(rec.signature)
        folder.mkdir(parents=True, exist_ok=True)
        finding = Finding(signature=rec.signature, violations=rec.violations,
                          detail=rec.detail, index=rec.index, scenario_seed=rec.scenario_seed,
                          strategy=rec.strategy, variant=rec.variant, steps=rec.steps)
        _atomic_write(folder / "finding.json",
                      msgspec.json.format(msgspec.json.encode(finding)) + b"\n")
        if rec.outcome == "crash":
            return
        scenario = self.source.build(rec.scenario_seed)
        _atomic_write(folder / "scenario.yaml", self.source.yaml(rec.scenario_seed).encode())
        recorded = RecordedRun(scenario=scenario.name, digest=scenario.digest,
                               variant=rec.variant, seed=rec.scenario_seed,
                               strategy=rec.strategy,
                               choices=ChoiceLog(values=rec.choices, bounds=rec.bounds))
        _atomic_write(folder / "choices.json",
                      msgspec.json.format(msgspec.json.encode(recorded)) + b"\n")

    def summary(self) -> Summary:
        """Totals so far."""
        p = self.progress
        return Summary(spec=self.spec, runs=p.runs, clean=p.runs - sum(p.findings.values()),
                       crashes=p.outcomes.get("crash", 0), findings=dict(p.findings),
                       distinct_interleavings=len(p.interleavings), outcomes=dict(p.outcomes))

    def close(self) -> Summary:
        """Flush, write summary.json atomically, return the summary."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        summary = self.summary()
        _atomic_write(self.out / "summary.json",
                      msgspec.json.format(msgspec.json.encode(summary)) + b"\n")
        return summary

    def pending(self, runs: int | None) -> Iterator[int]:
        """Run indices still to do (all of 0..runs-1, or without end for --time)."""
        index = 0
        while runs is None or index < runs:
            if index not in self.done:
                yield index
            index += 1


def scenario_source(spec: CampaignSpec) -> ScenarioSource:
    """The campaign's scenarios: a checked scenario file, or the named profile."""
    if spec.scenario:
        from vgic_actors.scenario.loader import parse_scenario

        src = load_file(Path(spec.scenario))
        parse_scenario(src)  # bad input is reported now, not by every worker
        return ScenarioSource(path=spec.scenario, text=Path(spec.scenario).read_text())
    profile, _ = load_profile(spec.profile)
    return ScenarioSource(profile=profile)


def batches_of(indices: Iterator[int]) -> Iterator[list[int]]:
    batch: list[int] = []
    for i in indices:
        batch.append(i)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def run_local(campaign: Campaign, *, runs: int | None, deadline: float | None, workers: int,
              on_progress: Callable[[], None], stop_on_finding: bool = False) -> None:
    """Run batches on ``workers`` processes (in-process when 1) until done or the deadline."""
    spec, source = campaign.spec, campaign.source
    batches = batches_of(campaign.pending(runs))

    def expired() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    def found() -> bool:
        return stop_on_finding and any(not sig.endswith("@merged-too")
                                       for sig in campaign.progress.findings)

    if workers == 1:
        for batch in batches:
            if expired() or found():
                return
            for i in batch:
                campaign.record(run_index(source, spec.variant, spec.seed, spec.strategy, i))
                on_progress()
                if found():
                    return
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: set[Future[list[RunRecord]]] = set()
        try:
            while True:
                while len(running) < 2 * workers and not expired() and not found():
                    todo = next(batches, None)
                    if todo is None:
                        break
                    running.add(pool.submit(run_batch, source, spec.variant, spec.seed,
                                            spec.strategy, todo))
                if not running:
                    return
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    for rec in fut.result():
                        campaign.record(rec)
                    on_progress()
        except BaseException:
            for fut in running:
                fut.cancel()
            raise


def print_summary(summary: Summary, out: Path, stream: TextIO) -> None:
    """The end-of-campaign report."""
    spec = summary.spec
    print(f"soak {spec.variant} (profile {spec.profile}, seed {spec.seed}, "
          f"{spec.strategy}): {summary.runs} runs, {summary.clean} clean, "
          f"{summary.distinct_interleavings} distinct interleavings", file=stream)
    if not summary.findings:
        print("no findings", file=stream)
    for sig, count in sorted(summary.findings.items(), key=lambda kv: -kv[1]):
        folder = out / "findings" / finding_key(sig)
        detail = json.loads((folder / "finding.json").read_text())["detail"] \
            if (folder / "finding.json").exists() else ""
        print(f"  {sig}: {count} runs; first: {folder}", file=stream)
        if detail:
            print(f"    {detail}", file=stream)
