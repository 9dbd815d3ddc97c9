"""A soak campaign: many generated runs on worker processes (or Dask), results kept safe.

The output folder holds ``campaign.json`` (what was asked: profile, variant, seed,
strategy), ``results.jsonl`` (one `RunRecord` per finished run, appended and flushed as
each arrives; fsynced at once for a finding, else every `SYNC_RUNS` clean runs or
`SYNC_SECONDS`, and at the end), ``findings/<signature>/`` (the first run of each
distinct finding: ``finding.json``, ``scenario.yaml``, ``choices.json``, written to a
temporary name and renamed), ``scenarios/`` (with ``--keep-scenarios``: every
generated run's YAML; otherwise generated scenarios exist only as data),
``summary.json`` (rewritten atomically from results.jsonl, so it is exact after any
interruption) and ``soak.lock`` (an exclusive lock holding the
running soak's pid: a second soak or ``--resume`` on the same folder is refused).

A killed soak loses no finished run (each is flushed to the OS); a machine that dies
loses at most the clean runs since the last fsync. ``--resume`` reads results.jsonl,
refuses flags that contradict campaign.json, re-creates any finding folder the disk
lacks, and runs only the indices not yet there. A write that fails (disk full,
read-only, not a folder) is one `OutputError` line.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import msgspec

from vgic_actors.checks import coverage
from vgic_actors.errors import BusyError, InputError, OutputError, UsageError
from vgic_actors.kvm.variants import VARIANTS
from vgic_actors.runtime import ChoiceLog
from vgic_actors.scenario.loader import check_strategy
from vgic_actors.scenario.runner import RecordedRun, encode_recorded
from vgic_actors.scenario.source import load_file
from vgic_actors.soak.pool import WorkerPool
from vgic_actors.soak.profile import load_profile
from vgic_actors.soak.worker import RunRecord, ScenarioSource, run_index

BATCH = 8
SYNC_RUNS = 64
"""Clean runs appended between two fsyncs of results.jsonl (a finding is fsynced at once)."""
SYNC_SECONDS = 1.0
"""The longest time between two fsyncs while runs arrive."""
LOCK_FILE = "soak.lock"
KEPT = "finished runs are kept; --resume continues"


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What a campaign runs; stored in campaign.json so --resume continues the same one.
    ``scenario``: a scenario file soaked over many seeds instead of generated ones."""

    profile: str
    variant: str
    seed: int
    strategy: str
    scenario: str = ""
    timing: str = "realistic"


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
    timing: str = "realistic"  # the timing model it was found under
    needs: str = ""  # a timing-window finding: what had to be stretched


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """Campaign totals (summary.json)."""

    spec: CampaignSpec
    runs: int
    clean: int
    crashes: int
    findings: dict[str, int]
    distinct_interleavings: int
    outcomes: dict[str, int]
    coverage: dict[str, int] = msgspec.field(default_factory=dict)  # checks/coverage.py


@dataclass
class Progress:
    """Running totals, printed as one line to stderr."""

    runs: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    interleavings: set[str] = field(default_factory=set)
    coverage: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def add(self, rec: RunRecord) -> None:
        """Count one finished run."""
        self.runs += 1
        self.outcomes[rec.outcome] += 1
        self.coverage.update(rec.coverage)
        if rec.signature:
            self.findings[rec.signature] += 1
        if rec.interleaving:
            self.interleavings.add(rec.interleaving)

    def line(self) -> str:
        """``runs 120 (40.1/s)  findings 2 distinct (7 runs)  interleavings 118``."""
        rate = self.runs / max(time.monotonic() - self.started, 1e-9)
        return (f"runs {self.runs} ({rate:.1f}/s)  findings {len(self.findings)} distinct "
                f"({sum(self.findings.values())} runs)  interleavings {len(self.interleavings)}")


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into one OutputError line."""
    try:
        yield
    except OSError as exc:
        raise OutputError(str(path), exc.strerror or type(exc).__name__, KEPT) from None


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with _writing(path):
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)


class OutLock:
    """An exclusive lock on ``OUT/soak.lock`` (flock), which holds the owner's pid; the
    kernel drops it when the owner dies, however it dies."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def acquire(cls, out: Path) -> OutLock:
        """Take the lock, or BusyError naming the pid that holds it."""
        path = out / LOCK_FILE
        with _writing(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BusyError(f"{out} is in use by another soak (pid {holder}): wait for it to "
                            "end, or choose another --out") from None
        with _writing(path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def finding_key(signature: str) -> str:
    """A folder name for a signature: readable and unique."""
    readable = "".join(c if c.isalnum() or c in "-+" else "_" for c in signature)[:60]
    return f"{readable}-{hashlib.sha256(signature.encode()).hexdigest()[:8]}"


class Campaign:
    """A soak campaign writing to ``out`` (which it holds locked until `close`)."""

    def __init__(self, out: Path, spec: CampaignSpec, source: ScenarioSource,
                 lock: OutLock | None = None) -> None:
        self.out, self.spec, self.source, self.lock = out, spec, source, lock
        self.results = out / "results.jsonl"
        self.progress = Progress()
        self.done: set[int] = set()
        self._stream: Any = None
        self._unsynced = 0
        self._synced_at = time.monotonic()
        self.keep_scenarios = False  # --keep-scenarios: scenarios/<index>.yaml for every run

    @classmethod
    def open(cls, out: Path, spec: CampaignSpec, *, resume: bool,
             given: frozenset[str] = frozenset()) -> Campaign:
        """Create ``out`` (or, with ``resume``, reopen it: its campaign.json wins, and a
        field named in ``given`` (set on the command line) must agree with it)."""
        with _writing(out):
            out.mkdir(parents=True, exist_ok=True)
        lock = OutLock.acquire(out)
        try:
            meta = out / "campaign.json"
            if resume:
                spec = _resumed_spec(meta, out, spec, given)
            elif (out / "results.jsonl").exists():
                raise UsageError(f"{out} already holds a campaign: use --resume or another "
                                 "--out")
            source = scenario_source(spec)
            with _writing(out / "findings"):
                (out / "findings").mkdir(exist_ok=True)
            _atomic_write(meta, msgspec.json.format(msgspec.json.encode(spec)) + b"\n")
            campaign = cls(out, spec, source, lock)
            if resume:
                campaign._reload()
        except BaseException:
            lock.release()
            raise
        return campaign

    def _scan(self) -> Iterator[tuple[bytes, RunRecord]]:
        """The records of results.jsonl, each index once (a torn or repeated line is
        dropped)."""
        if not self.results.exists():
            return
        seen: set[int] = set()
        try:
            data = self.results.read_bytes()
        except OSError as exc:
            raise InputError(str(self.results), "$", "a readable results file",
                             exc.strerror or type(exc).__name__) from None
        for line in data.splitlines():
            try:
                rec = msgspec.json.decode(line, type=RunRecord)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            if rec.index not in seen:
                seen.add(rec.index)
                yield line, rec

    def _reload(self) -> None:
        """Read results.jsonl back (rewritten without torn or repeated lines) and re-create
        any finding folder it names that the disk lacks."""
        good: list[bytes] = []
        for line, rec in self._scan():
            good.append(line)
            first = bool(rec.signature) and rec.signature not in self.progress.findings
            self.done.add(rec.index)
            self.progress.add(rec)
            if first and not self._finding_saved(rec):
                self._save_finding(rec)
        if self.results.exists():
            _atomic_write(self.results, b"".join(x + b"\n" for x in good))

    def _finding_saved(self, rec: RunRecord) -> bool:
        folder = self.out / "findings" / finding_key(rec.signature)
        names = ["finding.json"] + ([] if rec.outcome == "crash"
                                    else ["scenario.yaml", "choices.json"])
        return all((folder / name).exists() for name in names)

    def record(self, rec: RunRecord) -> None:
        """Append one run (fsynced at once if a finding, else in batches) and save its
        finding if it is the first of its kind."""
        with _writing(self.results):
            if self._stream is None:
                self._stream = self.results.open("ab")
            self._stream.write(msgspec.json.encode(rec) + b"\n")
            self._stream.flush()
            self._unsynced += 1
            if rec.signature or self._unsynced >= SYNC_RUNS \
                    or time.monotonic() - self._synced_at >= SYNC_SECONDS:
                self._sync()
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

    def _sync(self) -> None:
        os.fsync(self._stream.fileno())
        self._unsynced = 0
        self._synced_at = time.monotonic()

    def _save_finding(self, rec: RunRecord) -> None:
        folder = self.out / "findings" / finding_key(rec.signature)
        with _writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
        finding = Finding(signature=rec.signature, violations=rec.violations,
                          detail=rec.detail, index=rec.index, scenario_seed=rec.scenario_seed,
                          strategy=rec.strategy, variant=rec.variant, steps=rec.steps,
                          timing=self.spec.timing, needs=rec.needs)
        _atomic_write(folder / "finding.json",
                      msgspec.json.format(msgspec.json.encode(finding)) + b"\n")
        if rec.outcome == "crash":
            return
        scenario = self.source.build(rec.scenario_seed)
        _atomic_write(folder / "scenario.yaml", self.source.yaml(rec.scenario_seed).encode())
        recorded = RecordedRun(scenario=scenario.name, digest=scenario.digest,
                               variant=rec.variant, seed=rec.scenario_seed,
                               strategy=rec.strategy, timing=self.spec.timing,
                               choices=ChoiceLog(values=rec.choices, bounds=rec.bounds))
        _atomic_write(folder / "choices.json", encode_recorded(recorded))

    def summary(self) -> Summary:
        """Totals so far."""
        p = self.progress
        return Summary(spec=self.spec, runs=p.runs, clean=p.runs - sum(p.findings.values()),
                       crashes=p.outcomes.get("crash", 0), findings=dict(p.findings),
                       distinct_interleavings=len(p.interleavings), outcomes=dict(p.outcomes),
                       coverage=dict(sorted(p.coverage.items())))

    def close(self) -> Summary:
        """Flush and fsync, write summary.json from results.jsonl (exact whatever was
        interrupted), release the lock; return the summary."""
        try:
            if self._stream is not None:
                stream, self._stream = self._stream, None
                with _writing(self.results):
                    stream.flush()
                    os.fsync(stream.fileno())
                    stream.close()
            progress = Progress(started=self.progress.started)
            for _, rec in self._scan():
                progress.add(rec)
            self.progress = progress
            summary = self.summary()
            _atomic_write(self.out / "summary.json",
                          msgspec.json.format(msgspec.json.encode(summary)) + b"\n")
        finally:
            if self.lock is not None:
                self.lock.release()
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
        return ScenarioSource(path=spec.scenario, text=Path(spec.scenario).read_text(),
                              timing=spec.timing)
    profile, _ = load_profile(spec.profile)
    return ScenarioSource(profile=profile, timing=spec.timing)


def _resumed_spec(meta: Path, out: Path, asked: CampaignSpec,
                  given: frozenset[str]) -> CampaignSpec:
    """campaign.json, checked: a readable, valid spec that the flags in ``given`` agree
    with (a conflict is a UsageError naming the flag)."""
    if not meta.exists():
        raise UsageError(f"--resume: {out} holds no campaign (no campaign.json)")
    try:
        spec = msgspec.json.decode(meta.read_bytes(), type=CampaignSpec)
    except OSError as exc:
        raise InputError(str(meta), "$", "a readable campaign description",
                         exc.strerror or type(exc).__name__) from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InputError(str(meta), "$", "a campaign description", str(exc)) from None
    if spec.variant not in VARIANTS:
        raise InputError(str(meta), "$.variant", "a variant name", repr(spec.variant))
    if spec.strategy != "portfolio":
        check_strategy(spec.strategy,
                       lambda exp, got: InputError(str(meta), "$.strategy", exp, got))
    for name in sorted(given):
        mine, theirs = getattr(asked, name), getattr(spec, name)
        if mine != theirs:
            raise UsageError(f"--{name} {mine}: {out} is a campaign of --{name} {theirs} "
                             f"(campaign.json); leave --{name} out to resume it, or use "
                             "another --out")
    return spec


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
    """Run the pending indices in-process (one worker) or on a `WorkerPool` until done or
    the deadline; a dead worker's run is recorded as a crash and the pool goes on."""
    spec, source = campaign.spec, campaign.source

    def stop() -> bool:
        return (deadline is not None and time.monotonic() >= deadline) or (
            stop_on_finding and any(not sig.endswith("@merged-too")
                                    for sig in campaign.progress.findings))

    def record(rec: RunRecord) -> None:
        campaign.record(rec)
        on_progress()

    if workers == 1:
        for i in campaign.pending(runs):
            if stop():
                return
            record(run_index(source, spec.variant, spec.seed, spec.strategy, i))
        return
    pool = WorkerPool(workers, source, spec.variant, spec.seed, spec.strategy)
    pool.run(campaign.pending(runs), record, stop)


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
    if summary.coverage:
        print(coverage.render(summary.coverage, runs=summary.runs, threshold=10), file=stream)
